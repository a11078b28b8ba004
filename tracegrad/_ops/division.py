"""Division and its rounded forms: true division, ``//`` (floor_divide), ``%``
(remainder) and fmod, for floats (PyTorch's answers, built on the FMOD primitive) and
integers (exact integer arithmetic)."""
from __future__ import annotations

import numpy as np

from .. import _trace_state
from .._dispatch import apply
from .._errors import TraceError, describe
from .._primitives import PRIMITIVES as P
from .._primitives.elementwise import broadcast_shapes
from .._size import as_float
from .._tensor import Tensor
from ..codegen.ops import Op
from . import division_eager
from .creation import full_like, tensor
from ..autograd.grad_mode import state as _grad_state
from .math import _sub_any, _to_float, cast, isfinite, isnan, mul, promote, where


def div(a, b, *, rounding_mode=None):
    return _div(a, b, rounding_mode, "div")


def _div(a, b, rounding_mode, name: str):
    """div, its errors naming ``name`` (the public op: ``//`` is floor_divide's)."""
    a, b = promote(a, b, name)
    if rounding_mode is None:
        a, b = _to_float(a), _to_float(b)
        if not isinstance(a, Tensor):
            a = as_float(a)
        if not isinstance(b, Tensor):
            b = as_float(b)
        return apply(P[Op.DIV], (a, b))
    is_int = (a if isinstance(a, Tensor) else b)._data.dtype.kind in "iub"
    if is_int:   # (promote made a float scalar's tensor side float already)
        exact = _integer_division(a, b, rounding_mode, name)
        if exact is not None:
            return exact
    if not is_int and rounding_mode == "floor":
        return _float_floor_divide(a, b, name)
    q = apply(P[Op.DIV], (_to_float(a), _to_float(b)))
    q = q.floor() if rounding_mode == "floor" else q.trunc()
    return cast(q, (a if isinstance(a, Tensor) else b)._data.dtype) if is_int else q


def true_divide(a, b):
    return div(a, b)


# NOTE (float floor division): PyTorch's float ``//`` and ``%`` are Python's, built on C's
# exact fmod (c10's div_floor_floating; remainder is fmod plus b where the signs differ):
# a finite a over an infinite b leaves a (-5.0 // inf = -1, 5.0 % -inf = -inf), the
# quotient's sign survives into a zero (-0.0 // 3 = -0.0), x // 0 is x / 0 (inf // -0.0
# = -inf), and 3.0 // 0.1 = 29 (0.1 is a little above a tenth). floor(a / b) and
# a - floor(a / b) * b gave NaN, -0.0, +inf and 30 there. fmod is the FMOD primitive:
# exact for every pair, 1e38 % 3 included (NOTE (exact fmod) in codegen.numpy_fmod, NOTE
# (fmod in IR) in codegen.llvm_fmod). Before it, fmod was a composite of ~40 ops (Dekker's
# product), wrong past |a / b| = 2**24. 1M elements, one process, interleaved, medians of
# 15, load 3.6, composite -> FMOD: float32 % 66.8 -> 10.1 ms (np.mod 20.0, torch 3.4),
# // 77.6 -> 21.7 (np.floor_divide 25.7, torch 5.2), fmod 61.3 -> 4.9 (np.fmod 38.1);
# float64 % 104 -> 28 (np.mod 30), // 131 -> 38, fmod 88 -> 11.6; a fused tanh-GELU of
# a % b compiled: float32 1.54 -> 1.23 ms, float64 3.33 -> 2.19.

def _both_tensors(a, b, name: str):
    """A Python scalar becomes its tensor partner's dtype, as PyTorch's kernels read it.
    Shapes that do not broadcast raise naming ``name`` (``%`` named fmod, ``//`` too)."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        broadcast_shapes(name, a, b)
    return (a if isinstance(a, Tensor) else full_like(b, a),
            b if isinstance(b, Tensor) else full_like(a, b))


def _float_fmod(a, b, name: str = "fmod"):
    """C's fmod(a, b) for float tensors (NOTE (float floor division))."""
    return apply(P[Op.FMOD], _both_tensors(a, b, name))


def _remainder_needs_b(b, mod):
    """Where Python's % adds b to fmod's result: a nonzero mod whose sign is not b's."""
    # (^, not !=, on the two bools: XOR is a vector op in a kernel, CMPNE of bools is not)
    return (mod != 0) & ((mod < 0) ^ (b < 0))


