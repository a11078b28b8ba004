"""Elementwise primitives: unary math, binary arithmetic and comparisons, WHERE, CAST.

Binary primitives broadcast like NumPy; the frontend has already promoted tensor operands
to one dtype (``tracegrad._ops.math``), so the rules here only see Python scalars as the
odd one out. Each eager implementation is the op's row of codegen's NumPy semantics table
(``codegen.scalar_ops``), the same function the loop-IR interpreter and constant folding
run.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .._tensor import Tensor
from ..codegen.ops import Op
from ..codegen.scalar_ops import SCALAR_OPS
from . import functions as F
from .registry import ShapeError, describe, primitive, reads_none, reads_other, scalar_primitive

# NumPy warns on log(0), 0/0 and friends; PyTorch returns inf/nan silently, and so do we.
# A warnings filter costs nothing until a warning fires (np.errstate costs ~1.6 µs per op).
# A ufunc's warning names the Python frame that called it: the dispatcher calls the table's
# ufuncs directly, and the table's own functions call NumPy from codegen.scalar_ops.
warnings.filterwarnings("ignore", category=RuntimeWarning,
                        module=r"tracegrad\.(_primitives|_dispatch|codegen\.scalar_ops)")


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
    shapes = [tuple(_shape(x)) for x in xs]
    first = shapes[0]
    try:
        if all(len(s) == len(first) and s == first for s in shapes):
            return first
        return broadcast_sizes(shapes)
    except ValueError:
        raise ShapeError(f"{name}: shapes {' and '.join(str(s) for s in shapes)} cannot be "
                         f"broadcast together (sizes must match or be 1, aligned from the right)") from None


def broadcast_sizes(shapes) -> tuple:
    """NumPy's broadcasting rule in Python: the sizes stay the objects they were (a compile
    guard trace's symbolic sizes, NOTE in compiler/symint.py), which ``np.broadcast_shapes``
    would make plain ints.  Raises ValueError where they do not broadcast."""
    ndim = max(len(s) for s in shapes)
    out = []
    for k in range(ndim):
        size = 1
        for s in shapes:
            j = k - ndim + len(s)
            if j < 0 or s[j] == 1:
                continue
            if size == 1:
                size = s[j]
            elif s[j] != size:
                raise ValueError("shapes cannot be broadcast")
        out.append(size)
    return tuple(out)


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


# ---- derivative rules (tensor code over the primitive layer's functions, ``F``) -----------

def _grad_for(node, i, g):
    """Undo broadcasting: reduce ``g`` to the shape of input ``i``."""
    x = node.inputs[i]
    return F.sum_to(g, tuple(x.shape))


def _unary(fn):
    def vjp(g, node):
        return (fn(g, node.inputs[0], node),)
    return vjp


def _zero_grad(g, x, node):
    return F.zeros_like(x)


scalar_primitive(Op.NEG, shape=unary_shape, needs=reads_none, vjp=_unary(lambda g, x, n: F.neg(g)))
scalar_primitive(Op.EXP, shape=float_unary_shape, needs=reads_none, saves_output=True,
                 vjp=_unary(lambda g, x, n: F.mul(g, n.output())))
scalar_primitive(Op.LOG, shape=float_unary_shape, vjp=_unary(lambda g, x, n: F.div(g, x)))
scalar_primitive(Op.SIN, shape=float_unary_shape, vjp=_unary(lambda g, x, n: F.mul(g, F.cos(x))))
scalar_primitive(Op.COS, shape=float_unary_shape, vjp=_unary(lambda g, x, n: F.mul(F.neg(g), F.sin(x))))
scalar_primitive(Op.SQRT, shape=float_unary_shape, needs=reads_none, saves_output=True,
                 vjp=_unary(lambda g, x, n: F.div(g, F.mul(n.output(), 2))))
scalar_primitive(Op.RECIP, shape=float_unary_shape, needs=reads_none, saves_output=True,
                 vjp=_unary(lambda g, x, n: F.mul(F.mul(F.neg(g), n.output()), n.output())))
scalar_primitive(Op.TANH, shape=float_unary_shape, needs=reads_none, saves_output=True,
                 vjp=_unary(lambda g, x, n: F.mul(g, F.sub(1, F.mul(n.output(), n.output())))))
scalar_primitive(Op.SIGMOID, shape=float_unary_shape, needs=reads_none, saves_output=True,
                 vjp=_unary(lambda g, x, n: F.mul(F.mul(g, n.output()), F.sub(1, n.output()))))

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

scalar_primitive(Op.ERF, shape=float_unary_shape,
                 vjp=_unary(lambda g, x, n: F.mul(g, F.mul(F.exp(F.neg(F.mul(x, x))), _TWO_OVER_SQRT_PI))))
scalar_primitive(Op.ABS, shape=unary_shape, vjp=_unary(lambda g, x, n: F.mul(g, F.sign(x))))
scalar_primitive(Op.SIGN, shape=unary_shape, needs=reads_none, vjp=_unary(_zero_grad))
scalar_primitive(Op.FLOOR, shape=unary_shape, needs=reads_none, vjp=_unary(_zero_grad))
scalar_primitive(Op.CEIL, shape=unary_shape, needs=reads_none, vjp=_unary(_zero_grad))
scalar_primitive(Op.ROUND, shape=unary_shape, needs=reads_none, vjp=_unary(_zero_grad))
scalar_primitive(Op.LOG1P, shape=float_unary_shape, vjp=_unary(lambda g, x, n: F.div(g, F.add(x, 1))))
scalar_primitive(Op.EXPM1, shape=float_unary_shape, needs=reads_none, saves_output=True,
                 vjp=_unary(lambda g, x, n: F.mul(g, F.add(n.output(), 1))))
scalar_primitive(Op.EXP2, shape=float_unary_shape, needs=reads_none, saves_output=True,
                 vjp=_unary(lambda g, x, n: F.mul(g, F.mul(n.output(), math.log(2.0)))))
scalar_primitive(Op.LOG2, shape=float_unary_shape,
                 vjp=_unary(lambda g, x, n: F.div(g, F.mul(x, math.log(2.0)))))
scalar_primitive(Op.LOG10, shape=float_unary_shape,
                 vjp=_unary(lambda g, x, n: F.div(g, F.mul(x, math.log(10.0)))))


# ---- bitwise (logical on bool) --------------------------------------------------------

_TORCH_NAMES = {"float16": "Half", "float32": "Float", "float64": "Double",
                "bfloat16": "BFloat16", "complex64": "ComplexFloat", "complex128": "ComplexDouble"}


def bitwise_dtype_check(name: str, dtype) -> None:
    """PyTorch's error for a bitwise op on a dtype that has no bits to combine."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "biu":
        raise ShapeError(f'"{name}_cpu" not implemented for '
                         f"'{_TORCH_NAMES.get(dtype.name, dtype.name)}'")


