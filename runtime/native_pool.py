"""A native worker pool that a generated driver hands chunks of work to without Python.

The Python pool (``runtime.cpu_threads``) costs a ``SimpleQueue`` put, a futex wake of
a sleeping worker and the claim logic under the GIL per split call: the seed MLP's
64x1000x100 gemm split in two over it took min 125 / median 153-182 µs against 148 µs
whole. Here both sides are LLVM code (``POOL_SOURCE``, compiled and cached like any
kernel):

- ``tg_worker(0, 0, state)``: a worker's whole life. A Python daemon thread enters it
  through ctypes (the GIL is released) and stays until exit. It spins on the state's
  claim word with ``pause`` for ``SPIN_MICROSECONDS`` (cycle counter) after its last
  chunk, yielding the core every 512 pauses, then sleeps on a futex (libc ``syscall``).
- ``tg_dispatch(chunks, 0, state, fn, ctx)``: what a driver calls for a split step
  (``runtime.driver.ParallelCall``). One chunk, no worker, a busy pool or a back-off
  runs the step on the caller alone, as one chunk ``fn(0, 1, ctx)`` (a gemm in blocks
  packs its shared operand once per block: measured under load, the seed step ran
  +15-25 µs of CPU with its two gemms as two blocks each). Else it publishes ``(fn,
  ctx)`` and the chunk count, wakes sleeping workers (a futex wake, only when one
  sleeps), claims chunks itself, then waits for the chunks a worker claimed.
  ``fn(chunk, chunks, ctx)`` runs chunk ``chunk`` of ``chunks``: any ``chunks`` must
  do, each chunk its share of the whole.

NOTE (native claims): the claim word holds ``generation << 32 | chunks << 16 | next``.
A worker claims with a compare-and-swap that succeeds only while the word is still
that of the job it read, so a late worker can never take a chunk of the next job, and
it reads the job's ``fn``/``ctx`` only after its claim succeeded (the caller is then
waiting for that chunk, so they are stable). The caller claims with a fetch-add and
waits only for chunks a worker claimed (NOTE (claimed chunks) in
``runtime.cpu_threads``): a worker that gets no core never makes it wait. The futex
word is the generation (the claim word's high half): a worker sleeps only while no new
job was published (the kernel compares it), and the caller wakes only when the sleeper
count says someone sleeps (both sequentially consistent, so no wake-up is lost).
A second thread that dispatches while one job runs (two Python threads calling
programs) takes no part in the pool: it runs all its chunks itself (the ``busy`` word).

NOTE (back off): a split pays only when a worker is on a core when the job comes, and
stays on it through its chunk. On a loaded machine neither holds (measured at load
average 4.4 on the 2-core VM: the seed step 353-395 µs split against 340 µs whole), so
``tg_dispatch`` times each job it publishes (``llvm.readcyclecounter``): a job no worker
helped with, or whose helper finished more than half the caller's own time after the
caller, is bad; after a bad job the next ``2 ** streak - 1`` dispatches run alone
(``streak`` up to ``STREAK_CAP``; 0 turns the back-off off, for tests that must see
every split), and a good job lowers ``streak`` by one. The last
dispatch of a back-off wakes sleeping workers (they then spin), so the job after it
tests whether a core is free rather than how fast a sleeping worker wakes (a futex
wake-up on this VM takes tens of µs, as long as half a gemm block). Under
load the step then costs what it does on one thread (same run: 621 µs median for both,
27 of 3610 dispatches published); idle, every job is good and every one splits.
``JOBS``, ``BAD_JOBS``, ``ALONE``, ``HELPED`` and ``WAITED`` (ticks) count what happened.

Exit: an ``atexit`` hook makes the workers return (``NativePool.stop``) before the
interpreter frees the JIT code they run. Fork: the child has no workers;
``os.register_at_fork`` marks the state as having none (``ACTIVE`` 0), so its drivers
run every chunk on the calling thread.
Only x86-64 Linux has it (futex and ``pause``); elsewhere ``native_pool()`` is None and
programs keep the Python pool.
"""
from __future__ import annotations

import atexit
import ctypes
import functools
import os
import platform
import string
import sys
import threading
import time

import numpy as np

from . import cpu_threads
from .llvm_jit import JitModule, compile_llvm

# state words (int64); the claim word, the done count and the rest sit on their own
# cache lines, so a worker's done count does not bounce the line the caller claims on
CLAIM, FN, CTX, DONE, SLEEPERS, QUIT, BUSY, SPIN, SYSCALL, ACTIVE, STREAK, BACKOFF, \
    HELPED, ALONE, WAITED, JOBS, BAD_JOBS, STREAK_CAP = 0, 1, 2, 8, 16, 17, 18, 19, 20, 21, \
    22, 23, 24, 25, 26, 27, 28, 29
