"""Caching allocator for CPU tensor storage.

Fresh memory is expensive the first time it is written: the kernel faults in one
4 KiB page at a time (DESIGN.md: ~1.9 µs each; 64 MiB empty+fill measured 65-75 ms
on the 2-core AVX2 VM, against 4.3 ms for a reused pooled block). So big buffers
come from a pool of reused blocks, 2 MiB aligned, private mappings (NOTE (private
blocks)). DESIGN.md's ~0.3 µs per 4 KiB of first touch with ``madvise(MADV_HUGEPAGE)``
did not hold here: the advice was given on shared blocks, which never got huge pages
(AnonHugePages stayed 0), and on private blocks its first touch varies 40-fold.

Requests below ``SMALL_BYTES`` just use ``np.empty`` (malloc is fast there and the
pages are usually warm). Bigger ones round up to a bucket (a power of two below
2 MiB, a multiple of 2 MiB above) and take a free block of that bucket or map a
new one. Each handed-out block is wrapped in one "block array" (a uint8 ndarray
over the mmap) that every returned view keeps alive through ``.base``; NumPy
stops collapsing base chains at an array whose base is not an ndarray, so any
later view of a view still points at the block array. When the block array dies,
a weakref callback gives the block back to the pool.

Example:
    >>> a = empty((1024, 1024), np.float32)
    >>> a.shape, a.dtype, memory_stats()["allocated_bytes"] >= a.nbytes
    ((1024, 1024), dtype('float32'), True)
"""
from __future__ import annotations

import functools
import math
import mmap
import os
import threading
import weakref

import numpy as np

SMALL_BYTES = 64 << 10
HUGE_PAGE = 2 << 20
# Free blocks beyond this many bytes are unmapped instead of pooled.
MAX_POOLED_BYTES = 8 << 30

_lock = threading.Lock()
_free: dict[int, list["_Block"]] = {}
# The weakrefs must outlive their arrays for the callback to run; keyed by id because
# a weakref hashes as its (ndarray, unhashable) referent.
_live_refs: dict[int, weakref.ref] = {}
_stats = {"allocated_bytes": 0, "peak_allocated_bytes": 0, "pooled_bytes": 0,
          "hits": 0, "misses": 0, "mapped_bytes": 0}


class _Block:
    """One anonymous mapping; ``offset`` aligns its usable start to 2 MiB when big."""

    __slots__ = ("mm", "offset", "size")

    def __init__(self, size: int) -> None:
        pad = HUGE_PAGE if size >= HUGE_PAGE else 0
        # NOTE (private blocks): MAP_PRIVATE, as malloc's memory is. Python's default for an
        # anonymous mmap is MAP_SHARED, i.e. shared memory (shmem): a forked child (a
        # DataLoader worker) then writes the parent's pages through every pooled block it
        # inherits, and shmem faults slower: a fresh 64 MiB block took 84-89 ms to touch
        # shared, 29-31 ms private (2026-12-02, this VM, one process). Huge pages are not
        # asked for: shmem never got them (shmem_enabled is "never" here), and on private
        # blocks MADV_HUGEPAGE made the first 64 MiB of a fresh process take 6-250 ms of
        # wall time (6-160 ms CPU) against 69-76 ms (32-43 ms CPU) without it, six
        # processes each: the host backs the huge pages on first touch, at its own pace.
        self.mm = mmap.mmap(-1, size + pad, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.size = size
        addr = np.frombuffer(self.mm, np.uint8, count=1).ctypes.data
        self.offset = (-addr) % HUGE_PAGE if pad else 0


def bucket_bytes(nbytes: int) -> int:
    """Size of the block that serves a request of ``nbytes`` (>= SMALL_BYTES)."""
    if nbytes < HUGE_PAGE:
        return 1 << max(nbytes - 1, 1).bit_length()
    return -(-nbytes // HUGE_PAGE) * HUGE_PAGE


def empty(shape: int | tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array, backed by a pooled block when big."""
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    # NOTE: math.prod, not np.prod: ~6 µs of a ~12 µs pooled request went to np.prod
    nbytes = dtype.itemsize * math.prod(int(n) for n in shape)
    if nbytes < SMALL_BYTES:
        return np.empty(shape, dtype)
    size = bucket_bytes(nbytes)
    with _lock:
        blocks = _free.get(size)
        if blocks:
            block = blocks.pop()
            _stats["hits"] += 1
            _stats["pooled_bytes"] -= size
        else:
            block = None
            _stats["misses"] += 1
        _stats["allocated_bytes"] += size
        _stats["peak_allocated_bytes"] = max(_stats["peak_allocated_bytes"],
                                             _stats["allocated_bytes"])
    if block is None:
        try:
            block = _Block(size)
        except OSError:
            empty_cache()  # out of address space or memory: drop the pool and retry once
            block = _Block(size)
        with _lock:
            _stats["mapped_bytes"] += size
    owner = np.frombuffer(block.mm, np.uint8, count=size, offset=block.offset)
    ref = weakref.ref(owner, functools.partial(_release, block=block))
    with _lock:
        _live_refs[id(ref)] = ref
    return owner[:nbytes].view(dtype).reshape(shape)


def _release(ref: weakref.ref, block: _Block) -> None:
    with _lock:
        _live_refs.pop(id(ref), None)
        _stats["allocated_bytes"] -= block.size
        if _stats["pooled_bytes"] + block.size <= MAX_POOLED_BYTES:
            _free.setdefault(block.size, []).append(block)
            _stats["pooled_bytes"] += block.size
        else:
            _stats["mapped_bytes"] -= block.size  # unmapped when `block` is dropped


def memory_stats() -> dict[str, int]:
    """Byte and hit counters of the pool (small np.empty requests are not counted).

    ``allocated_bytes``: bytes of blocks in use; ``pooled_bytes``: free blocks kept
    for reuse; ``mapped_bytes``: both; ``hits``/``misses``: pool lookups.
    """
    with _lock:
        return dict(_stats)


def empty_cache() -> None:
    """Unmap every free pooled block (blocks in use are untouched)."""
    with _lock:
        freed = sum(b.size for blocks in _free.values() for b in blocks)
        _free.clear()
        _stats["pooled_bytes"] = 0
        _stats["mapped_bytes"] -= freed


def reset_peak_stats() -> None:
    """Restart ``peak_allocated_bytes`` from the current allocation."""
    with _lock:
        _stats["peak_allocated_bytes"] = _stats["allocated_bytes"]


def _reset_lock_after_fork() -> None:
    # NOTE: the child has only the forking thread; a lock another thread held at fork
    # time would stay held forever there.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_lock_after_fork)