def _float_remainder(a, b):
    a, b = _both_tensors(a, b, "remainder")
    grad_b = _grad_state.enabled and b._requires_grad
    kept = b.detach() if grad_b else b
    mod = _float_fmod(a, kept)
    out = where(_remainder_needs_b(kept, mod), mod + kept, mod)
    if not grad_b:
        return out
    # NOTE (remainder's gradient): PyTorch's, g for a (fmod's) and -g * floor_divide(a, b)
    # for b. Through fmod, b's was -trunc(a / b) (+1 where b was added), which differs
    # where a / b rounds onto an integer (3.0 % 0.1: -30, torch -29). So the value takes a
    # detached b, and b's gradient comes with a zero: (b - b') q + 0.0 is +0 (-0.0 results
    # keep their sign). It is NaN where b or q is not finite: kept where the result is NaN
    # anyway (b = 0: torch's -inf gradient), else 0 with no gradient (b = +-inf: torch's
    # is -floor(a / b), 0 or 1; a finite result of an infinite quotient). Only when b
    # requires grad: 1M float32 a % b forward + backward 32 -> 55 ms (load ~2.2; six more
    # passes and floor_divide's four wheres), a alone or no grad: unchanged.
    q = _float_floor_divide(a.detach(), kept, "remainder", mod.detach())
    nan = isnan(out)
    q = where(isfinite(q) | nan, q, 0.0)   # (no 0 * inf = NaN in the masked gradient)
    return out - (where(isfinite(b) | nan, (b - kept) * q, 0.0) + 0.0)


def _float_floor_divide(a, b, name: str, mod=None):
    """PyTorch's div_floor_floating (NOTE (float floor division)); gradient zero. ``mod``:
    fmod(a, b) where the caller has it."""
    host = division_eager.host_operands(a, b) if mod is None else None
    if host is not None:   # NOTE (eager floor division)
        return division_eager.floor_divide(*host)
    a, b = _both_tensors(a, b, name)
    mod = _float_fmod(a, b) if mod is None else mod
    q = (a - mod) / b
    q = where(_remainder_needs_b(b, mod), q - 1, q)
    floored = q.floor()
    floored = where(q - floored > 0.5, floored + 1, floored)
    exact = apply(P[Op.DIV], (a, b)).detach()
    # a zero quotient takes a / b's sign: exact * 0 (exact is finite there: |a| < |b|)
    return where(b == 0, exact, where(q != 0, floored, exact * 0.0))


def _integer_division(a, b, rounding_mode, name: str):
    """``a`` divided by ``b`` rounded by ``rounding_mode``, both integral, in exact integer
    arithmetic, or None where the operands are not host arrays (a device tensor keeps the
    float path). NOTE: the float path went through float32 (wrong past 2**24: 16777217 // 1
    gave 16777216) and gave INT64_MIN for a zero divisor, where PyTorch raises."""
    if _trace_state.is_tracing():
        # a kernel cannot raise PyTorch's error for a zero divisor found at run time
        raise TraceError(f"{name}: integer division (//, %, div with rounding_mode) cannot "
                         "be compiled: a zero divisor must raise ZeroDivisionError")
    arrays = [x._data if isinstance(x, Tensor) else np.asarray(x) for x in (a, b)]
    if not all(isinstance(x, np.ndarray) for x in arrays):
        return None
    x, y = arrays
    if (y == 0).any() and np.broadcast(x, y).size:   # an empty result divides nothing
        # (PyTorch's message is the bare word; the op and the operands are named here)
        raise RuntimeError(f"ZeroDivisionError: {name} of integers by zero "
                           f"({describe(x)} by {describe(y)})")
    dtype = (a if isinstance(a, Tensor) else b)._data.dtype
    with np.errstate(over="ignore"):   # INT64_MIN // -1 wraps, as in PyTorch
        q = np.floor_divide(x, y)
        if rounding_mode == "trunc":   # floor rounds down; trunc rounds toward zero
            q = q + ((np.remainder(x, y) != 0) & ((x < 0) != (y < 0)))
    return tensor(np.asarray(q, dtype=dtype))


def floor_divide(a, b):
    return _div(a, b, "floor", "floor_divide")


def remainder(a, b):
    a, b = promote(a, b, "remainder")
    if (a if isinstance(a, Tensor) else b)._data.dtype.kind == "f":
        return _float_remainder(a, b)
    return _sub_any(a, mul(_div(a, b, "floor", "remainder"), b))   # (True % x is PyTorch's)


def fmod(a, b):
    """C's fmod: the remainder of ``a / b`` truncated, with ``a``'s sign, exact.

    >>> import tracegrad as torch
    >>> torch.fmod(torch.tensor([1e38, -7.0, 3.0]), torch.tensor([3.0, 2.0, 0.1]))
    tensor([ 2.0000, -1.0000,  0.1000])
    """
    a, b = promote(a, b, "fmod")
    if (a if isinstance(a, Tensor) else b)._data.dtype.kind == "f":
        return _float_fmod(a, b)
    return _sub_any(a, mul(_div(a, b, "trunc", "fmod"), b))


__all__ = ["div", "floor_divide", "fmod", "remainder", "true_divide"]
