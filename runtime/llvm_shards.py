"""One batch of kernels compiled by LLVM on two threads at once (NOTE (parallel batches)).

llvmlite wraps every call into LLVM in one process-wide lock, so two Python threads never
run LLVM at the same time through it. LLVM itself allows it for modules in different
contexts compiled through different target machines, and its two long calls (running a
module's pass pipeline, emitting its object) make no other use of llvmlite's state: those
two are called here without the lock (``unlocked``), the rest through llvmlite as usual.

>>> [list(s) for s in split({"a": "x\\n" * 300, "b": "x\\n" * 100, "c": "x\\n" * 250}, 2)]
[['a'], ['b', 'c']]
"""
from __future__ import annotations

import threading
from ctypes import string_at
from typing import Callable, Sequence, TypeVar

import llvmlite.binding as llvm
from llvmlite.binding import ffi

# NOTE (parallel batches): a program's kernels that miss every cache compile as one LLVM
# module (llvm_jit's NOTE (one module per batch)); a batch of at least ``MIN_KERNELS``
# kernels and ``MIN_LINES`` lines of IR is split into ``SHARDS`` modules of about the same
# number of lines, each parsed into its own LLVM context, optimised and emitted on its own
# thread with its own target machine, and linked into the shared engine by the caller.
# Each kernel is optimised on its own either way, so the code is the same (a test checks
# the instructions). A module costs LLVM ~3 ms more in fixed work, so small batches stay
# whole. The split depends only on the batch (never on the machine's core count), so a
# later process finds each shard's disk entry.
SHARDS = 2
MIN_KERNELS = 3
MIN_LINES = 150

T = TypeVar("T")


def split(pending: dict[str, str], shards: int | None = None) -> list[dict[str, str]]:
    """``pending`` (key -> LLVM IR) as up to ``shards`` (default ``SHARDS``) batches of
    about equal line counts: the largest source first, each to the lightest shard; every
    shard keeps the batch's order. A small batch stays whole (a list of one)."""
    shards = SHARDS if shards is None else shards   # read per call: tests set SHARDS
    lines = {key: source.count("\n") + 1 for key, source in pending.items()}
    if shards < 2 or len(pending) < max(MIN_KERNELS, shards) or sum(lines.values()) < MIN_LINES:
        return [pending]
    load = [0] * shards
    home: dict[str, int] = {}
    for key in sorted(pending, key=lambda k: -lines[k]):   # a stable sort: ties keep order
        k = load.index(min(load))
        home[key] = k
        load[k] += lines[key]
    return [{key: src for key, src in pending.items() if home[key] == k} for k in range(shards)
            if k in home.values()]


def run_all(work: Callable[[int, T], object], items: Sequence[T]) -> list:
    """``[work(k, item) for k, item in enumerate(items)]``, item 0 on the calling thread and
    each other on a thread of its own; the first exception raised is raised here, after
    every thread has finished (none is left running LLVM)."""
    if not items:
        return []
    results: list = [None] * len(items)
    errors: list[BaseException | None] = [None] * len(items)

    def one(k: int) -> None:
        try:
            results[k] = work(k, items[k])
        except BaseException as e:  # noqa: BLE001 - re-raised by the caller's thread
            errors[k] = e
    threads = [threading.Thread(target=one, args=(k,), name=f"tracegrad-llvm-{k}", daemon=True)
               for k in range(1, len(items))]
    for t in threads:
        t.start()
    try:
        one(0)
    finally:
        for t in threads:
            t.join()
    for e in errors:
        if e is not None:
            raise e
    return results


def _raw(name: str):
    """llvmlite's ctypes function ``name`` without the wrapper that takes its lock."""
    fn = getattr(ffi.lib, name)
    return getattr(fn, "_cfn", fn)   # another llvmlite: the locked call, still correct


def run_passes(pb: llvm.PassBuilder, mod: llvm.ModuleRef, unlocked: bool,
               mpm: llvm.ModulePassManager | None = None) -> None:
    """Run ``pb``'s module pipeline (or ``mpm``, built on ``pb``) over ``mod`` (see the
    module doc for ``unlocked``)."""
    mpm = pb.getModulePassManager() if mpm is None else mpm
    if unlocked:
        _raw("LLVMPY_RunNewModulePassManager")(mpm, mod, pb)
    else:
        mpm.run(mod, pb)


def emit_object(tm: llvm.TargetMachine, mod: llvm.ModuleRef, unlocked: bool) -> bytes:
    """``tm.emit_object(mod)``; ``unlocked``: the code generation runs without the lock."""
    if not unlocked:
        return tm.emit_object(mod)
    with ffi.OutputString() as err:
        buf = _raw("LLVMPY_TargetMachineEmitToMemory")(tm, mod, 1, err)
        if not buf:
            raise RuntimeError(str(err))
    try:
        return string_at(ffi.lib.LLVMPY_GetBufferStart(buf), ffi.lib.LLVMPY_GetBufferSize(buf))
    finally:
        ffi.lib.LLVMPY_DisposeMemoryBuffer(buf)
