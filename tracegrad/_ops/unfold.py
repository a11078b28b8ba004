"""``Tensor.unfold``: sliding windows along one dim as a new last dim, a view.

NOTE (unfold as windows): the view is the WINDOWS primitive (convolution's sliding-window
view: O(1) NumPy strides eagerly, index math in codegen, a col2im gradient that sums
overlapping windows) over ``x`` with the dim moved last, and the window count moved back.
As ``as_strided`` (NOTE (strided views)) it cost a gather index the size of the result:
143 ms eagerly for ``zeros(1000, 1000).unfold(1, 8, 4)`` (torch: 1 us); as windows, a few
views. WINDOWS' NumPy array is read-only (conv never writes it); a view must be writable
where it holds each element once, as PyTorch's is.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided as np_as_strided

from .._dispatch import apply
from .._primitives import PRIMITIVES as P
from .._tensor import Tensor, _wrap_dim, element_strides
from ..codegen.ops import Op
from .shape import movedim, reshape
from .views import make_view


def unfold(x: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """All slices of length ``size`` along ``dimension``, ``step`` apart, as a new last dim
    (a view), as ``torch.Tensor.unfold``.

    >>> import tracegrad as torch
    >>> torch.arange(5).unfold(0, 2, 2)
    tensor([[0, 1],
            [2, 3]])
    """
    shape = tuple(x._data.shape)
    d = _wrap_dim(dimension, max(len(shape), 1), "unfold")
    extent = shape[d] if shape else 1
    if size < 0 or size > extent:
        raise RuntimeError(f"unfold: maximum size for tensor at dimension {d} is {extent} but "
                           f"size is {size} (shape {shape})")
    if step <= 0:
        raise RuntimeError(f"unfold: step is {step} but must be > 0 (shape {shape})")
    if not shape:
        return reshape(x, (1,))[:size]
    windows = _windows(movedim(x, d, -1), size, step)
    return movedim(windows, -2, d)


def _windows(x: Tensor, size: int, step: int) -> Tensor:
    """Windows of ``size`` every ``step`` along the last dim: ``(..., count, size)``."""
    out = apply(P[Op.WINDOWS], (x,), {"window": (size,), "stride": (step,), "dilation": (1,)})
    data = x._data
    if type(out._data) is np.ndarray and type(data) is np.ndarray and data.flags.writeable:
        out._data = np_as_strided(data, out._data.shape, out._data.strides)
    return make_view(x, out, _windows, (size, step), _windows_strides)


def _windows_strides(x: Tensor, size: int, step: int) -> tuple:
    strides = element_strides(x._data)
    return strides[:-1] + (strides[-1] * step, strides[-1])


__all__: list[str] = []   # (a Tensor method only, as in PyTorch)
