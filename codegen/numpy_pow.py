"""POW as NumPy semantics for the POW scalar op (eager, interpreter, constant folding).

NOTE (one pow): eager and compiled compute the same float pow, PyTorch's rules. An exponent
of 2 is x*x, 3 is x*x*x, 0.5 sqrt(x), -1 1/x and -2 1/(x*x) (ATen's pow kernel for a
scalar exponent; here per element, so a tensor exponent follows the same rule and a
symbolic int in a compiled program gives the eager bits). Any other float32 power is
pow in float64 rounded once to float32: correctly rounded but where a result lies within
a float64 ulp of a float32 midpoint. NumPy's float32 power (SVML on AVX-512) was 1 ulp
off the correctly rounded value for 21% of N(0, 10) ** N(0, 3) and libm's powf (what the
compiled program called) differed from it, so compiled != eager; NumPy's float64 power
and glibc's pow differ in ~5% of float64 results, but never after rounding to float32
(0 of 200K; correctly rounded against mpmath: tests/test_pow_bits.py). The compiled side
calls ``llvm.pow.f64`` on the widened operands
(codegen.llvm_pow). Cost, 1M float32 ** 2.5, one process, medians, load ~2.5: eager
np.power 1.05 ms -> 2.44 ms (float64 in cache-sized chunks; torch 2.13, 1 thread, 1.85
ms), compiled libm powf 3.57 -> 9.62 ms (glibc's double pow, one call per element: the
price of one definition; won back on AVX-512 by NOTE (fast float32 pow) in
codegen.llvm_pow_f32, the same bits without the call for all but ~1e-4 of lanes); x ** 3
eager 1.09 -> 0.37 ms (torch 0.20). float64 keeps np.power (SVML) eagerly and glibc's pow
compiled: both within 1 ulp, not the same bits in ~5% of general powers.
"""
from __future__ import annotations

import numpy as np

_CHUNK = 8192
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
SPECIAL_EXPONENTS = (2.0, 3.0, 0.5, -1.0, -2.0)


def special_power(x, p: float):
    """``x ** p`` for an exponent in SPECIAL_EXPONENTS, as PyTorch computes it."""
    if p == 2.0:
        return x * x
    if p == 3.0:
        return x * x * x
    if p == 0.5:
        return np.sqrt(x)
    if p == -1.0:
        return x.dtype.type(1) / x
    return x.dtype.type(1) / (x * x)


def power(a, b):
    """``a ** b`` with NOTE (one pow)'s rules on floats, ``np.power`` otherwise.

    >>> power(np.float32([1.1, 2.0, 4.0]), np.float32([3.0, 2.5, 0.5]))
    array([1.3310001, 5.656854 , 2.       ], dtype=float32)
    """
    dtype = np.result_type(a, b)
    if dtype not in (_F32, _F64):
        return np.power(a, b)
    x, y = np.asarray(a, dtype), np.asarray(b, dtype)
    shape = np.broadcast_shapes(x.shape, y.shape)
    with np.errstate(all="ignore"):
        if y.size == 1 and float(y.reshape(-1)[0]) in SPECIAL_EXPONENTS:
            out = np.asarray(special_power(x, float(y.reshape(-1)[0])))
            return out if out.shape == shape else np.broadcast_to(out, shape).copy()
        out = _general(x, y, dtype, shape)
        if y.size > 1:
            for p in SPECIAL_EXPONENTS:
                hit = np.broadcast_to(y == p, shape)
                if hit.any():
                    out[hit] = special_power(np.broadcast_to(x, shape)[hit], p)
    return out


def _general(x, y, dtype, shape):
    """pow itself: float64 NumPy's, float32 float64's rounded once (chunked in cache)."""
    if dtype == _F64:
        return np.array(np.power(x, y), ndmin=len(shape))
    out = np.empty(shape, _F32)
    flat_out = out.reshape(-1)
    flat_x = np.broadcast_to(x, shape).reshape(-1)
    scalar = float(y.reshape(-1)[0]) if y.size == 1 else None
    flat_y = np.broadcast_to(y, shape).reshape(-1) if scalar is None else None
    n = min(_CHUNK, flat_out.size)
    wx, wy = np.empty(n), np.empty(n)
    for start in range(0, flat_out.size, _CHUNK):
        stop = min(start + _CHUNK, flat_out.size)
        k = stop - start
        wx[:k] = flat_x[start:stop]
        if flat_y is not None:
            wy[:k] = flat_y[start:stop]
        np.power(wx[:k], wy[:k] if scalar is None else scalar, out=wx[:k])
        flat_out[start:stop] = wx[:k]
    return out
