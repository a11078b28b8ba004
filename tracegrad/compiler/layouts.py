"""An argument's memory layout as part of a compiled function's signature.

NOTE (layout signatures): eagerly an argument may be a non-contiguous view (a transpose,
a slice with steps, an expand), and what a function computes can depend on that:
``x.view(-1)`` raises on a transposed ``x``, ``x.is_contiguous()``, ``x.stride()`` and
``x.contiguous() is x`` answer differently, and ``x.reshape(...)`` copies where eagerly a
view is impossible. A signature therefore holds each tensor argument's layout class:
None for a C-contiguous array (the common call: one ``flags`` read), else its strides in
elements, which fix the stride pattern relative to its shape. The trace gives the
argument's value those strides (``Tracer.argument``), so the view ops' own stride rules
(``_ops/shape.py``, ``_ops/views.py``) give eager's answers, and each layout traces once.
The program itself reads arguments by their logical index, whatever their layout, so a
layout changes no kernel. A C-contiguous argument whose size-1 (or empty) dims carry
strides other than C's (NumPy leaves them free: ``arange(4).reshape(1, 4).t()`` has
(1, 4)) keys those strides too, so ``stride()`` answers as eagerly; the check costs an
ordinary argument a ``1 in shape`` and a ``size`` read (below). Storage queries
(``storage_offset``, ``data_ptr``, ``as_strided``) stay refused in a trace (NOTE (argument layouts) in _ops/strided.py).
Cost (2026-12-02, load ~9, in-process A/B of 40 interleaved rounds, medians): the
signature of one contiguous argument 749 -> 874 ns, of two 939 -> 1205 ns; a whole tiny
compiled call (``x + 1.0`` on 4 floats) 6.35 -> 6.49 us, two arguments 6.90 -> 6.96 us.
The size-1 check (2026-12-02, load ~5, 25 interleaved rounds): the inline expression
83 -> 117 ns an argument; a whole call of one argument 4.21 -> 4.23 us, two 4.73 ->
4.82 us (medians of 3 alternated processes, within their noise).
"""
from __future__ import annotations

import numpy as np

from .._tensor import contiguous_strides


def argument_layout(data):
    """None for C-contiguous (or non-NumPy) data with the strides a trace gives it, else
    its strides in elements (NOTE (layout signatures))."""
    if type(data) is not np.ndarray:
        return None
    contiguous = data.flags.c_contiguous
    if contiguous and 1 not in data.shape and data.size:
        return None   # (every stride is C's: only a size-1 or empty dim's may be another)
    itemsize = data.itemsize
    strides = tuple([s // itemsize for s in data.strides])
    return None if contiguous and strides == contiguous_strides(data.shape) else strides


def has_layout(key) -> bool:
    """Whether a signature holds a non-contiguous tensor argument."""
    return any(isinstance(p, tuple) and p[4] is not None for p in key[1])


def overlaps_itself(data) -> bool:
    """Whether two elements of ``data`` may share memory (an expanded or unfolded
    argument): a program writes each element of an argument apart, while eagerly a write
    into one copy is a write into all, so a call that writes such an argument runs eagerly.
    Conservative: strides sorted ascending must each pass the span of the smaller ones."""
    if type(data) is not np.ndarray or data.flags.c_contiguous:
        return False
    span = 0
    for n, s in sorted(zip(data.shape, data.strides), key=lambda d: abs(d[1])):
        if n == 0:
            return False
        if n > 1:
            if abs(s) <= span:
                return True
            span += (n - 1) * abs(s)
    return False
