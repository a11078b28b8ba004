"""The scalar facts codegen needs per op, keyed by ``Op``: one table, one door.

``SCALAR_OPS[op]`` holds, for every elementwise op and the loop IR's index ops:

- ``numpy``: its semantics as a NumPy function. This is the ONE semantics table:
  ``tracegrad._primitives`` uses it as the eager implementation, ``codegen.interp`` runs
  loop kernels with it and ``codegen.passes.fold_constants`` folds with it.
- ``costly``: transcendental (or POW): fusion never recomputes it behind a broadcast or an
  overlapping window, and a row kernel stashes it (NOTE (row stash) in ``codegen.lower``).
- ``expand``: optional; lowering writes the op as other scalar ops ``expand(emit, args,
  dtype)`` (``emit(op, args, dtype) -> value``), so it needs no rendering of its own.

How each backend prints an op is the backend's table in ``RENDERINGS`` (keyed by ``Op``;
``render_llvm.LLVM_RULES`` and ``render_cuda.CUDA_RULES`` are those dicts, filled with the
built-in rules when the renderer is imported); ``define_scalar_op`` adds a new op's rules
there, so a new op is registered from one call without importing a backend.
``tests/test_codegen_coverage.py`` fails when an op that reaches the loop IR lacks a
rendering in either backend.

>>> import numpy as np
>>> SCALAR_OPS[Op.MAXIMUM].numpy(np.float32([1, np.nan]), np.float32([2, 0]))
array([ 2., nan], dtype=float32)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .numpy_fmod import fmod
from .numpy_pow import power
from .numpy_wide import through_float64
from .ops import Op, define_op


@dataclass(frozen=True)
class ScalarOp:
    op: Op
    numpy: Callable[..., np.ndarray]
    costly: bool = False
    expand: Callable | None = None


SCALAR_OPS: dict[Op, ScalarOp] = {}
COSTLY: set[Op] = set()
# backend name -> {Op: rule}; see each renderer for what its rules take and return
RENDERINGS: dict[str, dict[Op, Callable]] = {"llvm": {}, "cuda": {}}
# The reduction kind of each reduce primitive: the scalar op its accumulator applies.
REDUCTION_ACC = {Op.SUM: Op.ADD, Op.PROD: Op.MUL, Op.MAX: Op.MAXIMUM, Op.MIN: Op.MINIMUM}


def define_scalar_op(name: str, kind: str, numpy: Callable, *, costly: bool = False,
                     expand: Callable | None = None, llvm: Callable | None = None,
                     cuda: Callable | None = None) -> Op:
    """Define (or redefine the facts of) the scalar op ``name`` of ``kind`` ("unary",
    "binary", "comparison", "ternary" or "loop_ir") and return its ``Op``.

    ``llvm(r, dtype, *values)`` and ``cuda(r, dtype, *names)`` render it (``dtype``: the
    first operand's); an op with ``expand`` needs neither.
    """
    op = define_op(name, kind)
    SCALAR_OPS[op] = ScalarOp(op, numpy, costly, expand)
    (COSTLY.add if costly else COSTLY.discard)(op)
    if llvm is not None:
        RENDERINGS["llvm"][op] = llvm
    if cuda is not None:
        RENDERINGS["cuda"][op] = cuda
    return op


def eval_op(op: Op, args: list, dtype) -> np.ndarray:
    """Apply scalar op ``op`` with its NumPy semantics, producing ``dtype`` (the loop-IR
    interpreter and constant folding; CAST is a conversion, not a table entry)."""
    if op is Op.CAST:
        return np.asarray(args[0]).astype(dtype)
    if op is Op.RECIP and np.dtype(dtype).kind != "f":
        return (1 / args[0]).astype(dtype)  # as the CUDA renderer: 1/x in double, truncated
    with np.errstate(all="ignore"):
        out = SCALAR_OPS[op].numpy(*args)
    return np.asarray(out).astype(dtype, copy=False)


# -- the NumPy functions that are not one ufunc -------------------------------------------

def sign(x):
    """np.sign, but 0 for NaN as torch.sign (PyTorch's CPU kernel: (0 < x) - (x < 0))."""
    out = np.sign(x)
    if out.dtype.kind == "f":
        out = np.where(out != out, out.dtype.type(0), out)   # (-0.0 is already +0.0)
    return out


def sigmoid(x):
    # NOTE: 1 / (1 + e^-x) in four in-place passes (the sign-split form that keeps e^-x from
    # overflowing took 9 passes: 6.7x slower at 1M float32, 2x at one element). Within the
    # normal range: <= 2.7 ulp (float32; the sign-split form: 2.9). Where e^-x overflows
    # (x < -88.7 in float32, -709.8 in float64) that form gives 0, but the true result is
    # subnormal down to x = -104 / -745 (as the compiled sigmoid has it): there it is
    # e^x itself (1 + e^x rounds to 1), one compare pass more (1M float32, load ~4: 0.72 ->
    # 0.80 ms; torch 2.13, 1 thread, 0.25 ms and 0 in that tail).
    x = np.asarray(x)
    if x.ndim == 0:
        e = np.exp(-x)
        return np.asarray(1 / (1 + e) if e != np.inf else np.exp(x))
    e = np.negative(x)
    np.exp(e, out=e)
    np.add(e, 1, out=e)
    out = np.reciprocal(e, out=e)
    if out.dtype.kind == "f":
        tail = out == 0
        if tail.any():
            out[tail] = np.exp(x[tail])
    return out


def erf(x):
    # NOTE: math.erf per element (within 1 ulp of float64) for float64 and small arrays;
    # a large float32 array takes the vectorised form below. The Numerical Recipes erfc
    # alone (1 - erfc(x), 1.2e-7 relative to erfc) lost erf's relative accuracy near 0:
    # 7e-6 relative at |x| ~ 1e-3, 120 float32 ulp, and for float64 arrays above 4096
    # elements it was all the accuracy there was.
    x = np.asarray(x)
    flat = x.ravel()
    if flat.size > 4096 and x.dtype.itemsize < 8:
        out = _erf_vectorised(flat.astype(np.float64))
    else:
        out = np.fromiter((math.erf(v) for v in flat.tolist()), np.float64, flat.size)
    return out.astype(x.dtype, copy=False).reshape(x.shape)


_ERF_TAYLOR = [2 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1))
               for n in range(14)]


