"""One long-lived thread for a compile's side work: faulting in the first call's memory
(``runtime.warm_pages``) and writing its cache entries (``runtime.disk_cache``).

NOTE (one helper thread): each of those ran on a thread started for it, and
``Thread.start`` waits until the new thread runs: 0.8 ms at best on the 2-core VM, a
median of 5 ms at load average 6 (50 starts, one process), paid on every cold compile
before its first call. A task handed to this thread costs a queue put (~17 us). It
starts with the first task (a process that never compiles starts none) and runs the
tasks in order, one at a time: the machine has two cores, and the calling thread uses
one.

NOTE (LLVM's first use, what did not pay): in a fresh process with a fresh disk cache
the first compile also builds the native pool's and the lone-call blocks' O0 modules
(``runtime.native_pool``, ``runtime.lone_call``), and whichever module LLVM emits first
pays ~8 ms of first use (softmax 4096x1024 first in a process: ~33 ms cold at load 0.6,
~24 with those two modules built before it, ~22 after another compile; the pool's module
alone 10 ms, the blocks' 2 ms after it; the pool's 490 minor faults, 8.2 ms CPU). A
first process after libllvmlite.so (179 MB) left the page cache pays far more (92.7 ms,
45.8 of them in LLVM's passes; the next processes 35-43). Building those two on this
thread from the first call's cache miss, while the call traces and renders, did not pay:
the call's kernel then waits for the build lock, the helper for the GIL while the call
renders, and the blocks' module behind the kernel's (softmax fresh-process cold, 10
interleaved processes each, load 3.7-6: median 67.7 / 60.2 ms with / without, min 42.6 /
41.7; pool only: 119 / 101, min 80 / 59). Started at ``compile(...)`` decoration instead
it would leave the benchmark's timed window, not the process.

>>> seen = []
>>> submit(seen.append, "ran").join()
True
>>> seen
['ran']
"""
from __future__ import annotations

import atexit
import os
import queue
import threading
from typing import Any, Callable


class Task:
    """A submitted call; ``join()`` waits until it has run (or raised: ignored)."""

    __slots__ = ("fn", "args", "done")

    def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
        self.fn = fn
        self.args = args
        self.done = threading.Event()

    def join(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)


EXIT_WAIT_SECONDS = 30.0
_queue: "queue.SimpleQueue[Task]" = queue.SimpleQueue()
_thread: threading.Thread | None = None
_lock = threading.Lock()


def submit(fn: Callable[..., Any], *args: Any) -> Task:
    """Run ``fn(*args)`` on the helper thread, after the tasks before it."""
    global _thread
    task = Task(fn, args)
    if _thread is None:
        with _lock:
            if _thread is None:
                _thread = threading.Thread(target=_serve, name="tracegrad-helper",
                                           daemon=True)
                _thread.start()
    _queue.put(task)
    return task


def on_helper() -> bool:
    """True on the helper thread itself (where joining a later task would never end)."""
    return threading.current_thread() is _thread


def _serve() -> None:
    while True:
        task = _queue.get()
        try:
            task.fn(*task.args)
        except BaseException:  # noqa: BLE001 - a task's failure is its own; the next runs
            pass
        finally:
            task.done.set()


def _finish_at_exit() -> None:
    # NOTE: a task still in LLVM while the interpreter tears down could crash the exit,
    # and a cache write after the last flush would be lost: the tasks end first
    if _thread is not None and _thread.is_alive():
        submit(lambda: None).join(EXIT_WAIT_SECONDS)


def _after_fork_in_child() -> None:
    # NOTE: the child has no helper thread; its first task starts one. Tasks the parent
    # queued are the parent's (its cache writes)
    global _queue, _thread, _lock
    _queue, _thread, _lock = queue.SimpleQueue(), None, threading.Lock()


atexit.register(_finish_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
