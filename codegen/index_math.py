"""Row-major index expressions built in a kernel: the index math ``codegen.lower`` emits
to read a value through its views (``Idx``: a linear and/or multi-index, each computed
from the other on first use; ``unravel``: a linear index into a multi-index)."""
from __future__ import annotations

from .loop_ir import INDEX, KernelBuilder
from .ops import Op
from .view import contiguous_strides


class Idx:
    """An index into a value of ``shape``: linear (row-major) and/or multi-index, each
    computed from the other on first use."""

    def __init__(self, b: KernelBuilder, shape, linear=None, multi=None):
        self.b, self.shape, self._linear, self._multi = b, tuple(shape), linear, multi

    def linear(self) -> str:
        if self._linear is None:
            b, acc = self.b, b_const(self.b, 0)
            for m, s in zip(self._multi, contiguous_strides(self.shape)):
                if s:
                    acc = b.emit(Op.ADD, (acc, b.emit(Op.MUL, (m, b_const(b, s)), INDEX)), INDEX)
            self._linear = acc
        return self._linear

    def multi(self) -> list[str]:
        if self._multi is None:
            self._multi = unravel(self.b, self._linear, self.shape)
        return self._multi


def b_const(b: KernelBuilder, value: int) -> str:
    return b.const(value, INDEX)


def unravel(b: KernelBuilder, linear: str, shape) -> list[str]:
    """Row-major multi-index of ``linear`` in ``shape`` (div/mod skipped where bounds allow)."""
    out, stride = [], 1
    for n in reversed(shape):
        if n == 1:
            out.append(b_const(b, 0))
            continue
        q = b.emit(Op.IDIV, (linear, b_const(b, stride)), INDEX)
        out.append(b.emit(Op.MOD, (q, b_const(b, n)), INDEX))
        stride *= n
    return out[::-1]
