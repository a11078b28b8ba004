"""NumPy arrays of a program's views over its buffers, for the steps NumPy computes
(``runtime.cpu_program``'s extern calls and the results that are views)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..codegen.schedule import BufferInfo
from ..codegen.view import ShapeTracker, gather_numpy, strided_numpy

ViewMaker = Callable[[np.ndarray], np.ndarray]


def view_maker(view: ShapeTracker | None, info: BufferInfo) -> ViewMaker | None:
    """A fast maker of ``view`` over the (C-contiguous) buffer ``info``, decided once.

    A single unmasked view (a transpose, a slice, a broadcast) becomes an ``ndarray``
    over the same memory with byte strides (~1 µs; ``as_strided`` costs 20-40 µs)."""
    if view is None:
        return None
    v = view.last
    if len(view.views) != 1 or v.mask is not None or not v.shape or 0 in v.shape \
            or 0 in info.shape:
        return lambda base: view_array(base, view)
    item = info.dtype.itemsize
    shape, strides = tuple(v.shape), tuple(s * item for s in v.strides)
    offset, dtype = v.offset * item, info.dtype

    def make(base: np.ndarray) -> np.ndarray:
        if not base.flags.c_contiguous:
            return view_array(base, view)
        out = np.ndarray(shape, dtype, buffer=base, offset=offset, strides=strides)
        out.flags.writeable = False
        return out
    return make


def view_array(base: np.ndarray, view: ShapeTracker | None) -> np.ndarray:
    """``view`` over ``base``: a strided view where one exists, else a gathered copy."""
    if view is None:
        return base
    out = strided_numpy(view, base)
    return gather_numpy(view, base) if out is None else out
