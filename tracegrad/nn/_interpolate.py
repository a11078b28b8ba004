"""``F.interpolate``'s linear family (``linear``, ``bilinear``, ``trilinear``),
``bicubic`` and ``area``, beside the nearest mode in ``functional``.

Linear and cubic interpolation are separable: each resized dim is one matmul with an
``(out, in)`` matrix of two (four) non-zero weights a row, built on the host from PyTorch's source-index rule.
The gradient is then the transposed matmul, and a compile trace sees plain matmuls.
"""
from __future__ import annotations

import numpy as np

from .._ops.creation import tensor
from .._primitives.registry import ShapeError
from .._tensor import Tensor

_LINEAR_DIMS = {"linear": 1, "bilinear": 2, "trilinear": 3}


def _linear_matrix(size: int, out: int, align_corners: bool, scale: float | None,
                   dtype) -> np.ndarray:
    """Row ``o`` holds the weights of output ``o`` on the input positions (PyTorch's
    ``area_pixel_compute_source_index`` and its clamps)."""
    if align_corners:
        step = (size - 1) / (out - 1) if out > 1 else 0.0
        src = np.arange(out) * step
    else:
        step = scale if scale is not None else size / out
        src = np.maximum((np.arange(out) + 0.5) * step - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), size - 1)
    i1 = np.where(i0 < size - 1, i0 + 1, i0)
    w1 = src - i0
    m = np.zeros((out, size))
    np.add.at(m, (np.arange(out), i0), 1.0 - w1)
    np.add.at(m, (np.arange(out), i1), w1)
    return m.astype(dtype)


def _cubic_matrix(size: int, out: int, align_corners: bool, scale: float | None,
                  dtype) -> np.ndarray:
    """Bicubic weights (PyTorch's cubic convolution, A = -0.75, taps at the clamped
    indices ``floor(src) - 1 .. floor(src) + 2``; the source index is not clamped)."""
    if align_corners:
        src = np.arange(out) * ((size - 1) / (out - 1) if out > 1 else 0.0)
    else:
        step = scale if scale is not None else size / out
        src = (np.arange(out) + 0.5) * step - 0.5
    i0 = np.floor(src).astype(np.int64)
    t = src - i0
    A = -0.75

    def near(x):   # |x| <= 1
        return ((A + 2) * x - (A + 3)) * x * x + 1

    def far(x):    # 1 < |x| < 2
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A
    weights = (far(t + 1), near(t), near(1 - t), far(2 - t))
    m = np.zeros((out, size))
    for k, w in enumerate(weights):
        np.add.at(m, (np.arange(out), np.clip(i0 - 1 + k, 0, size - 1)), w)
    return m.astype(dtype)


def interpolate_linear(input: Tensor, out_size: tuple, scales: tuple, mode: str,
                       align_corners: bool | None) -> Tensor:
    """``input`` resized to ``out_size`` by ``mode`` (``scales``: per dim ``1 /
    scale_factor`` when given, else None)."""
    n = input.ndim - 2
    if mode == "bicubic" and n != 2:
        raise NotImplementedError(f"interpolate: Got {input.ndim}D input, but bicubic mode "
                                  f"needs 4D input (input of shape {tuple(input.shape)})")
    if mode != "bicubic" and _LINEAR_DIMS[mode] != n:
        want = _LINEAR_DIMS[mode] + 2
        raise NotImplementedError(f"interpolate: Got {input.ndim}D input, but {mode} mode "
                                  f"needs {want}D input (input of shape "
                                  f"{tuple(input.shape)})")
    if not input.is_floating_point():
        raise TypeError(f"interpolate: mode {mode!r} needs a floating point input, got "
                        f"{input.dtype}")
    dt = np.dtype(input._data.dtype)
    x = input
    for i, (o, sc) in enumerate(zip(out_size, scales)):
        size = input.shape[2 + i]
        if o == size and (align_corners or sc is None or sc == 1.0):   # the identity
            continue
        build = _cubic_matrix if mode == "bicubic" else _linear_matrix
        m = tensor(build(size, o, bool(align_corners), sc, dt))
        x = (x.movedim(2 + i, -1) @ m.t()).movedim(-1, 2 + i)
    return x


def interpolate_area(input: Tensor, out_size: tuple) -> Tensor:
    from ._conv import adaptive_avg_pool1d, adaptive_avg_pool2d
    from ._pool_extra import adaptive_avg_pool3d
    n = input.ndim - 2
    if n not in (1, 2, 3):
        raise ShapeError(f"interpolate: area mode needs a 3-D, 4-D or 5-D input, got shape "
                         f"{tuple(input.shape)}")
    pool = (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d)[n - 1]
    return pool(input, out_size)