def _erf_vectorised(x):
    """erf to ~1e-9 relative in float64 (enough for float32 results): the Taylor series
    for |x| < 1 (14 terms: tail < 1e-12), else 1 - erfc(|x|) with Numerical Recipes'
    erfc (1.2e-7 relative to erfc <= 0.16: < 2e-8 absolute, 0.3 float32 ulp of erf)."""
    z = np.abs(x)
    t2 = x * x
    series = np.zeros_like(x)
    for co in reversed(_ERF_TAYLOR):
        series = series * t2 + co
    series *= x
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277)))))))))
    erfc = t * np.exp(poly)
    return np.where(z < 1, series, np.sign(x) * (1.0 - erfc))


_TABLE = (
    # name, kind, numpy, costly
    ("NEG", "unary", np.negative, False),
    ("EXP", "unary", np.exp, True),
    ("LOG", "unary", np.log, True),
    ("SIN", "unary", np.sin, True),
    ("COS", "unary", np.cos, True),
    ("SQRT", "unary", np.sqrt, False),
    ("RECIP", "unary", np.reciprocal, False),
    ("TANH", "unary", np.tanh, True),
    ("SIGMOID", "unary", sigmoid, True),
    ("ERF", "unary", erf, True),
    ("ABS", "unary", np.abs, False),
    ("SIGN", "unary", sign, False),
    ("FLOOR", "unary", np.floor, False),
    ("CEIL", "unary", np.ceil, False),
    ("ROUND", "unary", np.round, False),
    ("LOG1P", "unary", np.log1p, True),
    ("EXPM1", "unary", np.expm1, True),
    # NOTE (float32 through float64) in codegen.numpy_wide
    ("EXP2", "unary", through_float64(np.exp2), True),
    ("LOG2", "unary", through_float64(np.log2), True),
    ("LOG10", "unary", through_float64(np.log10), True),
    ("NOT", "unary", np.invert, False),
    ("ADD", "binary", np.add, False),
    ("SUB", "binary", np.subtract, False),
    ("MUL", "binary", np.multiply, False),
    ("DIV", "binary", np.true_divide, False),
    ("POW", "binary", power, True),   # NOTE (one pow) in codegen.numpy_pow
    ("MAXIMUM", "binary", np.maximum, False),   # NaN-propagating, as PyTorch
    ("MINIMUM", "binary", np.minimum, False),
    ("FMOD", "binary", fmod, True),   # C's fmod, exact (NOTE (exact fmod))
    ("CMPLT", "comparison", np.less, False),
    ("CMPLE", "comparison", np.less_equal, False),
    ("CMPEQ", "comparison", np.equal, False),
    ("CMPNE", "comparison", np.not_equal, False),
    ("AND", "binary", np.bitwise_and, False),  # bitwise; on bool that is logical
    ("OR", "binary", np.bitwise_or, False),
    ("XOR", "binary", np.bitwise_xor, False),
    ("WHERE", "ternary", np.where, False),
    ("IDIV", "loop_ir", np.floor_divide, False),
    ("MOD", "loop_ir", np.remainder, False),
)
for _name, _kind, _fn, _costly in _TABLE:
    define_scalar_op(_name, _kind, _fn, costly=_costly)
