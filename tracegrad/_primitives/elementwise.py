"""Elementwise primitives: unary math, binary arithmetic and comparisons, WHERE, CAST.

Binary primitives broadcast like NumPy; the frontend has already promoted tensor operands
to one dtype (``tracegrad._ops.math``), so the rules here only see Python scalars as the
odd one out.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..codegen.ops import Op
from .registry import ShapeError, describe, primitive, reads_none, reads_other

# NumPy warns on log(0), 0/0 and friends; PyTorch returns inf/nan silently, and so do we.
# A warnings filter costs nothing until a warning fires (np.errstate costs ~1.6 µs per op).
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"tracegrad\._primitives")


def _shape(x) -> tuple:
    return tuple(getattr(x, "shape", ()))


def _dtype(x) -> np.dtype:
    dt = getattr(x, "dtype", None)
    if dt is not None:
        return np.dtype(dt)
    if isinstance(x, bool):
        return np.dtype(np.bool_)
    return np.dtype(np.int64) if isinstance(x, int) else np.dtype(np.float32)


def broadcast_shapes(name: str, *xs) -> tuple:
    shapes = [_shape(x) for x in xs]
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(f"{name}: shapes {' and '.join(str(s) for s in shapes)} cannot be "
                         f"broadcast together (sizes must match or be 1, aligned from the right)") from None


def _tensor_dtype(*xs) -> np.dtype:
    for x in xs:
        if hasattr(x, "dtype"):
            return np.dtype(x.dtype)
    return _dtype(xs[0])


def unary_shape(x, **attrs):
    return _shape(x), _dtype(x)


def float_unary_shape(x, **attrs):
    dt = _dtype(x)
    if dt.kind != "f":
        raise ShapeError(f"expected a floating point tensor, got {describe(x)}")
    return _shape(x), dt


def binary_shape_for(name):
    def rule(a, b, **attrs):
        return broadcast_shapes(name, a, b), _tensor_dtype(a, b)
    return rule


def compare_shape_for(name):
    def rule(a, b, **attrs):
        return broadcast_shapes(name, a, b), np.dtype(np.bool_)
    return rule


# ---- derivative rules (tensor code) ----------------------------------------------------

def _grad_for(node, i, g):
    """Undo broadcasting: reduce ``g`` to the shape of input ``i``."""
    from .._ops.reduce import sum_to
    x = node.inputs[i]
    return sum_to(g, tuple(x.shape))


def _unary(fn):
    def vjp(g, node):
        return (fn(g, node.inputs[0], node),)
    return vjp


def _zero_grad(g, x, node):
    from .._ops.creation import zeros_like
    return zeros_like(x)


@primitive(Op.NEG, shape=unary_shape, needs=reads_none, vjp=_unary(lambda g, x, n: -g))
def neg(x):
    return np.negative(x)


@primitive(Op.EXP, shape=float_unary_shape, needs=reads_none, saves_output=True,
           vjp=_unary(lambda g, x, n: g * n.output()))
def exp(x):
    return np.exp(x)


@primitive(Op.LOG, shape=float_unary_shape, vjp=_unary(lambda g, x, n: g / x))
def log(x):
    return np.log(x)


@primitive(Op.SIN, shape=float_unary_shape, vjp=_unary(lambda g, x, n: g * x.cos()))
def sin(x):
    return np.sin(x)


@primitive(Op.COS, shape=float_unary_shape, vjp=_unary(lambda g, x, n: -g * x.sin()))
def cos(x):
    return np.cos(x)


@primitive(Op.SQRT, shape=float_unary_shape, needs=reads_none, saves_output=True,
           vjp=_unary(lambda g, x, n: g / (n.output() * 2)))
def sqrt(x):
    return np.sqrt(x)


@primitive(Op.RECIP, shape=float_unary_shape, needs=reads_none, saves_output=True,
           vjp=_unary(lambda g, x, n: -g * n.output() * n.output()))
def recip(x):
    return np.reciprocal(x)


@primitive(Op.TANH, shape=float_unary_shape, needs=reads_none, saves_output=True,
           vjp=_unary(lambda g, x, n: g * (1 - n.output() * n.output())))
def tanh(x):
    return np.tanh(x)


@primitive(Op.SIGMOID, shape=float_unary_shape, needs=reads_none, saves_output=True,
           vjp=_unary(lambda g, x, n: g * n.output() * (1 - n.output())))
def sigmoid(x):
    # NOTE: split by sign so exp never overflows: for x < 0 use e^x / (1 + e^x).
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


@primitive(Op.ERF, shape=float_unary_shape,
           vjp=_unary(lambda g, x, n: g * ((-(x * x)).exp() * _TWO_OVER_SQRT_PI)))
def erf(x):
    return _erf_numpy(x)


def _erf_numpy(x):
    # NumPy has no erf; math.erf per element is exact but slow, so vectorise it.
    flat = np.asarray(x).ravel()
    if flat.size > 4096:
        out = _erf_vectorised(flat.astype(np.float64))
    else:
        out = np.fromiter((math.erf(v) for v in flat.tolist()), np.float64, flat.size)
    return out.astype(x.dtype, copy=False).reshape(np.shape(x))


def _erf_vectorised(x):
    # W. J. Cody's rational approximations are overkill here; erfc via a continued-fraction
    # free form (Numerical Recipes erfc, |rel err| < 1.2e-7) is accurate to float32.
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277)))))))))
    erfc = t * np.exp(poly)
    return np.sign(x) * (1.0 - erfc)


@primitive(Op.ABS, shape=unary_shape, vjp=_unary(lambda g, x, n: g * x.sign()))
def abs_(x):
    return np.abs(x)


@primitive(Op.SIGN, shape=unary_shape, needs=reads_none, vjp=_unary(_zero_grad))
def sign(x):
    return np.sign(x)


@primitive(Op.FLOOR, shape=unary_shape, needs=reads_none, vjp=_unary(_zero_grad))
def floor(x):
    return np.floor(x)


@primitive(Op.CEIL, shape=unary_shape, needs=reads_none, vjp=_unary(_zero_grad))
def ceil(x):
    return np.ceil(x)


@primitive(Op.ROUND, shape=unary_shape, needs=reads_none, vjp=_unary(_zero_grad))
def round_(x):
    return np.round(x)


@primitive(Op.LOG1P, shape=float_unary_shape, vjp=_unary(lambda g, x, n: g / (x + 1)))
def log1p(x):
    return np.log1p(x)


@primitive(Op.EXPM1, shape=float_unary_shape, needs=reads_none, saves_output=True,
           vjp=_unary(lambda g, x, n: g * (n.output() + 1)))
def expm1(x):
    return np.expm1(x)


@primitive(Op.NOT, shape=lambda x: (_shape(x), np.dtype(np.bool_)), name="logical_not")
def logical_not(x):
    return np.logical_not(x)


def _cast_shape(x, dtype):
    return _shape(x), np.dtype(dtype)


def _cast_vjp(g, node):
    x = node.inputs[0]
    if x.dtype.is_floating_point:
        return (g.to(x.dtype),)
    return (None,)


@primitive(Op.CAST, shape=_cast_shape, needs=reads_none, vjp=_cast_vjp)
def cast(x, dtype):
    return np.asarray(x).astype(dtype)


# ---- binary ---------------------------------------------------------------------------

def _add_vjp(g, node):
    return tuple(_grad_for(node, i, g) if node.needs_grad[i] else None for i in range(2))


def _sub_vjp(g, node):
    return (_grad_for(node, 0, g) if node.needs_grad[0] else None,
            _grad_for(node, 1, -g) if node.needs_grad[1] else None)


def _mul_vjp(g, node):
    a, b = node.inputs
    return (_grad_for(node, 0, g * b) if node.needs_grad[0] else None,
            _grad_for(node, 1, g * a) if node.needs_grad[1] else None)


def _div_vjp(g, node):
    a, b = node.inputs
    return (_grad_for(node, 0, g / b) if node.needs_grad[0] else None,
            _grad_for(node, 1, -g * a / (b * b)) if node.needs_grad[1] else None)


def _pow_vjp(g, node):
    from .._ops.math import where
    a, b = node.inputs
    ga = gb = None
    if node.needs_grad[0]:
        if isinstance(b, (int, float)) and b in (1, 2):
            # A constant square (losses, variances) needs no second power pass.
            ga = g if b == 1 else g * (a * 2.0)
        else:
            ga = g * b * a ** (b - 1)
        ga = _grad_for(node, 0, ga)
    if node.needs_grad[1]:
        # NOTE: d/db a**b = a**b * log(a); define it as 0 where a == 0 (PyTorch does too).
        out = node.output()
        safe_log = where(a > 0, a, 1).log()
        gb = _grad_for(node, 1, g * out * safe_log)
    return ga, gb


def _extremum_vjp(pick_a):
    def vjp(g, node):
        a, b = node.inputs
        # NOTE: ties split the gradient evenly between both inputs, like PyTorch.
        wins_a = pick_a(a, b).to(g.dtype) + (a == b).to(g.dtype) * 0.5
        return (_grad_for(node, 0, g * wins_a) if node.needs_grad[0] else None,
                _grad_for(node, 1, g * (1 - wins_a)) if node.needs_grad[1] else None)
    return vjp


@primitive(Op.ADD, shape=binary_shape_for("add"), needs=reads_none, vjp=_add_vjp)
def add(a, b):
    return np.add(a, b)


@primitive(Op.SUB, shape=binary_shape_for("sub"), needs=reads_none, vjp=_sub_vjp)
def sub(a, b):
    return np.subtract(a, b)


@primitive(Op.MUL, shape=binary_shape_for("mul"), needs=reads_other, vjp=_mul_vjp)
def mul(a, b):
    return np.multiply(a, b)


def _div_shape(a, b):
    shape, dtype = binary_shape_for("div")(a, b)
    if dtype.kind != "f":
        raise ShapeError(f"div: the DIV primitive divides floats; cast {describe(a)} and "
                         f"{describe(b)} to a float dtype first (tracegrad.div does)")
    return shape, dtype


@primitive(Op.DIV, shape=_div_shape, vjp=_div_vjp)
def div(a, b):
    if np.result_type(a, b).kind != "f":
        _div_shape(a, b)  # raises the clear error
    return np.true_divide(a, b)


@primitive(Op.POW, shape=binary_shape_for("pow"), vjp=_pow_vjp, saves_output=True)
def pow_(a, b):
    return np.power(a, b)


@primitive(Op.MAXIMUM, shape=binary_shape_for("maximum"), vjp=_extremum_vjp(lambda a, b: a > b))
def maximum(a, b):
    return np.maximum(a, b)


@primitive(Op.MINIMUM, shape=binary_shape_for("minimum"), vjp=_extremum_vjp(lambda a, b: a < b))
def minimum(a, b):
    return np.minimum(a, b)


for _op, _fn, _name in ((Op.CMPLT, np.less, "lt"), (Op.CMPLE, np.less_equal, "le"),
                        (Op.CMPGT, np.greater, "gt"), (Op.CMPGE, np.greater_equal, "ge"),
                        (Op.CMPEQ, np.equal, "eq"), (Op.CMPNE, np.not_equal, "ne"),
                        (Op.AND, np.logical_and, "logical_and"),
                        (Op.OR, np.logical_or, "logical_or"),
                        (Op.XOR, np.logical_xor, "logical_xor")):
    primitive(_op, shape=compare_shape_for(_name), name=_name)(_fn)


def _where_shape(cond, a, b):
    return broadcast_shapes("where", cond, a, b), _tensor_dtype(a, b)


def _where_vjp(g, node):
    from .._ops.math import where
    cond = node.inputs[0]
    ga = _grad_for(node, 1, where(cond, g, 0.0)) if node.needs_grad[1] else None
    gb = _grad_for(node, 2, where(cond, 0.0, g)) if node.needs_grad[2] else None
    return None, ga, gb


@primitive(Op.WHERE, shape=_where_shape, needs=lambda m: (0,), vjp=_where_vjp)
def where(cond, a, b):
    out = np.where(cond, a, b)
    dt = _tensor_dtype(a, b)
    return out if out.dtype == dt else out.astype(dt)