def _bitwise_shape_for(name):
    def rule(*xs, **attrs):
        dtype = _tensor_dtype(*xs)
        bitwise_dtype_check(name, dtype)
        return broadcast_shapes(name, *xs), dtype
    return rule


scalar_primitive(Op.NOT, shape=_bitwise_shape_for("bitwise_not"), name="bitwise_not")
for _op, _name in ((Op.AND, "bitwise_and"), (Op.OR, "bitwise_or"), (Op.XOR, "bitwise_xor")):
    scalar_primitive(_op, shape=_bitwise_shape_for(_name), name=_name)


def _cast_shape(x, dtype):
    return _shape(x), np.dtype(dtype)


def _cast_vjp(g, node):
    x = node.inputs[0]
    if x._data.dtype.kind == "f":
        return (F.cast(g, x._data.dtype),)
    return (None,)


@primitive(Op.CAST, shape=_cast_shape, needs=reads_none, vjp=_cast_vjp)
def cast(x, dtype):
    return np.asarray(x).astype(dtype)


# ---- binary ---------------------------------------------------------------------------

def _add_vjp(g, node):
    return tuple(_grad_for(node, i, g) if node.needs_grad[i] else None for i in range(2))


def _sub_vjp(g, node):
    return (_grad_for(node, 0, g) if node.needs_grad[0] else None,
            _grad_for(node, 1, F.neg(g)) if node.needs_grad[1] else None)


def _mul_vjp(g, node):
    a, b = node.inputs
    return (_grad_for(node, 0, F.mul(g, b)) if node.needs_grad[0] else None,
            _grad_for(node, 1, F.mul(g, a)) if node.needs_grad[1] else None)


def _div_vjp(g, node):
    a, b = node.inputs
    return (_grad_for(node, 0, F.div(g, b)) if node.needs_grad[0] else None,
            _grad_for(node, 1, F.div(F.mul(F.neg(g), a), F.mul(b, b)))
            if node.needs_grad[1] else None)


def _fmod_vjp(g, node):
    """PyTorch's: a's gradient passes, b's is -g * trunc(a / b)."""
    a, b = node.inputs
    return (_grad_for(node, 0, g) if node.needs_grad[0] else None,
            _grad_for(node, 1, F.mul(F.neg(g), F.trunc(F.div(a, b))))
            if node.needs_grad[1] else None)