STATE_WORDS = 32
# the IR's pointer to each word: %claimp for CLAIM, ... (``_source``)
_WORDS = {"claim": CLAIM, "fn": FN, "ctx": CTX, "done": DONE, "sleepers": SLEEPERS,
          "quit": QUIT, "busy": BUSY, "spin": SPIN, "syscall": SYSCALL, "active": ACTIVE,
          "streak": STREAK, "backoff": BACKOFF, "helped": HELPED, "alone": ALONE,
          "waited": WAITED, "jobs": JOBS, "bad_jobs": BAD_JOBS, "streak_cap": STREAK_CAP}
# how long an idle worker spins after its last chunk before it sleeps: long enough that
# the next split step of a training step (tens to a few hundred µs away) finds it awake,
# short enough that an idle process costs no core
SPIN_MICROSECONDS = 300

_TEMPLATE = r"""
declare void @llvm.x86.sse2.pause()
declare i64 @llvm.readcyclecounter()


; claims and runs chunks of the job in ``claim`` while it has unclaimed ones (a worker)
define internal void @help(ptr %state) {
entry:
$help_words
  br label %read
read:
  %w = load atomic i64, ptr %claimp seq_cst, align 8
  %next = and i64 %w, 65535
  %chunks0 = lshr i64 %w, 16
  %chunks = and i64 %chunks0, 65535
  %left = icmp ult i64 %next, %chunks
  br i1 %left, label %claim, label %out
claim:
  %w1 = add i64 %w, 1
  %r = cmpxchg ptr %claimp, i64 %w, i64 %w1 seq_cst seq_cst
  %ok = extractvalue { i64, i1 } %r, 1
  br i1 %ok, label %run, label %read
run:
  %fn = load ptr, ptr %fnp
  %ctx = load ptr, ptr %ctxp
  call void %fn(i64 %next, i64 %chunks, ptr %ctx)
  %h = atomicrmw add ptr %helpedp, i64 1 monotonic
  %d = atomicrmw add ptr %donep, i64 1 seq_cst
  br label %read
out:
  ret void
}

define void @tg_worker(i64 %unused0, i64 %unused1, ptr %state) {
entry:
$tg_worker_words
  %genp = getelementptr i8, ptr %claimp, i64 4
  %first = load atomic i32, ptr %genp seq_cst, align 4
  %born = call i64 @llvm.readcyclecounter()
  br label %wait
wait:
  %seen = phi i32 [%first, %entry], [%seen, %spin], [%seen, %spinyield], [%seen, %slept],
                  [%gen, %work]
  %spins = phi i64 [0, %entry], [%spins1, %spin], [%spins1, %spinyield], [0, %slept],
                   [0, %work]
  %idle_since = phi i64 [%born, %entry], [%idle_since, %spin], [%idle_since, %spinyield],
                        [%woke, %slept], [%worked, %work]
  %quit = load atomic i64, ptr %quitp seq_cst, align 8
  %stop = icmp ne i64 %quit, 0
  br i1 %stop, label %exit, label %look
look:
  %gen = load atomic i32, ptr %genp seq_cst, align 4
  %new = icmp ne i32 %gen, %seen
  br i1 %new, label %work, label %idle
work:
  call void @help(ptr %state)
  %worked = call i64 @llvm.readcyclecounter()
  br label %wait
idle:
  %limit = load i64, ptr %spinp
  %now = call i64 @llvm.readcyclecounter()
  %idle_for = sub i64 %now, %idle_since
  %tired = icmp sge i64 %idle_for, %limit
  br i1 %tired, label %sleep, label %spin
spin:
  call void @llvm.x86.sse2.pause()
  %spins1 = add i64 %spins, 1
  ; every 512 pauses (~10 µs) a sched_yield: on a busy core whatever waits for it runs
  ; (the caller's own thread among them); on an idle one it returns at once
  %phase = and i64 %spins1, 511
  %yieldnow = icmp eq i64 %phase, 0
  br i1 %yieldnow, label %spinyield, label %wait
spinyield:
  %sysy = load ptr, ptr %syscallp
  %yy = call i64 (i64, ...) %sysy(i64 24)
  br label %wait
sleep:
  %s0 = atomicrmw add ptr %sleepersp, i64 1 seq_cst
  %sys = load ptr, ptr %syscallp
  %seen64 = zext i32 %seen to i64
  %z = call i64 (i64, ...) %sys(i64 202, ptr %genp, i64 128, i64 %seen64, ptr null)
  %s1 = atomicrmw sub ptr %sleepersp, i64 1 seq_cst
  br label %slept
slept:
  %woke = call i64 @llvm.readcyclecounter()
  br label %wait
exit:
  ret void
}

define void @tg_ticks(i64 %unused0, i64 %unused1, ptr %out) {
entry:
  %t = call i64 @llvm.readcyclecounter()
  store i64 %t, ptr %out
  ret void
}

; a futex wake of the workers when the sleeper count says one sleeps (read after the
; claim word's store, both sequentially consistent: NOTE (native claims))
define internal void @wake_sleepers(ptr %state) {
entry:
$wake_sleepers_words
  %genp = getelementptr i8, ptr %claimp, i64 4
  %sleepers = load atomic i64, ptr %sleepersp seq_cst, align 8
  %asleep = icmp sgt i64 %sleepers, 0
  br i1 %asleep, label %wake, label %done
wake:
  %sys = load ptr, ptr %syscallp
  %z = call i64 (i64, ...) %sys(i64 202, ptr %genp, i64 129, i64 2147483647)
  br label %done
done:
  ret void
}

define void @tg_dispatch(i64 %chunks, i64 %unused, ptr %state, ptr %fn, ptr %ctx) {
entry:
$tg_dispatch_words
  %active = load atomic i64, ptr %activep monotonic, align 8
  %none = icmp eq i64 %active, 0
  %one = icmp slt i64 %chunks, 2
  %single = or i1 %none, %one
  br i1 %single, label %alone, label %lock
lock:
  %b = cmpxchg ptr %busyp, i64 0, i64 1 seq_cst seq_cst
  %mine = extractvalue { i64, i1 } %b, 1
  br i1 %mine, label %check, label %alone
check:
  %backoff = load i64, ptr %backoffp
  %backing = icmp sgt i64 %backoff, 0
  br i1 %backing, label %skip, label %publish
skip:
  %backoff1 = sub i64 %backoff, 1
  store i64 %backoff1, ptr %backoffp
  %a = atomicrmw add ptr %alonep, i64 1 monotonic
  store atomic i64 0, ptr %busyp seq_cst, align 8
  ; the last dispatch of a back-off wakes sleeping workers, so the next job finds them
  ; spinning: it then tests whether a core is free, not how fast a sleeper wakes
  %last = icmp eq i64 %backoff1, 0
  br i1 %last, label %prewake, label %alone
prewake:
  call void @wake_sleepers(ptr %state)
  br label %alone
alone:
  ; NOTE (alone in one piece): the whole step as chunk 0 of 1, not its chunks in turn (a
  ; gemm cut in blocks packs the shared operand once per block)
  %any = icmp sgt i64 %chunks, 0
  br i1 %any, label %alone_run, label %done
alone_run:
  call void %fn(i64 0, i64 1, ptr %ctx)
  br label %done
publish:
  store ptr %fn, ptr %fnp
  store ptr %ctx, ptr %ctxp
  store atomic i64 0, ptr %donep seq_cst, align 8
  %old = load atomic i64, ptr %claimp seq_cst, align 8
  %oldgen = lshr i64 %old, 32
  %gen = add i64 %oldgen, 1
  %gen32 = and i64 %gen, 4294967295
  %genhi = shl i64 %gen32, 32
  %n16 = shl i64 %chunks, 16
  %w = or i64 %genhi, %n16
  store atomic i64 %w, ptr %claimp seq_cst, align 8
  call void @wake_sleepers(ptr %state)
  br label %claim
claim:
  %t0 = call i64 @llvm.readcyclecounter()
  br label %claiming
claiming:
  %own = phi i64 [0, %claim], [%own1, %run]
  %c = atomicrmw add ptr %claimp, i64 1 seq_cst
  %next = and i64 %c, 65535
  %left = icmp ult i64 %next, %chunks
  br i1 %left, label %run, label %wait
run:
  call void %fn(i64 %next, i64 %chunks, ptr %ctx)
  %own1 = add i64 %own, 1
  br label %claiming
wait:
  %theirs = sub i64 %chunks, %own
  %t1 = call i64 @llvm.readcyclecounter()
  br label %poll
poll:
  %spins = phi i64 [0, %wait], [%spins1, %pause], [%spins, %yield]
  %d = load atomic i64, ptr %donep seq_cst, align 8
  %finished = icmp sge i64 %d, %theirs
  br i1 %finished, label %unlock, label %patience
patience:
  %long = icmp sge i64 %spins, 1024
  br i1 %long, label %yield, label %pause
pause:
  call void @llvm.x86.sse2.pause()
  %spins1 = add i64 %spins, 1
  br label %poll
yield:
  %sys2 = load ptr, ptr %syscallp
  %y = call i64 (i64, ...) %sys2(i64 24)
  br label %poll
unlock:
  ; NOTE (back off): a job no worker helped with, or one whose helper finished more
  ; than half the caller's own time after it, would have run as fast alone
  %t2 = call i64 @llvm.readcyclecounter()
  %owntime = sub i64 %t1, %t0
  %waited = sub i64 %t2, %t1
  %waited2 = shl i64 %waited, 1
  %late = icmp sgt i64 %waited2, %owntime
  %unhelped = icmp eq i64 %theirs, 0
  %bad = or i1 %late, %unhelped
  %streak = load i64, ptr %streakp
  %streak1 = add i64 %streak, 1
  %cap = load i64, ptr %streak_capp
  %capped = icmp sgt i64 %streak1, %cap
  %streak2 = select i1 %capped, i64 %cap, i64 %streak1
  %streakdown = sub i64 %streak, 1
  %wasbad = icmp sgt i64 %streak, 0
  %eased = select i1 %wasbad, i64 %streakdown, i64 0
  %newstreak = select i1 %bad, i64 %streak2, i64 %eased
  store i64 %newstreak, ptr %streakp
  %waitedsum = load i64, ptr %waitedp
  %waitedsum1 = add i64 %waitedsum, %waited
  store i64 %waitedsum1, ptr %waitedp
  %jobs = load i64, ptr %jobsp
  %jobs1 = add i64 %jobs, 1
  store i64 %jobs1, ptr %jobsp
  %bads = load i64, ptr %bad_jobsp
  %badinc = zext i1 %bad to i64
  %bads1 = add i64 %bads, %badinc
  store i64 %bads1, ptr %bad_jobsp
  %pause_for0 = shl i64 1, %newstreak
  %pause_for = sub i64 %pause_for0, 1
  %skipnext = select i1 %bad, i64 %pause_for, i64 0
  store i64 %skipnext, ptr %backoffp
  store atomic i64 0, ptr %busyp seq_cst, align 8
  br label %done
done:
  ret void
}
"""


