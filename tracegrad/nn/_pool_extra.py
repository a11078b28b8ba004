"""Pooling beyond ``_conv``'s: the ``*_with_indices`` forms, 3-D pools, adaptive max
pools of 1 and 3 dims, power-average (LP) pools, max_unpool (a scatter of the values to
their indices) and fold (col2im: an ``index_add`` of each column entry to its pixel).
All are composites of tensor ops; index maps come from shapes alone, on the host.
"""
from __future__ import annotations

import numpy as np

from .._ops.creation import tensor, zeros
from .._primitives.registry import ShapeError
from .._tensor import Tensor
from ._activation import relu
from ._conv import (_adaptive_avg_poolnd, _avg_poolnd, _max_poolnd, _tuple,
                    adaptive_max_pool2d, avg_pool1d, avg_pool2d)


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=False):
    """``(values, indices)`` of ``max_pool1d`` (indices into each input row)."""
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, True, 1,
                       "max_pool1d")


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=False):
    """``(values, indices)`` of ``max_pool2d`` (flat indices into each input plane)."""
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, True, 2,
                       "max_pool2d")


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=False):
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, True, 3,
                       "max_pool3d")


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over sliding windows of ``(N, C, D, H, W)``; padding counts as -inf."""
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode,
                       return_indices, 3, "max_pool3d")


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override, 3, "avg_pool3d")


def adaptive_avg_pool3d(input, output_size):
    return _adaptive_avg_poolnd(input, output_size, 3, "adaptive_avg_pool3d")


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max pooling of ``(N, C, L)`` to ``output_size`` (PyTorch's adaptive windows)."""
    if input.ndim not in (2, 3):
        raise ShapeError(f"adaptive_max_pool1d: expected a 2-D or 3-D input, got shape "
                         f"{tuple(input.shape)}")
    out = _tuple(output_size, 1, "adaptive_max_pool1d")
    res = adaptive_max_pool2d(input.unsqueeze(-2), (1,) + out, return_indices)
    if return_indices:   # a (1, L) plane's flat index is the row index
        return res[0].squeeze(-2), res[1].squeeze(-2)
    return res.squeeze(-2)


