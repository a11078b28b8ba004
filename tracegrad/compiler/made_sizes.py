"""Tensors a traced function makes from a symbolic size: ``torch.zeros(n, 3)``,
``arange(n)``, ``tril``'s mask, a gradient rule's zeros of a symbolic shape.

NOTE (tensors made from a size): a factory builds a concrete NumPy array, which the trace
captures as an input of the program (the tracer's module doc).  Given a guard trace's
``SymInt`` (NOTE (guards instead of a retrace) in symint.py) it would read the size
through ``__index__``, an escape, and every new size would retrace.  The factories call
``_trace_state.made_from_sizes(shape, make, *args)`` instead; in a guard trace ``made``
below runs ``make`` at the traced size's plain values and keeps ``(make, args)`` on the
tensor the program reads, so that a size served on the guards gets its own tensor
(``sources_at``), and the fit checks the remade tensor against the one each probe trace
made at its size (``guards.made_inputs_differ``).

The tensor the function sees holds a ``MadeFromSizes``: a traced value of the symbolic
shape whose INPUT node is made when the trace first uses it, as a plain trace captures the
concrete tensor at its first use, so both graphs agree node for node.  Reading its values
in Python (``.tolist()``, ``.numpy()``, ``bool()``) raises TraceError as for any traced
value: the guard trace fails, and every new size retraces (a plain trace reads them, and
what it reads is that size's).
"""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor, _wrap
from .symint import SymFloat, SymInt, evaluate, is_symbolic
from .tracer import TraceValue


class MadeFromSizes(TraceValue):
    """A factory's result in a guard trace: its INPUT node is made at the first use."""

    __slots__ = ("_node", "stand_in")

    def __init__(self, shape, dtype, tracer, stand_in: Tensor) -> None:
        self.strides = None
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.tracer = tracer
        self.stand_in = stand_in   # the concrete tensor at the traced size: what runs
        self._node = None

    @property
    def node(self) -> int:   # type: ignore[override]
        if self._node is None:
            t = self.tracer
            self._node = t._new_input(self.shape, self.dtype, ("captured", self.stand_in))
            t.captured[id(self.stand_in)] = (self.stand_in, self._node)
        return self._node


def made(tracer, shape, make, args) -> Tensor:
    """``make(*args)`` in a guard trace (NOTE (tensors made from a size))."""
    leaves = list(_leaves((shape, args)))
    if not any(is_symbolic(v) for v in leaves) or any(type(v) is SymFloat for v in leaves):
        return make(*args)   # (a SymFloat escapes there: no recipe remakes it)
    plain = _plain(args)
    t = make(*plain)
    data = t._data
    if (not isinstance(data, np.ndarray) or t._requires_grad
            or data.shape != tuple(_plain(tuple(shape)))):
        return make(*args)   # (on a device, a leaf: the sizes escape, followed no further)
    stand_in = _wrap(data)   # (made in the trace: a local, never written back)
    stand_in._version = t._version   # the same tensor to the trace (what backward saves)
    stand_in.__dict__["_made_from"] = (make, args)
    t._data = MadeFromSizes(shape, data.dtype, tracer, stand_in)
    return t


def remade(t: Tensor, n: int) -> Tensor | None:
    """The tensor ``t`` (a stand-in ``made`` kept) is at size ``n``, or None when ``t``
    was not made from a symbolic size."""
    recipe = t.__dict__.get("_made_from") if t is not None else None
    if recipe is None:
        return None
    make, args = recipe
    return make(*at_size(args, n))


def sources_at(input_sources: list, n: int) -> list:
    """A guard trace's ``Entry.input_sources`` with each tensor made from a symbolic size
    made again at size ``n``."""
    out = []
    for kind, ref in input_sources:
        again = remade(ref, n) if kind == "captured" else None
        out.append((kind, ref if again is None else again))
    return out


def _leaves(value):
    if isinstance(value, (tuple, list)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _plain(value):
    if type(value) is SymInt:
        return value._v
    if type(value) in (tuple, list):
        return type(value)(_plain(v) for v in value)
    return value


def at_size(value, n: int):
    """``value`` with every SymInt in it (in tuples, lists, slices, dicts) replaced by its
    value at size ``n``."""
    if type(value) is SymInt:
        return int(evaluate(value.expr, n))
    if isinstance(value, (tuple, list)):
        items = [at_size(v, n) for v in value]
        return type(value)(items) if not hasattr(value, "_fields") else type(value)(*items)
    if isinstance(value, slice):
        return slice(*(at_size(v, n) for v in (value.start, value.stop, value.step)))
    if isinstance(value, dict):
        return {k: at_size(v, n) for k, v in value.items()}
    return value
