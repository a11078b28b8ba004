"""float32 functions computed in float64 and rounded once (eager, interpreter, folding).

NOTE (float32 through float64): NumPy's float32 exp2, log2 and log10 (SVML on AVX-512)
are 2.45, 1.91 and 2.10 ulp off at worst (tests/test_llvm_math_ulps.py's inputs, against
80-bit references); their float64 forms are within 0.72, 0.51 and 0.58 float64 ulp, so
rounded to float32 they are correctly rounded but where the true value lies within about
2**-29 ulp of a float32 midpoint (0 of ~6K per function off in tests/test_exp2_log2_log10.py).
Chunks of 8192 stay in cache. 1M float32, one process, medians, load ~3: exp2 0.51 ms
(as exp(x ln 2): 66 ulp) -> 1.26 (torch 2.13, 1 thread: 0.27), log2 0.47 -> 1.27 (torch
0.91), log10 0.40 -> 1.31 (torch 1.04); a plain astype to float64 and back took 6 ms.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

_CHUNK = 8192
_F32 = np.dtype(np.float32)


def through_float64(fn: Callable) -> Callable:
    """``fn`` (a NumPy ufunc of one argument), float32 evaluated in float64.

    >>> through_float64(np.log10)(np.float32([1000.0, 2.0]))
    array([3.     , 0.30103], dtype=float32)
    """
    def wide(x):
        x = np.asarray(x)
        if x.dtype != _F32:
            return fn(x)
        if x.size <= _CHUNK:
            return fn(x.astype(np.float64)).astype(_F32)
        out = np.empty(x.shape, _F32)
        flat_x, flat_out = x.reshape(-1), out.reshape(-1)
        work = np.empty(_CHUNK)
        for start in range(0, flat_out.size, _CHUNK):
            stop = min(start + _CHUNK, flat_out.size)
            w = work[:stop - start]
            w[...] = flat_x[start:stop]
            fn(w, out=w)
            flat_out[start:stop] = w
        return out
    wide.__name__ = fn.__name__
    return wide
