"""The primitive registry: one record per primitive (DESIGN.md, "One primitive, one place").

Each ``Primitive`` holds, side by side:

- ``shape``: the shape/dtype rule ``(*avals, **attrs) -> (shape, np.dtype)``; avals are
  anything with ``.shape``/``.dtype`` (arrays, trace values) or Python scalars. It raises
  ``ShapeError`` with a readable message on bad input, so eager mode, tracing and error
  reporting share one rule.
- ``eager``: the NumPy implementation ``(*arrays, **attrs) -> ndarray``.
- ``vjp``: the derivative rule, written with the primitive layer's functions
  (``_primitives.functions``, never the public ``_ops``) so it can itself be traced,
  compiled and differentiated: ``vjp(g, node) -> tuple[Tensor | None, ...]``,
  with ``node.inputs``, ``node.attrs``, ``node.output()`` and ``node.needs_grad``. None
  marks a primitive that is not differentiable.
- ``needs``: which inputs the derivative rule reads, given which inputs need a gradient
  (version counters are checked only for those, as PyTorch does).
- ``saves_output``: whether the rule reads the forward output (exp, tanh, sqrt, ...).

- ``lowering`` (derived from the op's kind in ``codegen``): what codegen makes of it; an
  elementwise primitive's is its ``codegen.scalar_ops.ScalarOp`` row, which holds the NumPy
  semantics that ``eager`` is, its cost and its renderings.

``scalar_primitive`` registers an elementwise primitive from one call: given a new op name
it defines the op's scalar facts in codegen (``define_scalar_op``) and its record here, so
a new unary op is its record, its public function and a test (tests/test_new_primitive.py).

The primitive set: 62, and why each is one
-------------------------------------------
tests/test_registry.py reads the names in the first column and fails when they differ from
``PRIMITIVES``: a primitive added or removed must change this table. A composite costs
nothing to add (no codegen, no renderer, no gradient); a primitive earns its place with one
of the reasons below. Measured here (2 cores, float32, eager, 1M elements; 1 element in
brackets): ``a - b`` 0.20 ms [1.8 us] vs ``a + (-b)`` 0.69 ms [2.2 us]; ``minimum`` 0.38 ms
[1.7 us] vs ``-maximum(-a, -b)`` 1.46 ms [6.3 us]; ``a <= b`` 0.32 ms [2.0 us] vs
``(a < b) | (a == b)`` 1.0 ms [6.3 us].

================================  ==========================================================
primitives                        why a primitive
================================  ==========================================================
NEG EXP LOG                       one NumPy ufunc eagerly; one instruction or one
SIN COS SQRT TANH ERF ABS SIGN    polynomial in a kernel (``codegen.llvm_math``); as
FLOOR CEIL ROUND                  composites they would be several passes or lose accuracy
ATAN ATAN2 ASINH                  accuracy and clean gradients at the ends of the range:
                                  no composite of the others is exact (ATAN is a rational
                                  function after range reduction); one NumPy ufunc eagerly,
                                  expanded into other scalar ops in a kernel
RECIP                             ``DIV(1, x)`` is as fast in both modes; kept for its
                                  derivative ``-g * y * y`` from the saved output (DIV's
                                  reads the input and squares it)
LOG1P EXPM1                       accuracy: ``exp(x) - 1`` has 1e-3 relative error at
                                  x = 1e-5 in float32, ``log(1 + x)`` likewise
EXP2 LOG2 LOG10                   accuracy: ``exp(x ln 2)`` was 662 ulp off at x = -991
                                  (float64), ``log(x) / ln 10`` 2.64 ulp; torch's are
                                  within 1 (NOTE (log2 and log10) in codegen.llvm_math)
SIGMOID                           one autograd node saving only its output (the composite
                                  records four and saves their inputs), 4 in-place NumPy
                                  passes eagerly, one polynomial in a kernel
ADD MUL DIV POW MAXIMUM           binary ufuncs, one pass each
FMOD                              C's fmod, exact: % and // are built on it (PyTorch's
                                  way); as a composite (Dekker's product) it was ~40 ops,
                                  39 ms eager at 1M float32 (now ~6), and wrong past
                                  |a / b| = 2**24 (NOTE (exact fmod) in codegen.numpy_fmod)
SUB                               one pass; ``a + (-b)`` is two (3.4x slower at 1M elements)
MINIMUM                           one pass; ``-maximum(-a, -b)`` is four (3.9x slower)
CMPLT CMPEQ CMPNE                 comparisons; ``>`` is ``CMPLT`` mirrored (``b < a``)
CMPLE                             NaN: ``a <= b`` is not ``not (b < a)``; the composite that
                                  is right, ``(a < b) | (a == b)``, is three passes; ``>=``
                                  is ``CMPLE`` mirrored
AND OR XOR NOT                    bitwise on integers (logical on bool): no composite of
                                  the others without three or four passes (XOR)
WHERE CAST                        selection and conversion
SUM MAX MIN PROD                  reductions (accumulator ADD MUL MAXIMUM MINIMUM)
ARGMAX ARGMIN CUMSUM              index-valued or scanned: NumPy externs
RESHAPE PERMUTE EXPAND SLICE      views: index math, never copies
PAD WINDOWS
MATMUL                            BLAS
CAT GATHER SCATTER_ADD INDEX      data-dependent addressing: NumPy externs
INDEX_PUT
RAND RANDN                        random inputs from the process-wide generator
================================  ==========================================================
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..codegen.ops import ELEMENTWISE, EXTERN, MOVEMENT, REDUCE, Op
from ..codegen.scalar_ops import REDUCTION_ACC, SCALAR_OPS, define_scalar_op
from .._errors import ShapeError, describe  # noqa: F401  (re-exported: the records' errors)


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

    @property
    def lowering(self) -> tuple[str, Any]:
        """How codegen lowers it: ("scalar", ScalarOp) for an elementwise op (CAST is a
        conversion: ("cast", None)), ("reduce", accumulator Op), ("view", None) for a
        movement op, ("extern", None) for an op the runtime runs with NumPy/BLAS."""
        op = self.op
        if op in SCALAR_OPS:
            return "scalar", SCALAR_OPS[op]
        if op is Op.CAST:
            return "cast", None
        if op in REDUCE:
            return "reduce", REDUCTION_ACC[op]
        if op in MOVEMENT:
            return "view", None
        if op in EXTERN:
            return "extern", None
        raise LookupError(f"primitive {self.name}: codegen has no lowering for {op.name}")


PRIMITIVES: dict[Op, Primitive] = {}


def primitive(op: Op, *, shape, vjp=None, needs=_reads_all, saves_output=False,
              name: str | None = None) -> Callable:
    """Register ``fn`` as the eager NumPy implementation of ``op``."""
    def register(fn):
        prim = Primitive(op, name or op.name.lower(), fn, shape, vjp, needs, saves_output)
        PRIMITIVES[op] = prim
        return prim
    return register


def scalar_primitive(op: Op | str, *, shape, vjp=None, needs=_reads_all, saves_output=False,
                     name: str | None = None, eager: Callable | None = None,
                     kind: str = "unary", numpy: Callable | None = None, costly: bool = False,
                     expand: Callable | None = None, llvm: Callable | None = None,
                     cuda: Callable | None = None) -> Primitive:
    """Register an elementwise primitive whose eager implementation is its row of codegen's
    NumPy semantics table (``eager`` only wraps that row where dtypes need care).

    ``op`` is an ``Op`` whose scalar facts codegen already has, or the name of a new op:
    then ``kind``, ``numpy``, ``costly``, ``expand``, ``llvm`` and ``cuda`` define it
    (``codegen.scalar_ops.define_scalar_op``).
    """
    if isinstance(op, str):
        if numpy is None:
            raise TypeError(f"scalar_primitive: a new op {op} needs its NumPy semantics (numpy=)")
        if expand is None and (llvm is None or cuda is None):
            raise TypeError(f"scalar_primitive: a new op {op} needs a lowering: expand= (as "
                            f"other scalar ops) or a rendering for each backend (llvm= and cuda=)")
        op = define_scalar_op(op, kind, numpy, costly=costly, expand=expand, llvm=llvm, cuda=cuda)
    if op not in ELEMENTWISE or op not in SCALAR_OPS:
        raise ValueError(f"scalar_primitive: {op.name} is not an elementwise scalar op")
    return primitive(op, shape=shape, vjp=vjp, needs=needs, saves_output=saves_output,
                     name=name)(eager or SCALAR_OPS[op].numpy)


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
