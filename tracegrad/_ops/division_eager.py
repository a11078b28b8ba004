"""Float ``//`` of host arrays as fused NumPy passes (NOTE (eager floor division)).

NOTE (eager floor division): ``_float_floor_divide`` in tracegrad._ops.division is a
composition of tensor ops on the FMOD primitive (NOTE (float floor division)): eagerly,
~20 NumPy passes over the whole array, each into a fresh result. Where nothing traces and
no gradient is wanted, the same operations in the same dtype run here over 8192-element
chunks that stay in cache, into reused buffers, with fewer passes: the sign test (mod != 0,
mod < 0 ^ b < 0) is the sign of one product (a product's sign is its factors' XOR,
underflow or not), where(need, q - 1, q) is q - need (q - 0.0 is q, -0.0 and NaN too),
and the zero-quotient and zero-divisor corrections run only in a chunk that has one. The
same bits (signed zeros, NaN, infinities, huge quotients: tests/test_perf_ops_division.py
against the composition). 1M elements, one thread, one process, interleaved, CPU time,
medians of 21, load ~3.5: float32 // 22.3 -> 14.6 ms (torch 2.8, np.floor_divide 25.5),
float64 51.0 -> 33.9 (torch 6.9, NumPy 25.6); fmod is ~10 / ~20 of that. ``%`` keeps the
composition: after fmod it is 6 passes, and the fused form of them (a mask blend) was no
faster (0.92x).
"""
from __future__ import annotations

import numpy as np

from .. import _trace_state
from .._tensor import Tensor, _wrap
from ..autograd.grad_mode import state as _grad_state
from ..codegen.numpy_fmod import fmod

_CHUNK = 8192
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def host_operands(a, b):
    """(x, y, shape) as NumPy arrays of one float dtype when both are host data (a tensor
    and a tensor or a Python number), nothing traces and neither needs a gradient; else
    None (the composition decides, and raises where it must)."""
    if _trace_state.is_tracing():
        return None
    tensors = [v for v in (a, b) if isinstance(v, Tensor)]
    if any(type(t._data) is not np.ndarray for t in tensors):
        return None
    if _grad_state.enabled and any(t._requires_grad for t in tensors):
        return None
    dtype = tensors[0]._data.dtype
    if dtype not in (_F32, _F64) or any(v._data.dtype != dtype for v in tensors):
        return None
    if not all(isinstance(v, (Tensor, int, float, np.number)) for v in (a, b)):
        return None   # (a symbolic size, say)
    x, y = (v._data if isinstance(v, Tensor) else np.asarray(v, dtype) for v in (a, b))
    try:
        shape = np.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        return None
    return x, y, shape


def _flat(v: np.ndarray, shape) -> np.ndarray:
    """``v`` over ``shape``, flat; a single element stays one (a ufunc broadcasts it)."""
    if v.size == 1:
        return v.reshape(())
    return np.ascontiguousarray(np.broadcast_to(v, shape)).reshape(-1)


def _needs_b(mod, y, out, scratch, nonzero):
    """``out`` = where Python's % adds b: mod nonzero with the other sign than b's. A
    product's sign is the XOR of its factors' signs, underflow or not; where it is NaN,
    mod is NaN (mod = 0 is excluded; fmod(a, b) is NaN for b = 0 or NaN), and NaN + b is
    that same NaN, so either answer gives the composition's bits."""
    np.signbit(np.multiply(mod, y, out=scratch), out=out)
    return np.logical_and(out, np.not_equal(mod, 0, out=nonzero), out=out)


def _by_chunks(x, y, shape, dtype, body) -> Tensor:
    """``body(x, y, fmod(x, y), out)`` over 8192-element chunks of the flat broadcast
    operands (a one-element operand stays 0-d). (fmod chunk by chunk, its per-call setup
    included, was slower than once over the whole array: % 0.77x the composition.)"""
    out = np.empty(shape, dtype)
    flat = out.reshape(-1)
    xs, ys = _flat(x, shape), _flat(y, shape)
    with np.errstate(all="ignore"):
        mods = _flat(np.asarray(fmod(x, y)), shape)
        for start in range(0, flat.size, _CHUNK):
            stop = min(start + _CHUNK, flat.size)
            xk, yk, mk = (v if v.ndim == 0 else v[start:stop] for v in (xs, ys, mods))
            body(xk, yk, np.broadcast_to(mk, (stop - start,)), flat[start:stop])
    return _wrap(out)


def floor_divide(x: np.ndarray, y: np.ndarray, shape) -> Tensor:
    """PyTorch's float ``x // y`` (c10's div_floor_floating, as the composition)."""
    n = min(_CHUNK, int(np.prod(shape)))
    q, fl, scratch = (np.empty(n, x.dtype) for _ in range(3))
    mask, nonzero = np.empty(n, bool), np.empty(n, bool)

    def body(xk, yk, mk, out):
        k = mk.size
        qk, fk, sk, mask_k = q[:k], fl[:k], scratch[:k], mask[:k]
        np.divide(np.subtract(xk, mk, out=qk), yk, out=qk)
        # where(need, q - 1, q) as q - need: q - 0.0 is q, signed zeros and NaN included
        np.subtract(qk, _needs_b(mk, yk, mask_k, sk, nonzero[:k]), out=qk)
        np.floor(qk, out=fk)
        # floored + (q - floored > 0.5): fk + 0.0 turns only a -0.0 into +0.0, and a
        # floored -0.0 comes from q = -0.0, replaced below
        np.add(fk, np.greater(np.subtract(qk, fk, out=sk), 0.5, out=mask_k), out=fk)
        zero_q = np.equal(qk, 0, out=mask_k).any()
        zero_y = not yk.all()
        if zero_q or zero_y:
            exact = np.broadcast_to(np.divide(xk, yk), (k,))
            # a zero quotient takes a / b's sign; a zero divisor gives a / b itself
            np.putmask(fk, mask_k, np.multiply(exact, 0.0))
            if zero_y:
                np.putmask(fk, np.broadcast_to(np.equal(yk, 0), (k,)), exact)
        out[...] = fk
    return _by_chunks(x, y, shape, x.dtype, body)
