"""Elementwise math: arithmetic with PyTorch's dtype promotion and Python scalars on
either side, comparisons, unary functions, and elementwise composites (relu, clamp,
softmax's building blocks)."""
from __future__ import annotations

import numbers

import numpy as np

from .._dispatch import apply
from .._errors import describe
from ..autograd.grad_mode import state as _grad_state
from ..autograd.node import show_as as _show_as
from .._dtype import get_default_dtype, result_type, scalar_result_type, to_numpy_dtype
from .._primitives import PRIMITIVES as P
from .._primitives.elementwise import bitwise_dtype_check as _bitwise_dtype_check
from .._primitives.elementwise import broadcast_shapes as _broadcast_shapes
from .._primitives.registry import ShapeError as _ShapeError
from .._tensor import Tensor
from ..codegen.ops import Op
from .creation import full_like, tensor, zeros
from .nonzero import nonzero


def _scalar(x):
    """Python numbers pass through; NumPy scalars and 0-d arrays become Python numbers."""
    t = type(x)
    if t is float or t is int or t is bool:
        return x
    # NOTE: before the isinstance check below: np.float64 subclasses float, and NumPy
    # treats it as a strongly typed operand (float32 array * np.float64 -> float64).
    if isinstance(x, (np.generic, np.ndarray)) and np.ndim(x) == 0:
        return x.item()
    if isinstance(x, (bool, int, float)):
        return x
    if isinstance(x, numbers.Number):
        return complex(x) if isinstance(x, complex) else float(x)
    return None


def as_tensor_operand(x, op: str):
    if isinstance(x, Tensor):
        return x
    s = _scalar(x)
    if s is not None:
        return s
    if isinstance(x, (np.ndarray, list, tuple)):
        return tensor(x)
    raise TypeError(f"{op}: unsupported operand of type {type(x).__name__}: {x!r}")


def no_grad_result(out: Tensor) -> Tensor:
    """Drop the graph from a result that has no gradient (bool or integer values), as
    PyTorch does: ``(x > 0).requires_grad`` is False even when ``x`` requires grad."""
    if out.grad_fn is not None:
        out.grad_fn = None
        out._requires_grad = False
    return out


def cast(x: Tensor, np_dtype) -> Tensor:
    np_dtype = np.dtype(np_dtype)
    if x._data.dtype == np_dtype:
        return x
    out = apply(P[Op.CAST], (x,), {"dtype": np_dtype})
    return out if np_dtype.kind == "f" else no_grad_result(out)


def promote(a, b, op: str):
    """Cast the tensor operands of a binary op to their common PyTorch dtype."""
    if type(a) is Tensor and type(b) is Tensor and a._data.dtype is b._data.dtype:
        return a, b  # the common case, without the general checks below
    a = as_tensor_operand(a, op)
    b = as_tensor_operand(b, op)
    if isinstance(a, Tensor):
        da = a._data.dtype
        if isinstance(b, Tensor):
            db = b._data.dtype
            if da != db:
                rt = result_type(da, a._data.ndim, db, b._data.ndim)
                a, b = cast(a, rt), cast(b, rt)
        else:
            rt = scalar_result_type(da, b)
            if rt != da:
                a = cast(a, rt)
            elif type(b) is int and rt.kind in "iu" and op != "pow":
                b = _wrapped(b, rt)
    elif isinstance(b, Tensor):
        rt = scalar_result_type(b._data.dtype, a)
        if rt != b._data.dtype:
            b = cast(b, rt)
        elif type(a) is int and rt.kind in "iu" and op != "pow":
            a = _wrapped(a, rt)
    else:
        raise TypeError(f"{op}: expected at least one tensor operand, got {a!r} and {b!r}")
    return a, b


def _wrapped(value: int, np_dtype: np.dtype) -> int:
    """A Python int operand of an integer tensor, cast to the tensor's dtype with wraparound
    as PyTorch casts it (``uint8_tensor * -1`` multiplies by 255, ``int8 + 1000`` adds
    -24); NumPy refused an int its dtype cannot hold (OverflowError)."""
    info = np.iinfo(np_dtype)
    if info.min <= value <= info.max:
        return value
    return int(np.array(value & 0xFFFFFFFFFFFFFFFF, np.uint64).astype(np_dtype))


def _binary(op: Op, name: str):
    prim = P[op]

    def fn(a, b):
        a, b = promote(a, b, name)
        return apply(prim, (a, b))
    fn.__name__ = name
    return fn


def _comparison(op: Op, name: str):
    prim = P[op]

    def fn(a, b):
        a, b = promote(a, b, name)
        return no_grad_result(apply(prim, (a, b)))
    fn.__name__ = name
    return fn


