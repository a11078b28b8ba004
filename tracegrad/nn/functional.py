"""``tracegrad.nn.functional`` (import as ``F``): PyTorch's functional layer API.

Every function is a composite of tensor operations, so autograd and ``@compile`` see
through it; none has a hand-written derivative.

>>> import tracegrad as torch
>>> import tracegrad.nn.functional as F
>>> F.relu(torch.tensor([-1.0, 2.0]))
tensor([0., 2.])
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from .._ops import math as M
from .._ops.creation import ones as _ones, zeros as _zeros
from .._ops.dtype_names import scalar_type_name
from .._ops.shape import pad as _pad
from .._tensor import Tensor, _concrete, has_values
from ._activation import (celu, elu, gelu, glu, hardshrink, hardsigmoid,  # noqa: F401
                          hardswish, hardtanh, leaky_relu, log_softmax, logsigmoid, mish,
                          prelu, relu, relu6, rrelu, selu, sigmoid, silu, softmax, softmin,
                          softplus, softshrink, softsign, tanh, tanhshrink, threshold)
from ._attention import multi_head_attention_forward, scaled_dot_product_attention  # noqa: F401
from ._conv import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool2d,  # noqa: F401
                    avg_pool1d, avg_pool2d, conv1d, conv2d, conv3d, conv_transpose1d,
                    conv_transpose2d, conv_transpose3d, max_pool1d, max_pool2d, pixel_shuffle, unfold, windows)
from ._ctc_loss import ctc_loss  # noqa: F401
from ._embedding_bag import embedding_bag  # noqa: F401
from ._fractional_pool import (fractional_max_pool2d,  # noqa: F401
                               fractional_max_pool2d_with_indices, fractional_max_pool3d,
                               fractional_max_pool3d_with_indices)
from ._functional_parity import (conv_tbc, dropout3d, feature_alpha_dropout,  # noqa: F401
                                 linear_cross_entropy, local_response_norm, multilabel_margin_loss, pdist,
                                 triplet_margin_with_distance_loss)
from . import _interpolate as _interp
from ._grid_sample import (GRID_SAMPLE_INTERPOLATION_MODES,  # noqa: F401
                           GRID_SAMPLE_PADDING_MODES, affine_grid, grid_sample)
from ._functional_extra import (celu_, channel_shuffle, elu_, gumbel_softmax,  # noqa: F401
                                hardtanh_, leaky_relu_, pixel_unshuffle, relu_, rrelu_,
                                selu_, threshold_)
from ._loss_margin import (gaussian_nll_loss, hinge_embedding_loss,  # noqa: F401
                           multi_margin_loss, multilabel_soft_margin_loss, soft_margin_loss,
                           triplet_margin_loss)
from ._loss import (binary_cross_entropy, binary_cross_entropy_with_logits,  # noqa: F401
                    cosine_embedding_loss, cross_entropy, huber_loss, kl_div, l1_loss,
                    margin_ranking_loss, mse_loss, nll_loss, poisson_nll_loss,
                    smooth_l1_loss)
from ._pool_extra import (adaptive_avg_pool3d, adaptive_max_pool1d,  # noqa: F401
                          adaptive_max_pool1d_with_indices, adaptive_max_pool2d_with_indices,
                          adaptive_max_pool3d, adaptive_max_pool3d_with_indices,
                          avg_pool3d, fold, lp_pool1d, lp_pool2d, lp_pool3d, max_pool1d_with_indices,
                          max_pool2d_with_indices, max_pool3d, max_pool3d_with_indices,
                          max_unpool1d, max_unpool2d, max_unpool3d)
from ._norm import (batch_norm, cosine_similarity, group_norm, instance_norm,  # noqa: F401
                    layer_norm, normalize, pairwise_distance, rms_norm)


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias``."""
    if input._data.dtype != weight._data.dtype:
        raise RuntimeError(f"linear: mat1 and mat2 must have the same dtype, but got "
                           f"{scalar_type_name(input._data.dtype)} and "
                           f"{scalar_type_name(weight._data.dtype)} (input of shape "
                           f"{tuple(input.shape)}, weight of shape {tuple(weight.shape)})")
    out = input @ weight.t() if weight.ndim == 2 else input @ weight
    return out + bias if bias is not None else out


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y_k = x1^T A_k x2 + b_k`` with ``weight`` of shape ``(out, in1, in2)``."""
    lead = tuple(input1.shape[:-1])
    x1 = input1.reshape(-1, input1.shape[-1])
    x2 = input2.reshape(-1, input2.shape[-1])
    C_out, I1, I2 = weight.shape
    # (B, in1) @ (in1, out*in2) -> (B, out, in2), then contract in2 with x2.
    t = (x1 @ weight.permute(1, 0, 2).reshape(I1, C_out * I2)).reshape(-1, C_out, I2)
    out = (t * x2.unsqueeze(1)).sum(-1)
    if bias is not None:
        out = out + bias
    return out.reshape(lead + (C_out,))


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``;
    the mask comes from the global generator (``torch.manual_seed`` replays it)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        out = input * 0.0
    else:
        from .._ops.creation import rand
        keep = rand(*input.shape, dtype=input.dtype) >= p
        out = M.where(keep, input * (1.0 / (1.0 - p)), 0.0)
    return _inplace_result(input, out, inplace)


def dropout1d(input, p=0.5, training=True, inplace=False):
    return _channel_dropout(input, p, training, 1, inplace)


def dropout2d(input, p=0.5, training=True, inplace=False):
    return _channel_dropout(input, p, training, 2, inplace)


def _inplace_result(input, out, inplace):
    """``out``, written into ``input`` when ``inplace`` (PyTorch's ``inplace=True``)."""
    if not inplace:
        return out
    from .._ops.inplace import commit_inplace
    return commit_inplace(input, lambda _old: out)


def _channel_dropout(input, p, training, n, inplace=False):
    # NOTE: p=1 divided by zero and inplace=True was ignored (the input kept its values)
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _inplace_result(input, input * 0.0, inplace)
    from .._ops.creation import rand
    shape = tuple(input.shape[:-n]) + (1,) * n
    keep = rand(*shape, dtype=input.dtype) >= p
    return _inplace_result(input, M.where(keep, input * (1.0 / (1.0 - p)), 0.0), inplace)


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    if not training or p == 0.0:
        return input
    from .._ops.creation import rand
    alpha_p = -1.7580993408473766
    keep = rand(*input.shape, dtype=input.dtype) >= p
    a = (1.0 / np.sqrt((alpha_p ** 2 * p + 1) * (1 - p)))
    b = -a * alpha_p * p
    return _inplace_result(input, M.where(keep, input, alpha_p) * a + b, inplace)


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` picked by the integer ``input``; the ``padding_idx`` row gets
    no gradient."""
    if input._data.dtype.kind not in "iu":
        raise RuntimeError(f"embedding: expected an integer (long) index tensor, got "
                           f"{input.dtype}")
    n = weight.shape[0]
    if has_values(input) and input._data.size:
        lo, hi = int(input._data.min()), int(input._data.max())
        if lo < 0 or hi >= n:  # PyTorch takes no negative indices here
            bad = hi if hi >= n else lo
            raise IndexError(f"index out of range in self (embedding: index {bad} for a "
                             f"table of {n} rows)")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n
    if max_norm is not None:
        _embedding_renorm_(weight, input, max_norm, norm_type)
    out = weight[input]
    if scale_grad_by_freq:
        # each lookup's gradient divided by its index's count in the batch (PyTorch's
        # rule); the value stays the row itself: rows + 0 * scale
        flat = input.reshape(-1)
        counts = _zeros(n, dtype=out.dtype).index_add(0, flat, _ones(flat.shape[0],
                                                                       dtype=out.dtype))
        scale = (1.0 / counts[input]).unsqueeze(-1)
        out = out.detach() + (out - out.detach()) * scale
    if padding_idx is not None:
        # NOTE: same value, but the padding row's lookups pass no gradient back.
        pad = (input == padding_idx).unsqueeze(-1)
        out = M.where(pad, out.detach(), out)
    return out


def _embedding_renorm_(weight, input, max_norm, norm_type):
    from ..autograd.grad_mode import no_grad
    idx = np.unique(np.asarray(input._data).reshape(-1))
    with no_grad():
        rows = weight._data[idx]
        norms = np.linalg.norm(rows, ord=norm_type, axis=1)
        scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        weight._data[idx] = rows * scale[:, None].astype(rows.dtype)
        weight._version[0] += 1


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """``(...,)`` class indices to ``(..., num_classes)`` int64 one-hot rows."""
    if tensor._data.dtype.kind not in "iu":
        raise RuntimeError("one_hot is only applicable to index tensor of an integer dtype")
    # NOTE: the class values are checked (eager raises on one out of range), so a trace
    # stops here with TraceError (the call runs eagerly), not a TypeError of a comparison
    data = _concrete(tensor._data, "one_hot (it checks the class values)")
    if num_classes == -1:
        num_classes = int(data.max()) + 1 if data.size else 0
    if data.size and (data.min() < 0 or data.max() >= num_classes):
        raise RuntimeError(f"one_hot: class values must be in [0, {num_classes - 1}], got "
                           f"values in [{int(data.min())}, {int(data.max())}]")
    from .._ops.creation import arange
    return (tensor.unsqueeze(-1) == arange(num_classes)).long()


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """``F.pad``: ``pad`` lists (left, right) amounts starting from the last dim."""
    return _pad(input, pad, mode, value)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return input.flatten(start_dim, end_dim)


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners=None, recompute_scale_factor=None, antialias=False) -> Tensor:
    """Resize the trailing spatial dims: ``nearest`` (an index gather), ``linear`` /
    ``bilinear`` / ``bicubic`` / ``trilinear`` (a matmul per dim, ``_interpolate``) or
    ``area``."""
    if mode not in ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area"):
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported (nearest, "
                                  f"linear, bilinear, bicubic, trilinear, area)")
    if align_corners is not None and mode in ("nearest", "area"):
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    n = input.ndim - 2
    spatial = tuple(input.shape[2:])
    if size is not None:
        out = (size,) * n if isinstance(size, numbers.Integral) else tuple(size)
        scales = [s / o for s, o in zip(spatial, out)]
    else:
        sf = (scale_factor,) * n if isinstance(scale_factor, numbers.Number) else tuple(scale_factor)
        out = tuple(int(np.floor(s * f)) for s, f in zip(spatial, sf))
        # NOTE: recompute_scale_factor=True indexes with in/out sizes, not 1/scale_factor
        # (size 5 at 1.7: source 3 for output 5, where 1/1.7 gives 2)
        scales = ([s / o for s, o in zip(spatial, out)] if recompute_scale_factor
                  else [1.0 / f for f in sf])
    if mode == "area":
        return _interp.interpolate_area(input, out)
    if mode != "nearest":
        linear_scales = [None] * n if size is not None or recompute_scale_factor else \
            [1.0 / f for f in sf]
        return _interp.interpolate_linear(input, out, linear_scales, mode, align_corners)
    from .._ops.creation import tensor
    x = input
    for i, (o, sc, s) in enumerate(zip(out, scales, spatial)):
        idx = np.minimum(np.floor(np.arange(o) * sc).astype(np.int64), s - 1)
        x = x.index_select(2 + i, tensor(idx))
    return x



def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated alias of ``interpolate`` (PyTorch warns the same way)."""
    warnings.warn("`nn.functional.upsample` is deprecated. Use `nn.functional.interpolate` "
                  "instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_bilinear(input, size=None, scale_factor=None):
    """Deprecated alias of ``interpolate(..., mode='bilinear', align_corners=True)``."""
    warnings.warn("`nn.functional.upsample_bilinear` is deprecated. Use "
                  "`nn.functional.interpolate` instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def upsample_nearest(input, size=None, scale_factor=None):
    """Deprecated alias of ``interpolate(..., mode='nearest')``."""
    warnings.warn("`nn.functional.upsample_nearest` is deprecated. Use "
                  "`nn.functional.interpolate` instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def native_channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """``channel_shuffle`` (PyTorch's name of the non-composite kernel)."""
    return channel_shuffle(input, groups)