def _adaptive_bounds(size: int, out: int) -> list:
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Max pooling of ``(N, C, D, H, W)`` to ``output_size`` (PyTorch's adaptive
    windows: ``[floor(i*in/out), ceil((i+1)*in/out))`` per dim)."""
    name = "adaptive_max_pool3d"
    if input.ndim not in (4, 5):
        raise ShapeError(f"{name}: expected a 4-D or 5-D input, got shape "
                         f"{tuple(input.shape)}")
    spatial = tuple(input.shape[-3:])
    out = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * 3
    out = tuple(s if o is None else int(o) for o, s in zip(out, spatial))
    bounds = [_adaptive_bounds(s, o) for s, o in zip(spatial, out)]
    from .._ops.shape import stack
    cells = [input[..., d0:d1, h0:h1, w0:w1].amax((-3, -2, -1))
             for d0, d1 in bounds[0] for h0, h1 in bounds[1] for w0, w1 in bounds[2]]
    res = stack(cells, -1).reshape(tuple(input.shape[:-3]) + out)
    if not return_indices:
        return res
    arr = np.asarray(input._data)
    idx = np.empty(arr.shape[:-3] + out, np.int64)
    for i, (d0, d1) in enumerate(bounds[0]):
        for j, (h0, h1) in enumerate(bounds[1]):
            for k, (w0, w1) in enumerate(bounds[2]):
                win = arr[..., d0:d1, h0:h1, w0:w1]
                a = win.reshape(arr.shape[:-3] + (-1,)).argmax(-1)
                dd, hh, ww = np.unravel_index(a, win.shape[-3:])
                idx[..., i, j, k] = ((d0 + dd) * spatial[1] + h0 + hh) * spatial[2] + w0 + ww
    return res, tensor(idx)


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=False):
    return adaptive_max_pool3d(input, output_size, True)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=False):
    return adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=False):
    return adaptive_max_pool2d(input, output_size, True)


def _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, n, avg, name):
    if input.ndim not in (n + 1, n + 2):
        raise ShapeError(f"{name}: expected a {n + 1}-D or {n + 2}-D input, got shape "
                         f"{tuple(input.shape)}")
    k = _tuple(kernel_size, n, name)
    out = avg(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    # PyTorch's form: sign(out) * relu(|out|) keeps the sign of a negative odd power
    return (out.sign() * relu(out.abs())).mul(float(np.prod(k))).pow(1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """``(sum over each window of x ** p) ** (1 / p)``."""
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 1, avg_pool1d,
                    "lp_pool1d")


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 2, avg_pool2d,
                    "lp_pool2d")


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 3, avg_pool3d,
                    "lp_pool3d")


def _max_unpoolnd(input, indices, kernel_size, stride, padding, output_size, n, name):
    if input.ndim not in (n + 1, n + 2):
        raise ShapeError(f"{name}: expected a {n + 1}-D or {n + 2}-D input, got shape "
                         f"{tuple(input.shape)}")
    if tuple(indices.shape) != tuple(input.shape):
        raise ShapeError(f"{name}: expected indices of the input's shape "
                         f"{tuple(input.shape)}, got {tuple(indices.shape)}")
    if indices._data.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer (long) indices tensor, got "
                        f"{indices.dtype}")
    k = _tuple(kernel_size, n, name)
    stride = k if stride is None else _tuple(stride, n, name)
    padding = _tuple(padding, n, name)
    spatial = tuple(input.shape[-n:])
    default = tuple((i - 1) * s - 2 * p + kk for i, s, p, kk in zip(spatial, stride,
                                                                      padding, k))
    if output_size is None:
        out = default
    else:
        out = tuple(int(o) for o in output_size)
        if len(out) == n + 2:
            out = out[2:]
        if len(out) != n:
            raise ValueError(f"{name}: output_size should be a sequence containing {n} or "
                             f"{n + 2} elements, but it has a length of '{len(out)}'")
        for i, (o, d, s) in enumerate(zip(out, default, stride)):
            if not d - s < o < d + s:
                raise ValueError(f'{name}: invalid output_size "{out}" (dim {i} must be '
                                 f'between {d - s} and {d + s})')
    lead = tuple(input.shape[:-n])
    flat_in = input.reshape(lead + (-1,))
    flat_idx = indices.reshape(lead + (-1,))
    size = int(np.prod(out))
    data = np.asarray(indices._data) if not isinstance(indices._data, np.ndarray) else \
        indices._data
    if data.size and (data.min() < 0 or data.max() >= size):
        raise RuntimeError(f"{name}: found an invalid max index {int(data.max())} (output "
                           f"volume of size {out})")
    res = zeros(lead + (size,), dtype=input.dtype).scatter(-1, flat_idx, flat_in)
    return res.reshape(lead + out)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of ``max_pool1d``: each value back at its index, zeros
    elsewhere."""
    return _max_unpoolnd(input, indices, kernel_size, stride, padding, output_size, 1,
                         "max_unpool1d")


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of ``max_pool2d``.

    >>> import tracegrad as torch
    >>> x = torch.tensor([[[[1.0, 2.0], [4.0, 3.0]]]])
    >>> v, i = max_pool2d_with_indices(x, 2)
    >>> max_unpool2d(v, i, 2).tolist()
    [[[[0.0, 0.0], [4.0, 0.0]]]]
    """
    return _max_unpoolnd(input, indices, kernel_size, stride, padding, output_size, 2,
                         "max_unpool2d")


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpoolnd(input, indices, kernel_size, stride, padding, output_size, 3,
                         "max_unpool3d")


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """col2im, the adjoint of ``unfold``: ``(N, C*kH*kW, L) -> (N, C, H, W)``, entries
    that land on one pixel summed.

    >>> import tracegrad as torch
    >>> fold(torch.ones(1, 4, 4), (3, 3), 2).tolist()
    [[[[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]]]
    """
    name = "fold"
    out = _tuple(output_size, 2, name)
    k = _tuple(kernel_size, 2, name)
    dilation = _tuple(dilation, 2, name)
    padding = _tuple(padding, 2, name)
    stride = _tuple(stride, 2, name)
    if input.ndim not in (2, 3):
        raise ShapeError(f"fold: Expected 2D or 3D (batch mode) tensor for input with "
                         f"possible 0 batch size and non-zero dimensions, but got shape "
                         f"{tuple(input.shape)}")
    unbatched = input.ndim == 2
    x = input.unsqueeze(0) if unbatched else input
    N, ck, L = x.shape
    kk = k[0] * k[1]
    if ck % kk:
        raise ShapeError(f"fold: Expected size of input's dimension 1 to be divisible by the "
                         f"product of kernel_size, but got input.size(1)={ck} and "
                         f"kernel_size={k}")
    padded = tuple(o + 2 * p for o, p in zip(out, padding))
    blocks = [(pd - d * (kd - 1) - 1) // s + 1 for pd, d, kd, s in zip(padded, dilation, k,
                                                                       stride)]
    if min(blocks) < 1 or blocks[0] * blocks[1] != L:
        raise ShapeError(f"fold: Given output_size={out}, kernel_size={k}, dilation="
                         f"{dilation}, padding={padding}, stride={stride}, expected size of "
                         f"input's dimension 2 to match the calculated number of sliding "
                         f"blocks {blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]}, but "
                         f"got input.size(2)={L}")
    C = ck // kk
    # target pixel (in the padded plane) of entry (ki, kj, block l)
    ki, kj = np.divmod(np.arange(kk), k[1])
    bi, bj = np.divmod(np.arange(L), blocks[1])
    rows = ki[:, None] * dilation[0] + bi[None, :] * stride[0]
    cols = kj[:, None] * dilation[1] + bj[None, :] * stride[1]
    target = tensor((rows * padded[1] + cols).reshape(-1).astype(np.int64))
    vals = x.reshape(N, C, kk * L)
    res = zeros(N, C, padded[0] * padded[1], dtype=x.dtype).index_add(-1, target, vals)
    res = res.reshape(N, C, padded[0], padded[1])
    res = res[:, :, padding[0]:padding[0] + out[0], padding[1]:padding[1] + out[1]]
    return res.squeeze(0) if unbatched else res
