"""What a traced tensor holds instead of an array (``TraceValue``), and the record of a
tensor written in place during a trace (``Write``): the values ``compiler.tracer`` makes
and the rest of the compiler inspects."""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from .errors import TraceError


class Write:
    """A tensor that existed before the trace and was written in place during it."""

    __slots__ = ("tensor", "original", "version", "grad_fn", "requires_grad", "count", "born")

    def __init__(self, tensor: Tensor, original, born: bool) -> None:
        self.tensor = tensor
        self.original = original
        self.version = tensor._version[0]
        self.grad_fn = tensor.grad_fn
        self.requires_grad = tensor._requires_grad
        self.count = 0
        self.born = born   # created during the trace (a local of the traced function)


class TraceValue:
    """What a traced tensor holds instead of an array: a shape, a dtype and a node."""

    __slots__ = ("shape", "dtype", "node", "tracer", "strides")

    def __init__(self, shape, dtype, node: int, tracer) -> None:
        self.strides = None  # the layout in elements where a view op made it non-contiguous
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.node = node
        self.tracer = tracer

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)   # a SymInt in a guard trace (NOTE in symint.py)

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def flags(self):
        raise TraceError("a compile trace has no memory layout to inspect")

    def __repr__(self) -> str:
        return f"%{self.node}: {self.dtype.name}{list(self.shape)}"