def _source() -> str:
    """The pool's IR: each function's ``$<name>_words`` becomes the pointers to the
    state words it uses, from ``_WORDS`` (one table for Python and the IR)."""
    def pointers(*names: str) -> str:
        return "\n".join(f"  %{n}p = getelementptr i64, ptr %state, i64 {_WORDS[n]}"
                          for n in names)
    return string.Template(_TEMPLATE).substitute(
        help_words=pointers("claim", "fn", "ctx", "done", "helped"),
        tg_worker_words=pointers("claim", "quit", "sleepers", "spin", "syscall"),
        wake_sleepers_words=pointers("claim", "sleepers", "syscall"),
        tg_dispatch_words=pointers(*(n for n in _WORDS if n not in ("quit", "spin"))))


POOL_SOURCE = _source()
MAX_CHUNKS = 32767   # the claim word's 16-bit fields (a fetch-add past the end stays inside)


class NativePool:
    """The state array, the compiled pool functions and the worker threads."""

    def __init__(self, module: JitModule, workers: int) -> None:
        self.module = module
        self.state = np.zeros(STATE_WORDS, np.int64)
        self.address = self.state.ctypes.data
        self.dispatch = module.engine.address(module.key, "tg_dispatch")
        syscall = ctypes.cast(ctypes.CDLL(None).syscall, ctypes.c_void_p).value
        if not syscall:
            raise RuntimeError("native pool: libc's syscall has address 0")
        self.state[SYSCALL] = syscall
        self.ticks_per_us = _ticks_per_microsecond(module)
        self.state[SPIN] = int(self.ticks_per_us * SPIN_MICROSECONDS)
        # NOTE (short back-off): a cap of 8 (up to 255 dispatches alone) cost a program
        # that runs between other BLAS users 2x: NumPy's OpenBLAS workers still spinning
        # after its own matmul make the next job bad, and the streak then ran whole.
        # Measured (load 0.6, the threads benchmark's 4 x (1024x256 @ 256x256, tanh)
        # interleaved 3:3 with NumPy's chain, median ms of 90 calls, two rounds): cap 8
        # 6.49 / 5.78, cap 3 3.89 / 6.01, cap 1 3.34 / 3.48, cap 0 3.31 / 3.18; the Python
        # pool 3.92. A cap of 1 keeps one dispatch alone after a bad job.
        self.state[STREAK_CAP] = 1
        # the CpuKernel holds the module, so the code the workers run lives as long as
        # the pool; ``stop`` (at exit) lets them leave it before the interpreter frees it
        self._worker = module.kernel("tg_worker")
        self.threads: list[threading.Thread] = []
        self.set_active(workers)

    @property
    def helped(self) -> int:
        """Chunks the workers ran so far (tests: proof that they take part)."""
        return int(self.state[HELPED])

    def set_active(self, helpers: int) -> None:
        """Let dispatches use ``helpers`` workers (0: run alone), starting more if needed."""
        while len(self.threads) < helpers:
            t = threading.Thread(target=self._worker.cfunc, args=(0, 0, self.address),
                                 name=f"tg-native_{len(self.threads)}", daemon=True)
            t.start()
            self.threads.append(t)
        self.state[ACTIVE] = max(0, min(helpers, len(self.threads)))

    def stop(self, timeout: float = 0.5) -> None:
        """Make every worker return from the native loop: a new, empty job (a sleeping
        worker's futex wait then returns at once, even one not asleep yet) and QUIT."""
        self.state[ACTIVE] = 0     # new dispatches run alone and leave the claim word
        deadline = time.monotonic() + timeout
        while self.state[BUSY] and time.monotonic() < deadline:
            time.sleep(1e-4)       # a job another thread runs now finishes first
        self.state[QUIT] = 1
        self.state[CLAIM] = ((int(self.state[CLAIM]) >> 32) + 1 & 0xFFFFFFFF) << 32
        ctypes.CDLL(None).syscall(ctypes.c_long(202), ctypes.c_void_p(self.address + 4),
                                  ctypes.c_long(129), ctypes.c_long(1 << 30))   # futex wake
        for t in self.threads:
            t.join(timeout)


