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
layout changes no kernel. A C-contiguous argument with size-1 dims whose strides NumPy
leaves arbitrary (``x[:, :1]``) is traced as the plain contiguous layout: its
``stride()`` in those dims reports the contiguous value (xfail in
tests/test_layout_signatures.py). Storage queries (``storage_offset``, ``data_ptr``,
``as_strided``) stay refused in a trace (NOTE (argument layouts) in _ops/strided.py).
Cost (2026-12-02, load ~9, in-process A/B of 40 interleaved rounds, medians): the
signature of one contiguous argument 749 -> 874 ns, of two 939 -> 1205 ns; a whole tiny
compiled call (``x + 1.0`` on 4 floats) 6.35 -> 6.49 us, two arguments 6.90 -> 6.96 us.
"""
from __future__ import annotations

import numpy as np


def argument_layout(data):
    """None for C-contiguous (or non-NumPy) data, else its strides in elements."""
    if type(data) is not np.ndarray or data.flags.c_contiguous:
        return None
    itemsize = data.itemsize
    return tuple([s // itemsize for s in data.strides])


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