add_no_alpha = _binary(Op.ADD, "add")
_sub_any = _binary(Op.SUB, "sub")


def _describe(v) -> str:
    return describe(v._data if isinstance(v, Tensor) else v)


def check_no_bool_sub(a, b) -> None:
    """PyTorch refuses ``-`` with a bool operand (NumPy's error named its own function)."""
    if any(isinstance(v, (bool, np.bool_)) or isinstance(v, Tensor) and v._data.dtype.kind == "b"
           for v in (a, b)):
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported "
                           f"(operands {_describe(a)} and {_describe(b)}). If you are trying to "
                           "invert a mask, use the `~` or `logical_not()` operator instead.")


def sub_no_alpha(a, b):
    check_no_bool_sub(a, b)
    return _sub_any(a, b)


mul = _binary(Op.MUL, "mul")
maximum = _binary(Op.MAXIMUM, "maximum")
minimum = _binary(Op.MINIMUM, "minimum")
lt = _comparison(Op.CMPLT, "lt")
le = _comparison(Op.CMPLE, "le")


def _mirrored_comparison(op: Op, name: str):
    """``a > b`` as ``b < a`` (and ``>=`` as ``<=``): the same one NumPy pass and the same
    kernel code, so ``>`` and ``>=`` need no primitives of their own."""
    prim = P[op]

    def fn(a, b):
        a, b = promote(a, b, name)
        try:
            return no_grad_result(apply(prim, (b, a)))
        except _ShapeError:
            _broadcast_shapes(name, a, b)  # the error in the caller's terms and order
            raise
    fn.__name__ = name
    return fn


gt = _mirrored_comparison(Op.CMPLT, "gt")
ge = _mirrored_comparison(Op.CMPLE, "ge")
eq = _comparison(Op.CMPEQ, "eq")
ne = _comparison(Op.CMPNE, "ne")


def _as_bool(x):
    x = as_tensor_operand(x, "logical")
    return cast(x, np.bool_) if isinstance(x, Tensor) else bool(x)


def logical_and(a, b):
    return no_grad_result(apply(P[Op.AND], (_as_bool(a), _as_bool(b))))


def logical_or(a, b):
    return no_grad_result(apply(P[Op.OR], (_as_bool(a), _as_bool(b))))


def logical_xor(a, b):
    return no_grad_result(apply(P[Op.XOR], (_as_bool(a), _as_bool(b))))


def logical_not(x):
    return no_grad_result(apply(P[Op.NOT], (_as_bool(x),)))


def _bitwise(op: Op, name: str):
    prim = P[op]

    def fn(a, b):
        """Bitwise on integer tensors, logical on bool; floats raise as in PyTorch."""
        a, b = promote(a, b, name)
        _bitwise_dtype_check(name, (a if isinstance(a, Tensor) else b)._data.dtype)
        return no_grad_result(apply(prim, (a, b)))
    fn.__name__ = name
    return fn


bitwise_and = _bitwise(Op.AND, "bitwise_and")
bitwise_or = _bitwise(Op.OR, "bitwise_or")
bitwise_xor = _bitwise(Op.XOR, "bitwise_xor")


def bitwise_not(x):
    """``~x``: bitwise not of an integer tensor, logical not of a bool tensor.

    >>> import tracegrad as torch
    >>> torch.bitwise_not(torch.tensor([0, 5, -1]))
    tensor([-1, -6,  0])
    """
    x = as_tensor_operand(x, "bitwise_not")
    _bitwise_dtype_check("bitwise_not", x._data.dtype)
    return no_grad_result(apply(P[Op.NOT], (x,)))


def times_alpha(a, b, alpha, op: str):
    """``b * alpha`` for ``add``/``sub``: a Python scalar ``b`` stays a scalar (``mul`` needs
    a tensor operand), and a float ``alpha`` with integer operands raises as in PyTorch
    rather than turning an integer sum into a float one."""
    if isinstance(alpha, bool) or alpha == 1:
        return b
    if isinstance(alpha, float) and not any(
            isinstance(v, float) or isinstance(v, Tensor) and v._data.dtype.kind == "f"
            for v in (a, b)):
        raise RuntimeError(f"{op}: For integral input tensors, argument alpha must not be a "
                           f"floating point number (alpha={alpha}, operands {_describe(a)} "
                           f"and {_describe(b)}).")
    return mul(b, alpha) if isinstance(b, Tensor) else _scalar(b) * alpha


def add(a, b, *, alpha=1):
    return add_no_alpha(a, times_alpha(a, b, alpha, "add"))