def _ticks_per_microsecond(module: JitModule) -> float:
    """The cycle counter's rate (``llvm.readcyclecounter``: the TSC), against
    ``time.perf_counter`` over 0.1 ms, the median of three: the two clocks are read side
    by side (~1 us apart), so 0.1 ms gives the rate to ~1%, plenty for a spin limit,
    in 0.3 ms of the pool's start instead of 0.9 (0.3 ms each)."""
    ticks = module.kernel("tg_ticks").cfunc
    out = np.zeros(1, np.int64)
    rates = []
    for _ in range(3):
        ticks(0, 0, out.ctypes.data)
        t0, start = int(out[0]), time.perf_counter()
        while time.perf_counter() - start < 1e-4:
            pass
        ticks(0, 0, out.ctypes.data)
        elapsed = time.perf_counter() - start
        rates.append((int(out[0]) - t0) / (elapsed * 1e6))
    return sorted(rates)[1]


_pool: NativePool | None = None
_pool_lock = threading.Lock()
# False turns the native pool off (the benchmarks' and tests' A/B): new programs split
# through the Python pool again
ENABLED = os.environ.get("TRACEGRAD_NATIVE_POOL", "1") != "0"


@functools.lru_cache(maxsize=1)
def supported() -> bool:
    """x86-64 Linux: where the pool's futex and ``pause`` exist."""
    return sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")


