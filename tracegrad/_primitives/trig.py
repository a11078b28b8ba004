"""Inverse trigonometric primitives: ATAN, ATAN2 and ASINH.

Each is one NumPy ufunc eagerly (exact to the last bit at the ends of its range) with its
derivative written once as tensor code. Kernels get them by expansion into existing scalar
ops (``expand``), so no backend needs a rendering: ATAN is Cephes' ``atan`` (range
reduction to [0, 0.66], then a rational function; double precision, and float32 computes
the same formula in float32). The other inverse and hyperbolic functions are composites of
these and of EXP/LOG1P/SQRT (``tracegrad._ops.trig``).
"""
from __future__ import annotations

import math

import numpy as np

from ..codegen.ops import Op
from . import functions as F
from .elementwise import binary_shape_for, float_unary_shape
from .registry import scalar_primitive

_BOOL = np.dtype(np.bool_)

# Cephes atan.c: atan(x) = x + x * z * P(z) / Q(z), z = x * x, for |x| <= 0.66
_ATAN_P = (-8.750608600031904122785e-1, -1.615753718733365076637e1,
           -7.500855792314704667340e1, -1.228866684490136173410e2,
           -6.485021904942025371773e1)
_ATAN_Q = (1.0, 2.485846490142306297962e1, 1.650270098316988542046e2,
           4.328810604912902668951e2, 4.853903996359136964868e2,
           1.945506571482613964425e2)
_TAN_3PI_8 = 2.41421356237309504880
_MOREBITS = 6.123233995736765886130e-17  # pi/2 - float64(pi/2)


def _poly(emit, z, coeffs, dtype):
    """Horner: coeffs[0] * z**n + ... + coeffs[n]."""
    acc = emit(Op.CONST, (coeffs[0],), dtype)
    for c in coeffs[1:]:
        acc = emit(Op.ADD, (emit(Op.MUL, (acc, z), dtype), emit(Op.CONST, (c,), dtype)), dtype)
    return acc


def _atan_expand(emit, args, dtype):
    (x,) = args
    c = lambda v: emit(Op.CONST, (v,), dtype)  # noqa: E731
    a = emit(Op.ABS, (x,), dtype)
    big = emit(Op.CMPLT, (c(_TAN_3PI_8), a), _BOOL)            # |x| > tan(3pi/8)
    mid = emit(Op.CMPLT, (c(0.66), a), _BOOL)                   # |x| > 0.66
    # NOTE: the branches not taken may divide by zero; WHERE picks the finite one.
    r_big = emit(Op.NEG, (emit(Op.DIV, (c(1.0), a), dtype),), dtype)
    r_mid = emit(Op.DIV, (emit(Op.SUB, (a, c(1.0)), dtype), emit(Op.ADD, (a, c(1.0)), dtype)), dtype)
    r = emit(Op.WHERE, (big, r_big, emit(Op.WHERE, (mid, r_mid, a), dtype)), dtype)
    base = emit(Op.WHERE, (big, c(math.pi / 2 + _MOREBITS),
                           emit(Op.WHERE, (mid, c(math.pi / 4 + 0.5 * _MOREBITS), c(0.0)), dtype)),
                dtype)
    z = emit(Op.MUL, (r, r), dtype)
    frac = emit(Op.DIV, (emit(Op.MUL, (z, _poly(emit, z, _ATAN_P, dtype)), dtype),
                         _poly(emit, z, _ATAN_Q, dtype)), dtype)
    y = emit(Op.ADD, (base, emit(Op.ADD, (emit(Op.MUL, (r, frac), dtype), r), dtype)), dtype)
    negative = emit(Op.CMPLT, (x, c(0.0)), _BOOL)
    return _keep_zero(emit, x, emit(Op.WHERE, (negative, emit(Op.NEG, (y,), dtype), y), dtype),
                      dtype)


def _keep_zero(emit, x, y, dtype):
    """y, or x itself where x is +-0: an odd function's -0.0 (x < 0 is False there)."""
    return emit(Op.WHERE, (emit(Op.CMPEQ, (x, emit(Op.CONST, (0.0,), dtype)), _BOOL), x, y),
                dtype)


def _sign_bit(emit, v, dtype):
    """v < 0, counting -0.0 as negative (1 / -0.0 is -inf), as np.arctan2 reads signs."""
    c = lambda x: emit(Op.CONST, (x,), dtype)  # noqa: E731
    return emit(Op.OR, (emit(Op.CMPLT, (v, c(0.0)), _BOOL),
                        emit(Op.CMPLT, (emit(Op.DIV, (c(1.0), v), dtype), c(0.0)), _BOOL)),
                _BOOL)


