"""``F.fractional_max_pool2d`` / ``3d`` (Graham, 2014): max pooling over windows whose
starts follow a pseudo-random sequence per ``(n, c)`` plane, from PyTorch's
``generate_intervals`` rule and its ``_random_samples`` layout, so given the same samples
the windows (and outputs) are PyTorch's. The windows' entries are gathered from the
flattened planes and reduced with ``amax``; the indices come from the host."""
from __future__ import annotations

import numpy as np

from .._ops.creation import rand, tensor
from .._primitives.registry import ShapeError
from .._tensor import Tensor, _concrete
from ._conv import _tuple


def _intervals(sample: np.ndarray, size: int, out: int, k: int, dtype) -> np.ndarray:
    """Window starts ``(planes, out)`` (computed in the input's dtype, as PyTorch)."""
    seq = np.empty(sample.shape + (out,), np.int64)
    if out > 1:
        alpha = dtype.type(size - k) / dtype.type(out - 1)
        i = np.arange(out - 1, dtype=dtype)
        s = sample.astype(dtype)[..., None]
        seq[..., :-1] = ((i + s) * alpha).astype(np.int64) - (s * alpha).astype(np.int64)
    seq[..., -1] = size - k
    return seq


def _fractional_max_pool(input, kernel_size, output_size, output_ratio, return_indices,
                         samples, n, name):
    if input.ndim not in (n + 1, n + 2):
        raise ShapeError(f"{name}: expected a {n + 1}-D or {n + 2}-D input, got shape "
                         f"{tuple(input.shape)}")
    unbatched = input.ndim == n + 1
    x = input.unsqueeze(0) if unbatched else input
    k = _tuple(kernel_size, n, name)
    spatial = tuple(x.shape[2:])
    if output_size is None:
        if output_ratio is None:
            raise ValueError(f"{name} requires specifying either an output_size or an "
                             f"output_ratio")
        ratio = (output_ratio,) * n if isinstance(output_ratio, (int, float)) else \
            tuple(output_ratio)
        output_size = tuple(int(s * r) for s, r in zip(spatial, ratio))
    out = _tuple(output_size, n, name)
    for o, kk, s in zip(out, k, spatial):
        if o + kk - 1 > s:
            raise ShapeError(f"{name}(): pool size {k} too large relative to input size "
                             f"{spatial} for output size {out}")
    N, C = x.shape[:2]
    dt = np.dtype(x._data.dtype)
    if samples is None:
        samples = rand(N, C, n, dtype=x.dtype)
    smp = np.asarray(_concrete(samples._data, f"{name}(_random_samples)")).reshape(N, C, n)
    # PyTorch's sample order: (w, h) in 2-D, (t, h, w) in 3-D
    order = (1, 0) if n == 2 else tuple(range(n))
    starts = [_intervals(smp[..., order[d]], spatial[d], out[d], k[d], dt) for d in range(n)]
    # flat position of every (output point, window offset) in each plane
    lin = np.zeros((N, C) + out + k, np.int64)
    for d in range(n):
        shape = (N, C) + tuple(out[i] if i == d else 1 for i in range(n)) + \
            tuple(k[i] if i == d else 1 for i in range(n))
        pos = starts[d].reshape((N, C) + tuple(out[i] if i == d else 1 for i in range(n))
                                + (1,) * n) + np.arange(k[d]).reshape(
                                    (1, 1) + (1,) * n + tuple(k[i] if i == d else 1
                                                              for i in range(n)))
        stride = int(np.prod(spatial[d + 1:]))
        lin = lin + np.broadcast_to(pos * stride, shape)
    P, K = int(np.prod(out)), int(np.prod(k))
    flat = x.reshape(N, C, -1)
    vals = flat.gather(2, tensor(lin.reshape(N, C, P * K))).reshape(N, C, P, K)
    res = vals.amax(-1).reshape((N, C) + out)
    if unbatched:
        res = res.squeeze(0)
    if not return_indices:
        return res
    arr = np.asarray(_concrete(vals._data, f"{name}(return_indices=True)"))
    arg = arr.argmax(-1)
    idx = np.take_along_axis(lin.reshape(N, C, P, K), arg[..., None], -1)
    idx = tensor(idx.reshape((N, C) + out))
    return res, idx.squeeze(0) if unbatched else idx


def fractional_max_pool2d(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples=None):
    """Fractional max pooling of ``(N, C, H, W)`` to ``output_size`` (or ``output_ratio``
    of the input size), windows of ``kernel_size``."""
    return _fractional_max_pool(input, kernel_size, output_size, output_ratio,
                                return_indices, _random_samples, 2, "fractional_max_pool2d")


def fractional_max_pool3d(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples=None):
    return _fractional_max_pool(input, kernel_size, output_size, output_ratio,
                                return_indices, _random_samples, 3, "fractional_max_pool3d")


def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    return fractional_max_pool2d(input, kernel_size, output_size, output_ratio, True,
                                 _random_samples)


def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    return fractional_max_pool3d(input, kernel_size, output_size, output_ratio, True,
                                 _random_samples)

