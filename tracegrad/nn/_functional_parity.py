"""Functional forms PyTorch scripts still call: local_response_norm (and the legacy
CrossMapLRN2d's form), dropout3d,
feature_alpha_dropout, pdist, multilabel_margin_loss and
triplet_margin_with_distance_loss, each with PyTorch's formula as a composite."""
from __future__ import annotations

import numpy as np

from .._ops import math as M
from .._ops.creation import tensor
from .._primitives.registry import ShapeError
from .._tensor import Tensor, _concrete
from ._loss import _reduce, _reduction
from ._norm import pairwise_distance
from ._pool_extra import avg_pool3d


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """``x / (k + alpha * mean of x**2 over `size` neighbouring channels) ** beta``
    (PyTorch's form: the mean over a zero-padded window of channels)."""
    if input.ndim < 3:
        raise ValueError(f"local_response_norm: Expected 3D or higher dimensionality input "
                         f"(got {input.ndim} dimensions, shape {tuple(input.shape)})")
    if input.numel() == 0:
        return input
    from ._conv import avg_pool2d
    from .functional import pad
    div = input * input
    if input.ndim == 3:
        div = pad(div.unsqueeze(1), (0, 0, size // 2, (size - 1) // 2))
        div = avg_pool2d(div, (size, 1), stride=1).squeeze(1)
    else:
        sizes = tuple(input.shape)
        div = div.reshape(sizes[0], 1, sizes[1], sizes[2], -1)
        div = pad(div, (0, 0, 0, 0, size // 2, (size - 1) // 2))
        div = avg_pool3d(div, (size, 1, 1), stride=1).squeeze(1).reshape(sizes)
    return input / (div * alpha + k).pow(beta)


def _cross_map_window(channels: int, size: int) -> np.ndarray:
    """``(C, C)`` counts of channel j in channel c's sum, from PyTorch's legacy running-sum
    recurrence (its window drops channel 0 one step late: kept as is)."""
    pre_pad = int((size - 1) / 2 + 1)
    eye = np.eye(channels)
    m = np.zeros((channels, channels))
    m[0] = eye[:min(pre_pad, channels)].sum(0)
    for c in range(1, channels):
        m[c] = m[c - 1]
        if c < channels - pre_pad + 1:
            m[c] += eye[c + pre_pad - 1]
        if c > pre_pad:
            m[c] -= eye[c - pre_pad]
    return m


def cross_map_lrn2d(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                    k: float = 1.0) -> Tensor:
    """``nn.CrossMapLRN2d``'s forward: ``x * (k + alpha / size * windowed sum of x**2)
    ** -beta`` over channels of a 4-D input."""
    if input.ndim != 4:
        raise ValueError(f"CrossMapLRN2d: Expected input to be 4D, got {input.ndim}D instead "
                         f"(shape {tuple(input.shape)})")
    m = tensor(_cross_map_window(input.shape[1], size).astype(np.dtype(input._data.dtype)))
    sums = (m @ (input * input).movedim(1, -2)).movedim(-2, 1)
    return input * (sums * (alpha / size) + k).pow(-beta)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of ``(N, C, D, H, W)`` with probability ``p``."""
    from .functional import _channel_dropout
    if input.ndim not in (4, 5):
        raise ValueError(f"dropout3d: expected a 4-D or 5-D input, got shape "
                         f"{tuple(input.shape)}")
    return _channel_dropout(input, p, training, 3, inplace)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False) -> Tensor:
    """``alpha_dropout`` with one mask entry per channel (dims after the first two share
    it), keeping SELU's mean and variance."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    from .._ops.creation import rand
    from .functional import _inplace_result
    if p == 1.0:
        return _inplace_result(input, input * 0.0, inplace)
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    keep = rand(*shape, dtype=input.dtype) >= p
    alpha = 1.7580993408473766
    a = 1.0 / np.sqrt((alpha * alpha * p + 1) * (1 - p))
    out = M.where(keep, input, -alpha) * a + a * alpha * p
    return _inplace_result(input, out, inplace)


def pdist(input: Tensor, p: float = 2) -> Tensor:
    """The ``p``-norm distances between all row pairs ``i < j`` of ``(N, M)``, in
    row-major order of the upper triangle."""
    if input.ndim != 2:
        raise ShapeError(f"pdist only supports 2D tensors, got: {input.ndim}D (shape "
                         f"{tuple(input.shape)})")
    if p < 0:
        raise RuntimeError(f"pdist only supports non-negative p values, got {p}")
    i, j = np.triu_indices(input.shape[0], 1)
    diff = input[tensor(i)] - input[tensor(j)]
    return diff.norm(p=p, dim=-1)


def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    """``sum over target classes j, non-target classes i of max(0, 1 - (x[j] - x[i]))
    / C``; each target row lists class indices, ended by the first -1."""
    reduction = _reduction(size_average, reduce, reduction)
    if input.ndim not in (1, 2) or tuple(target.shape) != tuple(input.shape):
        raise ShapeError(f"multilabel_margin_loss: expected a 1-D or 2-D input and a target "
                         f"of the same shape, got input {tuple(input.shape)} and target "
                         f"{tuple(target.shape)}")
    if target._data.dtype.kind not in "iu":
        raise TypeError(f"multilabel_margin_loss: expected an integer (long) target, got "
                        f"{target.dtype}")
    one_d = input.ndim == 1
    x = input.unsqueeze(0) if one_d else input
    tgt = _concrete(target._data, "multilabel_margin_loss(target)").reshape(x.shape)
    N, C = x.shape
    if tgt.size and (tgt.max() >= C or tgt.min() < -1):
        raise IndexError(f"multilabel_margin_loss: target values must be in [-1, {C - 1}], "
                         f"got values in [{int(tgt.min())}, {int(tgt.max())}]")
    # positions before the first -1 are targets
    valid = np.cumprod(tgt != -1, axis=1).astype(bool)
    is_target = np.zeros((N, C), bool)
    rows = np.repeat(np.arange(N), C).reshape(N, C)
    is_target[rows[valid], tgt[valid]] = True
    x_j = x.gather(1, tensor(np.where(valid, tgt, 0).astype(np.int64)))      # (N, C)
    pair = tensor(valid[:, :, None] & ~is_target[:, None, :])
    hinge = M.relu(1.0 - x_j.unsqueeze(2) + x.unsqueeze(1))
    loss = M.where(pair, hinge, 0.0).sum((1, 2)) / C
    if one_d:
        loss = loss.squeeze(0)
    return _reduce(loss, reduction)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function=None, margin: float = 1.0,
                                      swap: bool = False, reduction: str = "mean") -> Tensor:
    """``max(d(a, p) - d(a, n) + margin, 0)`` for any distance ``d`` (pairwise by
    default); ``swap`` uses ``min(d(a, n), d(p, n))``."""
    if margin <= 0:
        raise ValueError(f"triplet_margin_with_distance_loss: margin must be greater than 0, "
                         f"got {margin}")
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have "
                           f"the same number of dimensions, but got: anchor {anchor.ndim}D, "
                           f"positive {positive.ndim}D, and negative {negative.ndim}D inputs")
    dist = distance_function if distance_function is not None else pairwise_distance
    d_pos = dist(anchor, positive)
    d_neg = dist(anchor, negative)
    if swap:
        d_swap = dist(positive, negative)
        d_neg = M.where(d_swap < d_neg, d_swap, d_neg)
    loss = (margin + d_pos - d_neg).clamp(min=0.0)
    return _reduce(loss, reduction)


def conv_tbc(input: Tensor, weight: Tensor, bias: Tensor, pad: int = 0) -> Tensor:
    """1-D convolution of a time-batch-channel ``(T, N, C_in)`` input with a
    ``(k, C_in, C_out)`` weight (``conv1d`` with the dims moved)."""
    if input.ndim != 3 or weight.ndim != 3 or bias.ndim != 1:
        raise ShapeError(f"conv_tbc: expected a 3-D input, a 3-D weight and a 1-D bias, got "
                         f"shapes {tuple(input.shape)}, {tuple(weight.shape)} and "
                         f"{tuple(bias.shape)}")
    from ._conv import conv1d
    out = conv1d(input.permute(1, 2, 0), weight.permute(2, 1, 0), bias, padding=pad)
    return out.permute(2, 0, 1)


def linear_cross_entropy(input: Tensor, linear_weight: Tensor, target: Tensor, *,
                         linear_bias: Tensor | None = None, weight: Tensor | None = None,
                         reduction: str = "mean", ignore_index: int | None = None,
                         label_smoothing: float = 0.0, options=None) -> Tensor:
    """``cross_entropy(linear(input, linear_weight, linear_bias), target)`` with
    ``linear_weight`` ``(C, *out_features, in_features)`` (PyTorch's reference path;
    ``options``, which only chunk the batch to save memory there, are ignored)."""
    from ._loss import cross_entropy
    from .functional import linear
    if input.ndim not in (1, 2):
        raise RuntimeError(f"linear_cross_entropy: expected input with dimensionality 1 or "
                           f"2, got {input.ndim} (shape {tuple(input.shape)})")
    if linear_weight.ndim < 2:
        raise RuntimeError(f"linear_cross_entropy: expected linear_weight with "
                           f"dimensionality at least 2, got {linear_weight.ndim}")
    batch, in_features = tuple(input.shape[:-1]), input.shape[-1]
    if in_features != linear_weight.shape[-1]:
        raise RuntimeError(f"linear_cross_entropy: expected equal input and linear_weight "
                           f"last dimensions (in_features), got {in_features} and "
                           f"{linear_weight.shape[-1]}, respectively")
    classes, out_features = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (classes,) + out_features:
        raise RuntimeError(f"linear_cross_entropy: expected linear_bias shape "
                           f"{(classes,) + out_features}, got {tuple(linear_bias.shape)}")
    if out_features and not batch:
        raise RuntimeError(f"linear_cross_entropy: K-dimensional loss defined by "
                           f"linear_weight shape {tuple(linear_weight.shape)} requires "
                           f"batched input, (N, {in_features}), got unbatched input with "
                           f"shape {tuple(input.shape)}")
    logits_shape = batch + (classes,) + out_features
    if tuple(target.shape) == logits_shape and ignore_index is not None:
        raise RuntimeError("linear_cross_entropy: ignore_index cannot be specified when "
                           "target contains probabilities")
    rows = int(np.prod(out_features)) * classes
    logits = linear(input, linear_weight.reshape(rows, in_features),
                    linear_bias.reshape(rows) if linear_bias is not None else None)
    return cross_entropy(logits.reshape(logits_shape), target, weight=weight,
                         reduction=reduction,
                         ignore_index=-100 if ignore_index is None else ignore_index,
                         label_smoothing=label_smoothing)
