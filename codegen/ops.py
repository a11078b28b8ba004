"""The primitive operations every tracegrad program is built from.

The enum is shared by the eager frontend (``tracegrad/_primitives``), the traced
graph, codegen and runtime. Composite operations (softmax, layer_norm, conv, ...)
never appear here: they are written in terms of these.

Semantics of each primitive, in NumPy terms (the eager implementation defines them):

- unary elementwise: ``NEG EXP LOG SIN COS SQRT RECIP TANH SIGMOID ERF ABS SIGN FLOOR
  CEIL ROUND LOG1P EXPM1 NOT`` (NOT is logical not on bool).
- ``CAST`` attrs ``dtype``: ``x.astype(dtype)``.
- binary elementwise with NumPy broadcasting (inputs already promoted to one dtype):
  ``ADD SUB MUL DIV POW MAXIMUM MINIMUM`` and the comparisons ``CMPLT CMPLE CMPGT
  CMPGE CMPEQ CMPNE`` (bool result), ``AND OR XOR`` on bool.
- ``WHERE(cond, a, b)`` with broadcasting.
- reductions, attrs ``axes`` (sorted tuple of non-negative ints) and ``keepdim``:
  ``SUM MAX MIN PROD``; ``ARGMAX ARGMIN`` take a single ``axis`` (or None) and ``keepdim``
  and give int64; ``CUMSUM`` attrs ``axis``.
- movement ops (views, never copies): ``RESHAPE`` attrs ``shape``; ``PERMUTE`` attrs
  ``perm``; ``EXPAND`` attrs ``shape`` (broadcast_to); ``SLICE`` attrs ``index`` (a tuple
  of ``slice`` objects, one per dim, steps may be negative); ``PAD`` attrs ``pads`` (one
  ``(before, after)`` pair per dim) and ``value``; ``WINDOWS`` attrs ``window`` and
  ``stride`` and ``dilation`` (tuples over the trailing dims): sliding windows appended as
  trailing dims, the im2col view under convolution and pooling.
- ``CAT(*xs)`` attrs ``dim``: ``np.concatenate``.
- ``MATMUL``: ``np.matmul`` on inputs of rank >= 2 with broadcast batch dims.
- ``GATHER`` attrs ``dim``: ``np.take_along_axis``; ``SCATTER_ADD(base, index, src)``
  attrs ``dim``; ``INDEX(x, *indices)`` attrs ``spec``: NumPy advanced indexing; ``INDEX_PUT(
  base, values, *indices)`` attrs ``spec`` and ``accumulate``.
- random inputs: ``RAND`` / ``RANDN`` attrs ``shape`` and ``dtype``, drawn from the
  process-wide generator, ``BERNOULLI`` (x < p mask with x drawn uniform).
- graph plumbing: ``INPUT`` attrs ``index``; ``CONST`` attrs ``value`` (a Python scalar,
  0-d, broadcast by its consumers).
"""
from __future__ import annotations

import enum


class Op(enum.Enum):
    # plumbing
    INPUT = enum.auto()
    CONST = enum.auto()
    # unary
    NEG = enum.auto()
    EXP = enum.auto()
    LOG = enum.auto()
    SIN = enum.auto()
    COS = enum.auto()
    SQRT = enum.auto()
    RECIP = enum.auto()
    TANH = enum.auto()
    SIGMOID = enum.auto()
    ERF = enum.auto()
    ABS = enum.auto()
    SIGN = enum.auto()
    FLOOR = enum.auto()
    CEIL = enum.auto()
    ROUND = enum.auto()
    LOG1P = enum.auto()
    EXPM1 = enum.auto()
    NOT = enum.auto()
    CAST = enum.auto()
    # binary
    ADD = enum.auto()
    SUB = enum.auto()
    MUL = enum.auto()
    DIV = enum.auto()
    POW = enum.auto()
    MAXIMUM = enum.auto()
    MINIMUM = enum.auto()
    CMPLT = enum.auto()
    CMPLE = enum.auto()
    CMPGT = enum.auto()
    CMPGE = enum.auto()
    CMPEQ = enum.auto()
    CMPNE = enum.auto()
    AND = enum.auto()
    OR = enum.auto()
    XOR = enum.auto()
    # ternary
    WHERE = enum.auto()
    # reductions
    SUM = enum.auto()
    MAX = enum.auto()
    MIN = enum.auto()
    PROD = enum.auto()
    ARGMAX = enum.auto()
    ARGMIN = enum.auto()
    CUMSUM = enum.auto()
    # movement (views)
    RESHAPE = enum.auto()
    PERMUTE = enum.auto()
    EXPAND = enum.auto()
    SLICE = enum.auto()
    PAD = enum.auto()
    WINDOWS = enum.auto()
    # linear algebra and indexing
    MATMUL = enum.auto()
    CAT = enum.auto()
    GATHER = enum.auto()
    SCATTER_ADD = enum.auto()
    INDEX = enum.auto()
    INDEX_PUT = enum.auto()
    # random inputs
    RAND = enum.auto()
    RANDN = enum.auto()

    def __repr__(self) -> str:
        return self.name

    # Members are singletons: identity hashing skips Enum's Python-level __hash__, which
    # planning calls tens of thousands of times per graph (op-set lookups).
    __hash__ = object.__hash__


UNARY = frozenset({Op.NEG, Op.EXP, Op.LOG, Op.SIN, Op.COS, Op.SQRT, Op.RECIP, Op.TANH,
                   Op.SIGMOID, Op.ERF, Op.ABS, Op.SIGN, Op.FLOOR, Op.CEIL, Op.ROUND,
                   Op.LOG1P, Op.EXPM1, Op.NOT, Op.CAST})
BINARY = frozenset({Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.POW, Op.MAXIMUM, Op.MINIMUM,
                    Op.CMPLT, Op.CMPLE, Op.CMPGT, Op.CMPGE, Op.CMPEQ, Op.CMPNE,
                    Op.AND, Op.OR, Op.XOR})
COMPARISON = frozenset({Op.CMPLT, Op.CMPLE, Op.CMPGT, Op.CMPGE, Op.CMPEQ, Op.CMPNE})
ELEMENTWISE = UNARY | BINARY | {Op.WHERE}
REDUCE = frozenset({Op.SUM, Op.MAX, Op.MIN, Op.PROD})
MOVEMENT = frozenset({Op.RESHAPE, Op.PERMUTE, Op.EXPAND, Op.SLICE, Op.PAD, Op.WINDOWS})
# Ops that codegen never lowers to loops: the runtime calls NumPy (BLAS for MATMUL).
EXTERN = frozenset({Op.MATMUL, Op.CAT, Op.GATHER, Op.SCATTER_ADD, Op.INDEX, Op.INDEX_PUT,
                    Op.ARGMAX, Op.ARGMIN, Op.CUMSUM, Op.RAND, Op.RANDN})
