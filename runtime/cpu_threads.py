"""The CPU thread pool that runs parallel kernels, and the one way a kernel is split.

A kernel with the ABI of ``runtime.llvm_jit`` computes iterations ``[start, end)`` of its
outermost loop, so ``chunks(outer, work)`` cuts ``[0, outer)`` into one range per thread
and ``run_chunks`` runs all but the first on the pool and the first on the calling
thread. ``CpuKernel.__call__`` and ``cpu_program.CompiledProgram`` both go through here
(the program decides its chunks once, when it is built).

Fork safety: a forked child inherits the pool object but none of its threads, so work
submitted there would wait forever (a ``DataLoader`` worker calling a compiled
function hung). ``os.register_at_fork`` resets the pool and the lock in the child; the
child makes a pool of its own on first use.

>>> chunks(10, work=1 << 20, threads=3)
[(0, 3), (3, 6), (6, 10)]
>>> chunks(10, work=100, threads=3) is None  # too little work to pay for a hand-off
True
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

# Below this many elements of work a kernel runs on the calling thread: a thread
# hand-off costs ~10-20 µs on an idle machine (far more on a busy one), which only pays
# for itself on big arrays. Measured (2026-12-01, 2-core VM, an SGD update w - lr * g):
# 65,536 floats take 8.8 µs on one thread and 150 µs split over the pool under load, so
# 1 << 16 sent kernels that one thread finishes in under 10 µs to the pool (the seed
# MLP's 1000x100 weight update among them); at 1 << 18 (~35 µs on one thread) halving
# the time about pays for the hand-off.
PARALLEL_MIN_WORK = 1 << 18

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_threads: int | None = None

Chunks = list[tuple[int, int]]


def n_threads() -> int:
    """CPU threads kernels may use (the affinity mask, read once: it is a system call)."""
    global _threads
    if _threads is None:
        _threads = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                    else os.cpu_count() or 1)
    return _threads


def set_n_threads(n: int) -> None:
    """Use at most ``n`` threads for parallel kernels (a new pool is made on next use)."""
    global _threads, _pool
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive number of threads, got {n}")
    with _lock:
        _threads = int(n)
        old, _pool = _pool, None
    if old is not None:
        old.shutdown(wait=False)


def thread_pool() -> ThreadPoolExecutor:
    """The shared pool that runs all but the caller's chunk of a parallel kernel."""
    global _pool
    pool = _pool
    if pool is None:
        with _lock:
            if _pool is None:
                # The calling thread runs one chunk itself, so one worker fewer than cores.
                _pool = ThreadPoolExecutor(max(1, n_threads() - 1),
                                           thread_name_prefix="tg-cpu")
            pool = _pool
    return pool


def chunks(outer: int, work: int | None = None, threads: int | None = None) -> Chunks | None:
    """Ranges of ``[0, outer)`` for each thread, or None to run on the calling thread
    (fewer than two rows, fewer than two threads, or less than ``PARALLEL_MIN_WORK``
    elements of ``work``; ``work`` defaults to ``outer``)."""
    threads = n_threads() if threads is None else threads
    if outer < 2 or threads < 2 or (outer if work is None else work) < PARALLEL_MIN_WORK:
        return None
    n = min(threads, outer)
    return [(outer * k // n, outer * (k + 1) // n) for k in range(n)]


def run_chunks(cfunc: Callable[..., None], ranges: Chunks, args: tuple | list) -> None:
    """``cfunc(lo, hi, *args)`` for every range: the first on this thread, the rest on
    the pool (a ctypes call releases the GIL, so they run at once)."""
    pool = thread_pool()
    futures = [pool.submit(cfunc, lo, hi, *args) for lo, hi in ranges[1:]]
    cfunc(ranges[0][0], ranges[0][1], *args)  # the caller does its share too
    for f in futures:
        f.result()


def _reset_after_fork() -> None:
    # NOTE: the child has only the thread that forked; the parent's pool threads and any
    # lock they held are gone, so forget both (the pool object is dropped, not shut down:
    # shutting it down would wait on threads that do not exist here).
    global _lock, _pool
    _lock = threading.Lock()
    _pool = None


os.register_at_fork(after_in_child=_reset_after_fork)
