"""C's fmod as NumPy semantics for the FMOD scalar op (eager, interpreter, constant folding).

NOTE (exact fmod): fmod(a, b) = a - n * b with n = trunc(a / b) is exact, the C function
is. glibc 2.36's fmodf here is a bit-by-bit long division: np.fmod at 1M float32 took
35 ms (N(0, 100) % N(3, 1)), 486 ms with quotients near 1e30. A float32 pair has an exact
form in float64: q = trunc(a / b) (never below the true quotient's truncation: integers
below 2**53 are doubles and rounding is monotone; at most one above it), q * b exact
while |q| < 2**29 (24 + 29 bits), and a - q * b then exact as well (|r| < |b|, a
multiple of b's last bit); where q was one too far, r has the other sign and adding |b|
towards a is exact too. That runs in ~13 NumPy passes over 8192-element chunks that stay
in cache: 1M float32 in ~6 ms. float64 has no wider type: there q * b is split exactly
into p + e (Dekker's product of Veltkamp's halves), x - p is exact (Sterbenz: p is within
a factor 2 of x) and so is (x - p) - e, the remainder, while |q| < 2**53 and 2**-900 <
|b| < 2**900 (the halves' products neither overflow nor underflow): ~30 passes, 27 ms
against np.fmod's 91 at 1M (load 11). What neither holds (|q| too large, b = 0, b =
+-inf, NaN) goes to np.fmod, element by element; other dtypes are np.fmod itself.
"""
from __future__ import annotations

import numpy as np

_CHUNK = 8192
_EXACT_QUOTIENT = 2.0 ** 29   # |trunc(a / b)| below this: q * b is exact in float64
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_SPLIT = 134217729.0   # 2**27 + 1: Veltkamp's split of a double into two halves
_SPLIT_RANGE = 2.0 ** 900


def fmod(a, b):
    """``np.fmod(a, b)``, bit for bit (signed zeros, NaN, infinities), faster on float32
    and float64 (NOTE (exact fmod)).

    >>> fmod(np.float32([1e38, -7.0, 3.0]), np.float32([3.0, 2.0, 0.1]))
    array([ 2.        , -1.        ,  0.09999996], dtype=float32)
    """
    dtype = np.result_type(a, b)
    exact = {_F32: _fmod_float32, _F64: _fmod_float64}.get(dtype)
    if exact is None or np.size(a) + np.size(b) < 2 * _CHUNK:
        with np.errstate(invalid="ignore"):
            return np.fmod(a, b)
    x, y = np.broadcast_arrays(np.asarray(a, dtype), np.asarray(b, dtype))
    out = np.empty(x.shape, dtype)
    exact(x.reshape(-1), y.reshape(-1), out.reshape(-1))
    return out


def _fmod_float32(x, y, out) -> None:
    """``out = fmod(x, y)`` for flat float32 arrays, chunk by chunk in float64."""
    n = min(_CHUNK, x.size)
    xs, ys, r, t = (np.empty(n) for _ in range(4))
    ok, wrong = np.empty(n, bool), np.empty(n, bool)
    with np.errstate(all="ignore"):
        for start in range(0, x.size, _CHUNK):
            stop = min(start + _CHUNK, x.size)
            k = stop - start
            xk, yk, rk, tk, okk, wk = xs[:k], ys[:k], r[:k], t[:k], ok[:k], wrong[:k]
            xk[...] = x[start:stop]
            yk[...] = y[start:stop]
            np.divide(xk, yk, out=rk)
            np.trunc(rk, out=rk)
            np.less(np.abs(rk, out=tk), _EXACT_QUOTIENT, out=okk)
            np.multiply(rk, yk, out=rk)
            np.subtract(xk, rk, out=rk)
            # q one too far: r's sign is not x's (a float32's double products never underflow)
            np.less(np.multiply(rk, xk, out=tk), 0.0, out=wk)
            np.add(rk, np.copysign(yk, xk, out=tk), out=rk, where=wk)
            np.copysign(rk, xk, out=rk)   # a zero keeps a's sign
            np.logical_and(okk, np.equal(rk, rk, out=wk), out=okk)   # NaN: b is +-inf
            out[start:stop] = rk
            if not okk.all():
                slow = start + np.flatnonzero(~okk)
                out[slow] = np.fmod(x[slow], y[slow])


def _fmod_float64(x, y, out) -> None:
    """``out = fmod(x, y)`` for flat float64 arrays, chunk by chunk (Dekker's product)."""
    n = min(_CHUNK, x.size)
    q, p, e, hi, lo, t, u = (np.empty(n) for _ in range(7))
    ok, wrong = np.empty(n, bool), np.empty(n, bool)
    with np.errstate(all="ignore"):
        for start in range(0, x.size, _CHUNK):
            stop = min(start + _CHUNK, x.size)
            k = stop - start
            xk, yk = x[start:stop], y[start:stop]
            qk, pk, ek, hk, lk, tk, uk = q[:k], p[:k], e[:k], hi[:k], lo[:k], t[:k], u[:k]
            okk, wk = ok[:k], wrong[:k]
            np.trunc(np.divide(xk, yk, out=qk), out=qk)
            np.less(np.abs(qk, out=tk), 2.0 ** 53, out=okk)
            np.abs(yk, out=tk)
            np.logical_and(okk, np.less(tk, _SPLIT_RANGE, out=wk), out=okk)
            np.logical_and(okk, np.greater(tk, 1.0 / _SPLIT_RANGE, out=wk), out=okk)
            np.multiply(qk, yk, out=pk)
            _halves(qk, hk, lk, tk)    # q = hk + lk
            _halves(yk, ek, uk, tk)    # y = ek + uk
            # e = q * y - p exactly: ((qh * yh - p) + qh * yl + ql * yh) + ql * yl
            np.subtract(np.multiply(hk, ek, out=tk), pk, out=tk)
            tk += np.multiply(hk, uk, out=hk)
            tk += np.multiply(lk, ek, out=ek)
            tk += np.multiply(lk, uk, out=lk)
            np.subtract(np.subtract(xk, pk, out=pk), tk, out=pk)   # x - q * y, exact
            # q one too far: r's sign is not x's (signs, not a product that may underflow)
            np.less(np.multiply(np.sign(pk, out=tk), np.sign(xk, out=uk), out=tk), 0.0, out=wk)
            np.add(pk, np.copysign(yk, xk, out=tk), out=pk, where=wk)
            np.copysign(pk, xk, out=pk)   # a zero keeps a's sign
            np.logical_and(okk, np.equal(pk, pk, out=wk), out=okk)
            out[start:stop] = pk
            if not okk.all():
                slow = start + np.flatnonzero(~okk)
                out[slow] = np.fmod(x[slow], y[slow])


def _halves(v, hi, lo, scratch) -> None:
    """Veltkamp: v = hi + lo exactly, each half of the mantissa."""
    np.multiply(v, _SPLIT, out=scratch)
    np.subtract(scratch, v, out=hi)
    np.subtract(scratch, hi, out=hi)
    np.subtract(v, hi, out=lo)
