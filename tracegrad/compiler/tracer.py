"""Tracing: run a function on tensors that carry only a shape and a dtype, recording
every primitive call into a ``codegen.graph.Graph``.

The dispatcher (``tracegrad._dispatch.apply``) hands each primitive call to the active
``Tracer``. Tensor arguments become INPUT nodes; a concrete tensor the function reads
without receiving it (a module parameter, a closure variable, a constant it built) is
*captured*: it becomes an INPUT node too, and its storage is read again at every call,
so it is never baked into the generated code. Python scalars become CONST nodes.
"""
from __future__ import annotations

import numpy as np

from .. import _trace_state
from .._primitives.registry import describe
from .._tensor import Tensor, _wrap
from ..codegen.graph import Graph
from ..codegen.ops import Op
from .errors import TraceError


class TraceValue:
    """What a traced tensor holds instead of an array: a shape, a dtype and a node."""

    __slots__ = ("shape", "dtype", "node", "tracer")

    def __init__(self, shape, dtype, node: int, tracer: "Tracer") -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.node = node
        self.tracer = tracer

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def flags(self):
        raise TraceError("a compile trace has no memory layout to inspect")

    def __repr__(self) -> str:
        return f"%{self.node}: {self.dtype.name}{list(self.shape)}"


class Tracer:
    """Records primitive calls. ``inputs`` are the argument tensors' INPUT nodes in order;
    ``captured`` maps each captured tensor's id to its (tensor, node id)."""

    def __init__(self) -> None:
        self.graph = Graph()
        self.n_inputs = 0
        self.input_kinds: list[tuple] = []  # ("arg", k) | ("captured", tensor) | ("grad", k)
        self.captured: dict[int, tuple[Tensor, int]] = {}
        self._consts: dict = {}

    # ---- inputs ------------------------------------------------------------------------
    def _new_input(self, shape, dtype, kind) -> int:
        node = self.graph.add(Op.INPUT, (), tuple(shape), np.dtype(dtype), index=self.n_inputs)
        self.n_inputs += 1
        self.input_kinds.append(kind)
        return node.id

    def argument(self, shape, dtype, requires_grad: bool, position: int) -> Tensor:
        node = self._new_input(shape, dtype, ("arg", position))
        t = _wrap(TraceValue(shape, dtype, node, self))
        t._requires_grad = bool(requires_grad)
        return t

    def grad_input(self, like: Tensor, position: int) -> Tensor:
        data = like._data
        node = self._new_input(data.shape, data.dtype, ("grad", position))
        return _wrap(TraceValue(data.shape, data.dtype, node, self))

    def _capture(self, t: Tensor) -> int:
        entry = self.captured.get(id(t))
        if entry is None:
            data = t._data
            if not isinstance(data, np.ndarray):
                raise TraceError("a tensor from another trace was used inside this one")
            node = self._new_input(data.shape, data.dtype, ("captured", t))
            entry = self.captured[id(t)] = (t, node)
        return entry[1]

    def _const(self, value, dtype) -> int:
        key = (type(value), value, np.dtype(dtype))
        node = self._consts.get(key)
        if node is None:
            node = self._consts[key] = self.graph.add(Op.CONST, (), (), np.dtype(dtype),
                                                      value=value).id
        return node

    # ---- recording ---------------------------------------------------------------------
    def record(self, prim, inputs, args, attrs) -> TraceValue:
        if prim.op is Op.INDEX and any(np.dtype(a.dtype) == np.bool_ for a in args[1:]):
            raise TraceError("indexing with a boolean mask has a data-dependent shape")
        avals, ids = [], []
        sibling = _sibling_dtype(prim.op, args)
        for x, a in zip(inputs, args):
            if isinstance(a, TraceValue):
                if a.tracer is not self:
                    raise TraceError("a tensor from another trace was used inside this one")
                ids.append(a.node)
                avals.append(a)
            elif isinstance(x, Tensor):
                ids.append(self._capture(x))
                avals.append(a)
            else:
                ids.append(self._const(a, sibling if sibling is not None else _scalar_dtype(a)))
                avals.append(a)
        shape, dtype = prim.shape(*avals, **attrs)
        node = self.graph.add(prim.op, tuple(ids), tuple(shape), np.dtype(dtype), **attrs)
        return TraceValue(shape, dtype, node.id, self)


def _scalar_dtype(value) -> np.dtype:
    if isinstance(value, bool):
        return np.dtype(np.bool_)
    if isinstance(value, int):
        return np.dtype(np.int64)
    return np.dtype(np.float32)


def _sibling_dtype(op: Op, args):
    """A Python scalar takes the dtype of the tensor it is combined with (it is 'weak')."""
    candidates = args[1:] if op is Op.WHERE else args
    for a in candidates:
        dt = getattr(a, "dtype", None)
        if dt is not None:
            return np.dtype(dt)
    return None


class tracing:
    """Context manager that makes ``tracer`` the active one."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def __enter__(self) -> Tracer:
        if _trace_state.current is not None:
            raise TraceError("nested compile traces are not supported")
        _trace_state.current = self.tracer
        return self.tracer

    def __exit__(self, *exc) -> bool:
        _trace_state.current = None
        return False


__all__ = ["TraceValue", "Tracer", "tracing", "describe"]
