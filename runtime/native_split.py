"""Which steps of a program a driver splits over the native pool (``runtime.native_pool``).

A split step is a ``runtime.driver.ParallelCall``: the driver hands its blocks to
``tg_dispatch`` without returning to Python. Kernels split where they did over the
Python pool (``cpu_threads.chunks``: ``PARALLEL_MIN_WORK`` elements); gemms from
``GEMM_NATIVE_MIN_MACS`` multiply-adds, in blocks of C's rows or columns
(``runtime.driver.gemm_by_rows``), each one a single-threaded BLAS call over all of K.

NOTE (native gemm split): a native hand-off to a spinning worker costs ~3.5 µs (a
dispatch of two empty chunks, ctypes call included, mean of 20000 on the 2-core VM),
against ~30 µs and more for the Python pool, so gemms far smaller than the Python
pool's ``runtime.cblas.GEMM_PARALLEL_MIN_MACS`` can pay: see the constant's comment.
"""
from __future__ import annotations

from . import cpu_threads
from .cblas import GEMM_MIN_BLOCK
from .driver import GemmCall, KernelCall, ParallelCall, gemm_by_rows
from .native_pool import MAX_CHUNKS, native_pool

# Measured (2026-12-02 09:05, a quiet window at load 1.2 on the 2-core VM, one
# process, 20 alternations of 50 calls, a program of one gemm, min / median µs, split
# in two vs whole): 64x256x64 (1.05M multiply-adds) 15.0/16.4 vs 27.6/28.2;
# 64x512x64 30.6/34.7 vs 50.0/51.1; 128^3 29.2/33.2 vs 48.4/50.2; 256x256x64
# 49.8/53.7 vs 89.8/91.1; the seed's 64x1000x100 85.5/92.3 vs 146.7/148.3 (by rows or
# columns alike) and 1000x64x100 76.7/82.0 vs 142.0/144.3 (by columns: 133.2, so rows,
# ``gemm_by_rows``). Every size from 2^20 gains 30-43%; smaller ones were not measured.
GEMM_NATIVE_MIN_MACS = 1 << 20


def _parallel(call: KernelCall | GemmCall, chunks: int, fns: list[int]) -> ParallelCall | None:
    pool = native_pool()
    if pool is None or not 1 <= chunks <= MAX_CHUNKS:
        return None
    fns += [pool.dispatch, pool.address]
    return ParallelCall(call, chunks, len(fns) - 2, len(fns) - 1)


def split_kernel(call: KernelCall, chunks: cpu_threads.Chunks, fns: list[int]
                 ) -> ParallelCall | None:
    """``call`` (its function already in ``fns``) in ``len(chunks)`` blocks over the
    native pool, or None where the pool is off. A symbolic program's driver reads the
    chunk count from its size table, so one driver text serves every size that splits
    (NOTE (symbolic splits))."""
    return _parallel(call, len(chunks), fns)


def split_gemm_natively(call: GemmCall, fns: list[int], size_table: bool
                        ) -> ParallelCall | None:
    """``call`` (its gemm already in ``fns``) in blocks of C over the native pool, or
    None: too small, too narrow to cut in blocks of ``GEMM_MIN_BLOCK``, or no pool.

    NOTE (symbolic splits): a symbolic program's driver serves every size, so its gemms
    are always ``ParallelCall``s whose chunk count, 1 below the threshold, comes from
    the size table: a size past the threshold compiles nothing. Its kernels that split
    stay in the driver too (one more driver text per regime: the sizes where they split).
    They used to leave it for the Python pool, which put symbolic softmax rows 10-13%
    behind specialised ones once those split natively (1.04 now, one run at load 1.1)."""
    outer = call.m if gemm_by_rows(call) else call.n
    chunks = min(cpu_threads.n_threads(), outer // GEMM_MIN_BLOCK)
    if call.m * call.n * call.k < GEMM_NATIVE_MIN_MACS or chunks < 2:
        if not size_table:
            return None
        chunks = 1
    return _parallel(call, chunks, fns)