def _atan2_expand(emit, args, dtype):
    y, x = args
    c = lambda v: emit(Op.CONST, (v,), dtype)  # noqa: E731
    zero = c(0.0)
    t = _atan_expand(emit, (emit(Op.DIV, (y, x), dtype),), dtype)
    # NOTE: signed zeros pick the side of the branch cut: atan2(-0.0, -1) = -pi, and
    # atan2(0.0, -0.0) = pi (x = -0.0 takes the x < 0 branch, where y / x is -0.0 or NaN)
    y_neg = _sign_bit(emit, y, dtype)
    x_neg = _sign_bit(emit, x, dtype)
    x_zero = emit(Op.CMPEQ, (x, zero), _BOOL)
    # x < 0: atan(y/x) is off by pi, towards the sign of y
    shifted = emit(Op.WHERE, (y_neg, emit(Op.SUB, (t, c(math.pi)), dtype),
                              emit(Op.ADD, (t, c(math.pi)), dtype)), dtype)
    t = emit(Op.WHERE, (x_neg, shifted, t), dtype)
    # x == 0: +-pi/2 by the sign of y; y == 0 too: +-0 for x = +0.0, +-pi for x = -0.0
    # (y/x was NaN there)
    y_zero = emit(Op.CMPEQ, (y, zero), _BOOL)
    zero_y = emit(Op.WHERE, (x_neg, c(math.pi), zero), dtype)
    zero_y = emit(Op.WHERE, (y_neg, emit(Op.NEG, (zero_y,), dtype), zero_y), dtype)
    on_axis = emit(Op.WHERE, (y_zero, zero_y,
                              emit(Op.WHERE, (y_neg, c(-math.pi / 2), c(math.pi / 2)), dtype)),
                   dtype)
    # a NaN operand must stay NaN: y/x is NaN then, and x == 0 is False for a NaN x
    y_nan = emit(Op.CMPNE, (y, y), _BOOL)
    on_axis = emit(Op.WHERE, (y_nan, y, on_axis), dtype)
    t = emit(Op.WHERE, (x_zero, on_axis, t), dtype)
    # both infinite: +-pi/4 or +-3pi/4 (y/x was NaN there)
    inf = c(math.inf)
    both_inf = emit(Op.AND, (emit(Op.CMPEQ, (emit(Op.ABS, (y,), dtype), inf), _BOOL),
                             emit(Op.CMPEQ, (emit(Op.ABS, (x,), dtype), inf), _BOOL)), _BOOL)
    corner = emit(Op.WHERE, (x_neg, c(3 * math.pi / 4), c(math.pi / 4)), dtype)
    corner = emit(Op.WHERE, (y_neg, emit(Op.NEG, (corner,), dtype), corner), dtype)
    return emit(Op.WHERE, (both_inf, corner, t), dtype)


def _asinh_expand(emit, args, dtype):
    (x,) = args
    c = lambda v: emit(Op.CONST, (v,), dtype)  # noqa: E731
    a = emit(Op.ABS, (x,), dtype)
    a2 = emit(Op.MUL, (a, a), dtype)
    # log1p(a + a^2 / (1 + sqrt(1 + a^2))) keeps full precision near 0
    root = emit(Op.SQRT, (emit(Op.ADD, (c(1.0), a2), dtype),), dtype)
    small = emit(Op.LOG1P, (emit(Op.ADD, (a, emit(Op.DIV, (a2, emit(Op.ADD, (c(1.0), root), dtype)),
                                                     dtype)), dtype),), dtype)
    # past 1e15, a^2 overflows float32; asinh(a) = log(2a) to the last bit there
    large = emit(Op.ADD, (emit(Op.LOG, (a,), dtype), c(math.log(2.0))), dtype)
    r = emit(Op.WHERE, (emit(Op.CMPLT, (c(1e15), a), _BOOL), large, small), dtype)
    negative = emit(Op.CMPLT, (x, c(0.0)), _BOOL)
    return _keep_zero(emit, x, emit(Op.WHERE, (negative, emit(Op.NEG, (r,), dtype), r), dtype),
                      dtype)


def _atan_vjp(g, node):
    x = node.inputs[0]
    return (F.div(g, F.add(F.mul(x, x), 1)),)


def _square(v):
    return v * v if isinstance(v, (int, float)) else F.mul(v, v)


def _atan2_vjp(g, node):
    y, x = node.inputs
    # NOTE: a Python scalar operand squares in Python: F.mul of two scalars would trace as
    # a float32 constant and round a float64 gradient
    r2 = F.add(_square(x), _square(y))
    gy = F.sum_to(F.div(F.mul(g, x), r2), tuple(y.shape)) if node.needs_grad[0] else None
    gx = F.sum_to(F.div(F.mul(F.neg(g), y), r2), tuple(x.shape)) if node.needs_grad[1] else None
    return gy, gx


def _asinh_vjp(g, node):
    x = node.inputs[0]
    return (F.mul(g, F.pow(F.add(F.mul(x, x), 1), -0.5)),)


scalar_primitive("ATAN", numpy=np.arctan, shape=float_unary_shape, vjp=_atan_vjp,
                 costly=True, expand=_atan_expand)
scalar_primitive("ATAN2", kind="binary", numpy=np.arctan2, shape=binary_shape_for("atan2"),
                 vjp=_atan2_vjp, costly=True, expand=_atan2_expand)
scalar_primitive("ASINH", numpy=np.arcsinh, shape=float_unary_shape, vjp=_asinh_vjp,
                 costly=True, expand=_asinh_expand)