def _pow_vjp(g, node):
    a, b = node.inputs
    ga = gb = None
    if node.needs_grad[0]:
        if isinstance(b, (int, float)) and b in (1, 2):
            # A constant square (losses, variances) needs no second power pass.
            ga = g if b == 1 else F.mul(g, F.mul(a, 2.0))
        elif isinstance(b, Tensor):
            # NOTE: 0 where the exponent is 0, as PyTorch: b * a**(b-1) is 0 * inf at a = 0
            ga = F.where(F.eq(b, 0), 0, F.mul(F.mul(g, b), F.pow(a, F.sub(b, 1))))
        elif b == 0:
            ga = F.zeros_like(g)
        else:
            ga = F.mul(F.mul(g, b), F.pow(a, b - 1))
        ga = _grad_for(node, 0, ga)
    if node.needs_grad[1]:
        # NOTE: d/db a**b = a**b * log(a); define it as 0 where a == 0 (PyTorch does too).
        out = node.output()
        if isinstance(a, Tensor):
            safe_log = F.log(F.where(F.gt(a, 0), a, 1))
        else:  # a Python number: its log is one too, and stays a weak scalar for NumPy
            safe_log = math.log(a) if a > 0 else 0.0
        gb = _grad_for(node, 1, F.mul(F.mul(g, out), safe_log))
    return ga, gb


def _extremum_vjp(pick_a):
    def vjp(g, node):
        a, b = node.inputs
        # NOTE: ties split the gradient evenly between both inputs, like PyTorch.
        dt = g._data.dtype
        wins_a = F.add(F.cast(pick_a(a, b), dt), F.mul(F.cast(F.eq(a, b), dt), 0.5))
        return (_grad_for(node, 0, F.mul(g, wins_a)) if node.needs_grad[0] else None,
                _grad_for(node, 1, F.mul(g, F.sub(1, wins_a))) if node.needs_grad[1] else None)
    return vjp


scalar_primitive(Op.ADD, shape=binary_shape_for("add"), needs=reads_none, vjp=_add_vjp)
scalar_primitive(Op.SUB, shape=binary_shape_for("sub"), needs=reads_none, vjp=_sub_vjp)
scalar_primitive(Op.MUL, shape=binary_shape_for("mul"), needs=reads_other, vjp=_mul_vjp)


def _div_shape(a, b):
    shape, dtype = binary_shape_for("div")(a, b)
    if dtype.kind != "f":
        raise ShapeError(f"div: the DIV primitive divides floats; cast {describe(a)} and "
                         f"{describe(b)} to a float dtype first (tracegrad.div does)")
    return shape, dtype


_true_divide = SCALAR_OPS[Op.DIV].numpy


def _div_eager(a, b):
    if np.result_type(a, b).kind != "f":
        _div_shape(a, b)  # raises the clear error
    return _true_divide(a, b)


scalar_primitive(Op.DIV, shape=_div_shape, vjp=_div_vjp, eager=_div_eager)
scalar_primitive(Op.FMOD, shape=binary_shape_for("fmod"), vjp=_fmod_vjp)
scalar_primitive(Op.POW, shape=binary_shape_for("pow"), vjp=_pow_vjp, saves_output=True, name="pow")
scalar_primitive(Op.MAXIMUM, shape=binary_shape_for("maximum"),
                 vjp=_extremum_vjp(F.gt))
scalar_primitive(Op.MINIMUM, shape=binary_shape_for("minimum"),
                 vjp=_extremum_vjp(F.lt))
# ``a > b`` and ``a >= b`` are CMPLT and CMPLE with the operands swapped (_ops/math.py)
for _op, _name in ((Op.CMPLT, "lt"), (Op.CMPLE, "le"), (Op.CMPEQ, "eq"), (Op.CMPNE, "ne")):
    scalar_primitive(_op, shape=compare_shape_for(_name), name=_name)


def _where_shape(cond, a, b):
    return broadcast_shapes("where", cond, a, b), _tensor_dtype(a, b)


def _where_vjp(g, node):
    cond = node.inputs[0]
    ga = _grad_for(node, 1, F.where(cond, g, 0.0)) if node.needs_grad[1] else None
    gb = _grad_for(node, 2, F.where(cond, 0.0, g)) if node.needs_grad[2] else None
    return None, ga, gb


_np_where = SCALAR_OPS[Op.WHERE].numpy


def _where_eager(cond, a, b):
    out = _np_where(cond, a, b)
    dt = _tensor_dtype(a, b)  # a Python scalar branch takes the tensor's dtype
    return out if out.dtype == dt else out.astype(dt)


scalar_primitive(Op.WHERE, shape=_where_shape, needs=lambda m: (0,), vjp=_where_vjp,
                 eager=_where_eager)