def sub(a, b, *, alpha=1):
    check_no_bool_sub(a, b)   # b itself: times_alpha makes no bool of a non-bool
    return _sub_any(a, times_alpha(a, b, alpha, "sub"))


def _to_float(x):
    if isinstance(x, Tensor) and x._data.dtype.kind != "f":
        return cast(x, get_default_dtype().np)
    return x


def pow(a, b):
    a, b = promote(a, b, "pow")
    if isinstance(b, Tensor) and b._data.dtype.kind in "iu":
        # NOTE: as PyTorch, an integer to a negative integer power is 1 ** n = 1,
        # (-1) ** n = +-1 by parity, else 0 (NumPy raised)
        odd = bitwise_and(b, 1) != 0
        negative = cast(where(a == 1, 1, where(a == -1, where(odd, -1, 1), 0)), b._data.dtype)
        return where(b < 0, negative, apply(P[Op.POW], (a, maximum(b, 0))))
    if all(not isinstance(v, Tensor) or v._data.dtype.kind == "b" for v in (a, b)):
        # NOTE: as PyTorch, a bool tensor ** a Python bool is bool (x ** True = x,
        # x ** False = True) and a bool tensor operand otherwise raises; NumPy gave int8
        if isinstance(b, Tensor):
            raise NotImplementedError(f'"pow" not implemented for \'Bool\' (exponent of '
                                      f"shape {tuple(b.shape)})")
        return logical_or(a, not b)
    if isinstance(a, Tensor) and a._data.dtype.kind in "iu" and isinstance(b, float):
        a = cast(a, get_default_dtype().np)
    return apply(P[Op.POW], (a, b))


def neg(x):
    return apply(P[Op.NEG], (x,))


def _float_unary(op: Op):
    prim = P[op]

    def fn(x):
        return apply(prim, (_to_float(as_tensor_operand(x, prim.name)),))
    fn.__name__ = prim.name
    return fn


def _same_unary(op: Op):
    prim = P[op]

    def fn(x):
        return apply(prim, (as_tensor_operand(x, prim.name),))
    fn.__name__ = prim.name
    return fn


exp = _float_unary(Op.EXP)
log = _float_unary(Op.LOG)
sin = _float_unary(Op.SIN)
cos = _float_unary(Op.COS)
sqrt = _float_unary(Op.SQRT)
tanh = _float_unary(Op.TANH)
sigmoid = _float_unary(Op.SIGMOID)
erf = _float_unary(Op.ERF)
log1p = _float_unary(Op.LOG1P)
expm1 = _float_unary(Op.EXPM1)
reciprocal = _float_unary(Op.RECIP)


def _not_bool(x, name: str):
    """PyTorch has no floor/ceil/round/trunc/abs for bool (NumPy's round gave float16)."""
    if isinstance(x, Tensor) and x._data.dtype.kind == "b":
        # NOTE: NotImplementedError subclasses RuntimeError, as PyTorch's error does.
        raise NotImplementedError(f'"{name}" not implemented for \'Bool\' (input of shape '
                                  f"{tuple(x.shape)})")
    return x


def abs(x):
    return apply(P[Op.ABS], (as_tensor_operand(_not_bool(x, "abs"), "abs"),))


def sign(x):
    x = as_tensor_operand(x, "sign")
    if x._data.dtype.kind == "b":   # as PyTorch: a bool is its own sign (NumPy raised)
        return logical_and(x, True)
    return apply(P[Op.SIGN], (x,))


def floor(x):
    return apply(P[Op.FLOOR], (as_tensor_operand(_not_bool(x, "floor"), "floor"),))


def ceil(x):
    return apply(P[Op.CEIL], (as_tensor_operand(_not_bool(x, "ceil"), "ceil"),))


def round(x, decimals: int = 0):
    _not_bool(x, "round")
    if decimals == 0:
        return apply(P[Op.ROUND], (x,))
    scale = 10.0 ** decimals
    return apply(P[Op.ROUND], (x * scale,)) / scale


def trunc(x):
    _not_bool(x, "trunc")
    return where(x >= 0, floor(x), ceil(x))


def frac(x):
    return x - trunc(x)


def rsqrt(x):
    return reciprocal(sqrt(x))


def square(x):
    if isinstance(x, Tensor) and x._data.dtype.kind == "b":
        x = cast(x, np.int64)   # as PyTorch: a bool squares to int64, not bool
    return mul(x, x)


log2 = _float_unary(Op.LOG2)
log10 = _float_unary(Op.LOG10)
exp2 = _float_unary(Op.EXP2)


