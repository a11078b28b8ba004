"""LLVM's first use in a process, started on a thread when the first compile begins.

NOTE (LLVM's first use): the first module LLVM emits in a process costs ~8 ms more than
the next (the X86 target's tables and code generator built on first use, libLLVM's code
faulted in), and a split program's first call in a process also compiles the native
pool's module and the lone-call blocks (``runtime.native_pool``, ``runtime.lone_call``;
O0, read from the disk cache when there). Together, with a fresh disk cache: softmax
4096x1024 as the process's first compile FIGURES. ``start`` runs that work on the helper
thread (NOTE (one helper thread)) at the first compiled call's cache miss, while the calling thread traces,
plans and renders (Python, ~6-8 ms on a first compile); the call's own LLVM work then
finds the target warm and the two modules in memory (``llvm_jit``'s build lock makes it
wait for what is still running). Only work the call needs anyway: the first try of
this (llvm_pipeline's NOTE (what did not pay)) compiled a throwaway kernel, extra work
that lost when the two shared the cores.
"""
from __future__ import annotations

import os
import threading
from typing import Iterable

from . import cpu_threads, helper_thread, lone_call, native_pool

# False: the first compile does it all in line, as before (the benchmarks' A/B)
ENABLED = os.environ.get("TRACEGRAD_LLVM_WARMUP", "1") != "0"
_started = False
_lock = threading.Lock()


def start(sizes: Iterable[int]) -> helper_thread.Task | None:
    """Start the warm-up once per process, for a call whose tensor arguments have
    ``sizes`` elements (None: done, disabled, or none big enough to split)."""
    global _started
    if not ENABLED or _started or not native_pool.wanted() or not any(
            n >= cpu_threads.PARALLEL_MIN_WORK for n in sizes):
        return None
    with _lock:
        if _started:
            return None
        _started = True
    return helper_thread.submit(_warm)


def _warm() -> None:
    try:
        native_pool.module()
        lone_call.blocks_address()
    except Exception:  # noqa: BLE001 - the call builds them itself, and reports a failure
        pass


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()   # NOTE: a lock held at fork time stays held in the child


os.register_at_fork(after_in_child=_after_fork_in_child)
