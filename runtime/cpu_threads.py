"""The CPU thread pool that runs parallel kernels, and the one way a kernel is split.

A kernel with the ABI of ``runtime.llvm_jit`` computes iterations ``[start, end)`` of its
outermost loop, so ``chunks(outer, work)`` cuts ``[0, outer)`` into one range per thread
and ``run_chunks`` runs them on the calling thread and the pool's workers.
``CpuKernel.__call__`` and ``cpu_program.CompiledProgram`` both go through here (the
program decides its chunks once, when it is built); so do gemms that a program splits
itself (``runtime.cblas``, NOTE (one kind of worker) in ``runtime.blas_threads``).

NOTE (claimed chunks): the caller and the workers claim chunks from one shared list, and
the caller waits only for chunks a worker has claimed, never for a worker to wake up. On
a busy machine a woken worker may get no core for milliseconds; the caller then runs
every chunk itself and returns, so a split kernel costs at worst its one-thread time plus
the hand-off. A worker that wakes late finds nothing left and goes back to sleep.
Idle workers block on a ``queue.SimpleQueue`` (a futex wait, no spinning). Measured
(2026-12-02, 2-core VM, load average 3.4, hand-off of an empty job and its completion,
mean of 2000): ``ThreadPoolExecutor.submit(...).result()`` 134 µs, a ``SimpleQueue``
put plus a wait on the reply 30 µs.

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
import queue
import threading
from typing import Callable, Sequence

# Below this many elements of work a kernel runs on the calling thread: a thread
# hand-off costs ~10-20 µs on an idle machine (far more on a busy one), which only pays
# for itself on big arrays. Measured (2026-12-01, 2-core VM, an SGD update w - lr * g):
# 65,536 floats take 8.8 µs on one thread and 150 µs split over the pool under load, so
# 1 << 16 sent kernels that one thread finishes in under 10 µs to the pool (the seed
# MLP's 1000x100 weight update among them); at 1 << 18 (~35 µs on one thread) halving
# the time about pays for the hand-off.
PARALLEL_MIN_WORK = 1 << 18

_lock = threading.Lock()
_pool: "WorkerPool | None" = None
_threads: int | None = None

Chunks = list[tuple[int, int]]
# called with the new count by ``set_n_threads`` (the native pool, runtime.native_pool)
on_set_n_threads: list[Callable[[int], None]] = []


class _Job:
    """One split call: its ranges, claimed one at a time (NOTE (claimed chunks))."""

    __slots__ = ("cfunc", "args", "ranges", "claim", "left", "finished", "error")

    def __init__(self, cfunc: Callable[..., None], ranges: Chunks, args: Sequence) -> None:
        self.cfunc = cfunc
        self.args = args
        self.claim = threading.Lock()     # guards ``next`` and ``left``
        self.left = len(ranges)           # ranges not finished yet
        self.finished = threading.Lock()  # held until the last range finishes
        self.finished.acquire()
        self.error: BaseException | None = None
        self.ranges = iter(ranges)

    def work(self) -> None:
        """Run ranges until none is left unclaimed."""
        while True:
            with self.claim:
                span = next(self.ranges, None)
            if span is None:
                return
            try:
                self.cfunc(span[0], span[1], *self.args)
            except BaseException as e:  # noqa: BLE001 - raised again in the caller
                self.error = self.error or e
            with self.claim:
                self.left -= 1
                last = self.left == 0
            if last:
                self.finished.release()


class WorkerPool:
    """``size`` daemon threads that sleep on a queue and help with posted jobs."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._serve, name=f"tg-cpu_{k}", daemon=True)
                         for k in range(size)]
        for t in self._threads:
            t.start()

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job.work()

    def post(self, job: _Job, helpers: int) -> None:
        """Wake up to ``helpers`` workers to claim ranges of ``job``."""
        for _ in range(min(helpers, self.size)):
            self._jobs.put(job)

    def shutdown(self) -> None:
        """Let every worker exit once it is idle (nothing waits for them)."""
        for _ in self._threads:
            self._jobs.put(None)


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
        old.shutdown()
    for hook in on_set_n_threads:
        hook(int(n))


def thread_pool() -> WorkerPool:
    """The shared pool whose workers help the caller with a parallel kernel's chunks."""
    global _pool
    pool = _pool
    if pool is None:
        with _lock:
            if _pool is None:
                # The calling thread works too, so one worker fewer than threads.
                _pool = WorkerPool(max(1, n_threads() - 1))
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


def run_chunks(cfunc: Callable[..., None], ranges: Chunks, args: Sequence) -> None:
    """``cfunc(lo, hi, *args)`` for every range, on this thread and the pool's workers
    (a ctypes call releases the GIL, so they run at once); returns when all are done.
    See NOTE (claimed chunks)."""
    job = _Job(cfunc, ranges, args)
    thread_pool().post(job, len(ranges) - 1)
    job.work()                 # the caller claims ranges too, first come first served
    job.finished.acquire()     # waits only for ranges a worker is still running
    if job.error is not None:
        raise job.error


def _reset_after_fork() -> None:
    # NOTE: the child has only the thread that forked; the parent's pool threads and any
    # lock they held are gone, so forget both (the pool object is dropped, not shut down:
    # its queue may be locked by a thread that does not exist here).
    global _lock, _pool
    _lock = threading.Lock()
    _pool = None


os.register_at_fork(after_in_child=_reset_after_fork)