def tan(x):
    return sin(x) / cos(x)


def _two_scalars_dtype(x, y) -> np.dtype:
    """PyTorch's dtype for ``where(cond, 2.5, 1)``: the default float when either is a
    float, int64 when either is an int, else bool (NumPy's rule gave float64)."""
    kinds = {v.__class__ for v in (x, y)}   # (a followed argument says float or int)
    if float in kinds:
        return get_default_dtype().np
    return np.dtype(np.int64) if int in kinds else np.dtype(np.bool_)


def where(condition, x=None, y=None):
    """``where(cond, x, y)`` picks elementwise; ``where(cond)`` is ``nonzero(as_tuple=True)``."""
    if x is None and y is None:
        return nonzero(condition, as_tuple=True)
    cond = _as_bool(condition)
    if not isinstance(cond, Tensor):
        cond = tensor(cond)
    x, y = promote(x, y, "where") if (isinstance(x, Tensor) or isinstance(y, Tensor)) else (x, y)
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        x = full_like(cond, x, dtype=_two_scalars_dtype(x, y))
    return apply(P[Op.WHERE], (cond, x, y))


def relu(x):
    # NOTE: NaN fails ``x <= 0`` and keeps its value (and gradient 1), as in PyTorch;
    # the gradient at 0 is 0.
    if isinstance(x, Tensor) and x._data.dtype.kind == "b":
        raise RuntimeError(f"Boolean inputs not supported for relu (input of shape "
                           f"{tuple(x.shape)})")
    out = where(x <= 0, 0, x)
    _show_as(out, "ReluBackward0", (x,))
    return out


def clamp(x, min=None, max=None):
    """Limit ``x`` to ``[min, max]`` (either may be None, a number or a tensor).

    >>> import tracegrad as torch
    >>> torch.tensor([-2.0, 0.5, 3.0]).clamp(-1, 1)
    tensor([-1.0000,  0.5000,  1.0000])
    """
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    min_t, max_t = isinstance(min, Tensor), isinstance(max, Tensor)
    float_bound = isinstance(min, float) or isinstance(max, float)
    if not (min_t or max_t) and float_bound and x._data.dtype.kind != "f":
        x = _to_float(x)
    if not (_grad_state.enabled and (x._requires_grad or (min_t and min._requires_grad)
                                     or (max_t and max._requires_grad))):
        out = x if min is None else maximum(x, min)
        return out if max is None else minimum(out, max)
    # NOTE: PyTorch's gradients: x's passes where min <= x <= max (ends included), min's
    # where x < min, max's where the result would exceed max. NaN fails every comparison,
    # so it sends no gradient anywhere while its value stays NaN.
    # A NaN bound gives NaN too (PyTorch): ``not (x >= min)`` picks the bound when x is
    # below it or either is NaN, and a NaN x stays x.
    value = x.detach()
    if min is not None:
        value = where(logical_or(ge(value, min), isnan(value)), value, min)
    if max is not None:
        value = where(logical_or(le(value, max), isnan(value)), value, max)
    inside = ge(x, min) if max is None else le(x, max) if min is None else \
        logical_and(ge(x, min), le(x, max))
    return where(inside, x, value)


clip = clamp


def lerp(start, end, weight):
    return start + (end - start) * weight


def isnan(x):
    return ne(x, x)


def isinf(x):
    return eq(abs(x), float("inf")) if x._data.dtype.kind == "f" else zeros_bool(x)


def isfinite(x):
    return logical_not(logical_or(isnan(x), isinf(x))) if x._data.dtype.kind == "f" \
        else logical_not(zeros_bool(x))


def zeros_bool(x):
    return zeros(*x.shape, dtype=np.bool_)


def to_dtype(x: Tensor, dtype) -> Tensor:
    return cast(x, to_numpy_dtype(dtype))


# The public functions (tracegrad.* re-exports these); helpers above stay module-private.
__all__ = ["abs", "add", "bitwise_and", "bitwise_not", "bitwise_or", "bitwise_xor", "ceil",
           "clamp", "clip", "cos", "eq", "erf", "exp", "exp2", "expm1", "floor", "frac", "ge",
           "gt", "isfinite", "isinf", "isnan", "le", "lerp", "log", "log10", "log1p", "log2",
           "logical_and", "logical_not", "logical_or", "logical_xor", "lt", "maximum",
           "minimum", "mul", "ne", "neg", "pow", "reciprocal", "relu", "round",
           "rsqrt", "sigmoid", "sign", "sin", "sqrt", "square", "sub", "tan", "tanh", "trunc",
           "where"]
