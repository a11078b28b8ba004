"""Caching allocator for device memory (as PyTorch's): freed blocks are kept for reuse.

A driver allocation costs tens of microseconds and synchronizes the device; a training
step frees and allocates the same sizes every iteration. So a request rounds up to a
bucket (a multiple of 512 bytes below 1 MiB, of 2 MiB above) and takes a cached block of
that bucket, or allocates a new one from the driver. A block goes back to the cache when
its last ``DeviceBlock`` owner dies. When the driver is out of memory the cache is
emptied and the allocation retried once; a second failure raises ``OutOfMemoryError``
naming the request and what the allocator holds.

>>> round_size(1), round_size(513), round_size(3 << 20)
(512, 1024, 4194304)
"""
from __future__ import annotations

import threading

from .cuda_driver import Driver, DriverOutOfMemory

_SMALL = 1 << 20
_SMALL_ROUND = 512
_LARGE_ROUND = 2 << 20


class OutOfMemoryError(RuntimeError):
    """The device has no room for an allocation, even after emptying the cache."""


def round_size(nbytes: int) -> int:
    """Bytes of the bucket that serves a request of ``nbytes``."""
    step = _SMALL_ROUND if nbytes < _SMALL else _LARGE_ROUND
    return max(-(-nbytes // step) * step, step)


def format_bytes(n: int) -> str:
    """``"1.50 MiB"``-style text, as PyTorch prints sizes in its memory errors."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} bytes"


class DeviceBlock:
    """One allocation handed out; returns itself to the cache when garbage-collected."""

    __slots__ = ("ptr", "size", "_allocator", "__weakref__")

    def __init__(self, ptr: int, size: int, allocator: "CachingAllocator"):
        self.ptr, self.size = ptr, size
        self._allocator: CachingAllocator | None = allocator

    def __del__(self) -> None:
        allocator = self._allocator
        if allocator is not None:
            self._allocator = None
            allocator.release(self.ptr, self.size)


class CachingAllocator:
    """Device memory through ``driver``, with freed blocks cached per bucket."""

    def __init__(self, driver: Driver):
        self.driver = driver
        # re-entrant: a garbage collection inside a locked stretch (empty_cache's new dict)
        # can free a DeviceBlock in a reference cycle, whose __del__ calls release() in the
        # same thread; with a plain Lock the full test suite hung there (teardown of
        # tests/test_cuda_runtime.py, found when other changes moved the GC's timing)
        self._lock = threading.RLock()
        self._free: dict[int, list[int]] = {}
        self.closed = False
        self._stats = {"allocated_bytes": 0, "reserved_bytes": 0, "peak_allocated_bytes": 0,
                       "cached_bytes": 0, "num_allocs": 0, "num_cache_hits": 0,
                       "num_alloc_retries": 0, "num_ooms": 0}

    def allocate(self, nbytes: int) -> DeviceBlock:
        """A block of at least ``nbytes`` (uninitialised)."""
        size = round_size(nbytes)
        stats = self._stats
        with self._lock:
            blocks = self._free.get(size)
            ptr = blocks.pop() if blocks else None
            if ptr is not None:
                stats["cached_bytes"] -= size
                stats["num_cache_hits"] += 1
        if ptr is None:
            ptr = self._driver_alloc(nbytes, size)
        with self._lock:
            stats["num_allocs"] += 1
            stats["allocated_bytes"] += size
            stats["peak_allocated_bytes"] = max(stats["peak_allocated_bytes"],
                                                stats["allocated_bytes"])
        return DeviceBlock(ptr, size, self)

    def _driver_alloc(self, nbytes: int, size: int) -> int:
        try:
            ptr = self.driver.mem_alloc(size)
        except DriverOutOfMemory:
            with self._lock:
                self._stats["num_alloc_retries"] += 1
            self.empty_cache()
            try:
                ptr = self.driver.mem_alloc(size)
            except DriverOutOfMemory:
                with self._lock:
                    self._stats["num_ooms"] += 1
                    held = self._stats["allocated_bytes"]
                raise OutOfMemoryError(
                    f"CUDA out of memory. Tried to allocate {format_bytes(nbytes)} "
                    f"(a block of {format_bytes(size)}). The device has a total capacity of "
                    f"{format_bytes(self.driver.total_memory())}; tracegrad's allocator holds "
                    f"{format_bytes(held)} allocated in live tensors and 0 bytes cached "
                    f"(the cache was emptied before this retry).") from None
        with self._lock:
            self._stats["reserved_bytes"] += size
        return ptr

    def release(self, ptr: int, size: int) -> None:
        """Give a block back to the cache (``DeviceBlock.__del__`` calls this)."""
        with self._lock:
            if self.closed:
                return
            self._free.setdefault(size, []).append(ptr)
            self._stats["allocated_bytes"] -= size
            self._stats["cached_bytes"] += size

    def empty_cache(self) -> None:
        """Return every cached block to the driver (blocks in use stay)."""
        with self._lock:
            free, self._free = self._free, {}
            freed = sum(size * len(ptrs) for size, ptrs in free.items())
            self._stats["cached_bytes"] -= freed
            self._stats["reserved_bytes"] -= freed
        for ptrs in free.values():
            for ptr in ptrs:
                self.driver.mem_free(ptr)

    def memory_stats(self) -> dict[str, int]:
        """``allocated_bytes`` (in live blocks), ``cached_bytes`` (freed, kept),
        ``reserved_bytes`` (both: what the driver gave), peak and counters."""
        with self._lock:
            return dict(self._stats)

    def reset_peak_stats(self) -> None:
        with self._lock:
            self._stats["peak_allocated_bytes"] = self._stats["allocated_bytes"]

    def close(self) -> None:
        """Free the cache; blocks still alive are dropped when their owners die."""
        self.empty_cache()
        with self._lock:
            self.closed = True
