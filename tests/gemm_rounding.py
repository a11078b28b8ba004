"""How closely two gemms over the same operands must agree when they may sum K in
different orders.

NOTE (no bits across BLAS kernels): a gemm split into blocks of C is one dot product
over all of K per element, but OpenBLAS picks its micro-kernel per core type
(OPENBLAS_CORETYPE, which CI may set) and treats a block's edge tiles with other
kernels, whose K order differs: with OPENBLAS_CORETYPE=Haswell on an AVX-512 machine,
9% of a split 64x1000x100 float32 gemm's elements differ from the whole gemm's in the
last bits. So tests hold split and whole to rounding: the classic bound
``|fl(A@B) - A@B| <= k * eps * (|A| @ |B|)`` for each, i.e. twice that between them,
which still catches a wrong block (an error of the size of the terms themselves)."""
from __future__ import annotations

import numpy as np


def assert_gemm_rounding(got, want, a, b, alpha: float = 1.0) -> None:
    """``got`` and ``want`` are both ``alpha * a @ b`` (+ the same C term) up to rounding."""
    a64, b64 = np.abs(np.asarray(a, np.float64)), np.abs(np.asarray(b, np.float64))
    k = a64.shape[-1]
    eps = np.finfo(np.asarray(got).dtype).eps
    bound = 2 * k * eps * abs(alpha) * (a64 @ b64) + 4 * eps * np.abs(np.asarray(want, np.float64))
    excess = np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64)) - bound
    worst = np.unravel_index(np.argmax(excess), excess.shape) if excess.size else ()
    assert excess.size == 0 or excess[worst] <= 0, (
        f"gemm results differ beyond rounding at {worst}: {got[worst]!r} vs {want[worst]!r}")
