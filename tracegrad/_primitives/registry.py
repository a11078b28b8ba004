"""The primitive registry: one record per primitive (DESIGN.md, "One primitive, one place").

Each ``Primitive`` holds, side by side:

- ``shape``: the shape/dtype rule ``(*avals, **attrs) -> (shape, np.dtype)``; avals are
  anything with ``.shape``/``.dtype`` (arrays, trace values) or Python scalars. It raises
  ``ShapeError`` with a readable message on bad input, so eager mode, tracing and error
  reporting share one rule.
- ``eager``: the NumPy implementation ``(*arrays, **attrs) -> ndarray``.
- ``vjp``: the derivative rule, written with tracegrad tensor operations so it can itself
  be traced, compiled and differentiated: ``vjp(g, node) -> tuple[Tensor | None, ...]``,
  with ``node.inputs``, ``node.attrs``, ``node.output()`` and ``node.needs_grad``. None
  marks a primitive that is not differentiable.
- ``needs``: which inputs the derivative rule reads, given which inputs need a gradient
  (version counters are checked only for those, as PyTorch does).
- ``saves_output``: whether the rule reads the forward output (exp, tanh, sqrt, ...).

How codegen lowers a primitive is decided by its ``Op`` kind (``codegen.ops``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..codegen.ops import Op


class ShapeError(RuntimeError):
    """An operation got inputs whose shapes, dtypes or arguments do not fit."""


def _reads_all(needs_grad) -> tuple[int, ...]:
    return tuple(range(len(needs_grad)))


@dataclass(eq=False)
class Primitive:
    op: Op
    name: str
    eager: Callable[..., np.ndarray]
    shape: Callable[..., tuple]
    vjp: Callable | None = None
    needs: Callable = _reads_all
    saves_output: bool = False

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


PRIMITIVES: dict[Op, Primitive] = {}


def primitive(op: Op, *, shape, vjp=None, needs=_reads_all, saves_output=False,
              name: str | None = None) -> Callable:
    """Register ``fn`` as the eager NumPy implementation of ``op``."""
    def register(fn):
        prim = Primitive(op, name or op.name.lower(), fn, shape, vjp, needs, saves_output)
        PRIMITIVES[op] = prim
        return prim
    return register


def reads_none(needs_grad) -> tuple[int, ...]:
    return ()


def reads_other(needs_grad) -> tuple[int, ...]:
    """For a product: input 0's gradient reads input 1 and vice versa."""
    reads = []
    if needs_grad[0]:
        reads.append(1)
    if needs_grad[1]:
        reads.append(0)
    return tuple(reads)


def describe(x: Any) -> str:
    """How an argument reads in an error message: shape and dtype for tensors."""
    shape = getattr(x, "shape", None)
    if shape is not None:
        return f"{tuple(shape)} {np.dtype(x.dtype).name}"
    return repr(x)