def native_pool() -> NativePool | None:
    """The process's pool (started on first use), or None where it is off or unsupported,
    or when there is a single thread to use."""
    global _pool
    if not ENABLED or not supported() or cpu_threads.n_threads() < 2:
        return None
    pool = _pool
    if pool is None:
        with _pool_lock:
            if _pool is None:
                # at O0 (NOTE (glue at O0), llvm_jit): 8 ms to compile instead of 35 at
                # O3, paid by the first split program of a process on a cold disk cache
                # (the seed step's cold compile: 98 -> 189 ms with O3). Its loops wait on
                # atomics and pause, so the level did not show in the seed step
                # (min/median of 30x100 steps, two alternations: O0 252/298, 280/307 us;
                # O3 395/409, 275/319 us, at load 0.6)
                _pool = NativePool(compile_llvm(POOL_SOURCE, ["tg_worker"], opt_level=0),
                                   max(1, cpu_threads.n_threads() - 1))
            pool = _pool
    return pool


def _threads_changed(n: int) -> None:
    if _pool is not None:
        _pool.set_active(n - 1)


def _after_fork_in_child() -> None:
    # NOTE: the child has none of the workers; the drivers still hold this state's
    # address, so mark it as having none (and no job running) rather than dropping it
    if _pool is not None:
        _pool.state[ACTIVE] = 0
        _pool.state[BUSY] = 0
        _pool.state[SLEEPERS] = 0
        _pool.threads = []


def _stop_at_exit() -> None:
    if _pool is not None:
        _pool.stop()


cpu_threads.on_set_n_threads.append(_threads_changed)
atexit.register(_stop_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
