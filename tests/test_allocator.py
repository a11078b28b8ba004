"""runtime.allocator: pooled big blocks, returned when the last view dies."""
import gc
import sys
import threading
from pathlib import Path

import numpy as np

try:
    from tracegrad.runtime import allocator
except ImportError:  # package not installed yet: import the folders directly
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tracegrad.runtime import allocator

MB = 1 << 20


def stats():
    gc.collect()
    return allocator.memory_stats()


def test_small_requests_bypass_the_pool():
    before = stats()
    a = allocator.empty((10, 10), np.float64)
    assert a.shape == (10, 10) and a.dtype == np.float64
    assert stats()["misses"] == before["misses"] and stats()["hits"] == before["hits"]


def test_shape_dtype_alignment_and_values():
    a = allocator.empty((3, MB), np.float32)
    assert a.shape == (3, MB) and a.dtype == np.float32 and a.flags.c_contiguous
    assert a.flags.writeable and a.ctypes.data % allocator.HUGE_PAGE == 0
    a[...] = 7
    assert float(a.sum()) == 7.0 * 3 * MB
    b = allocator.empty(100_000, "int16")  # 200 KB: power-of-two bucket
    assert b.ctypes.data % 4096 == 0 and b.nbytes == 200_000


def test_block_is_reused_after_last_view_dies():
    a = allocator.empty(4 * MB, np.uint8)
    addr = a.ctypes.data
    view = a[::2].reshape(2, -1).T  # views of views still hold the block
    del a
    s = stats()
    view[...] = 1
    assert s["allocated_bytes"] >= 4 * MB
    del view
    s = stats()
    assert s["pooled_bytes"] >= 4 * MB
    hits = s["hits"]
    c = allocator.empty(4 * MB - 100, np.uint8)  # same bucket
    assert c.ctypes.data == addr and stats()["hits"] == hits + 1


def test_stats_peak_and_empty_cache():
    allocator.empty_cache()
    base = stats()["allocated_bytes"]
    allocator.reset_peak_stats()
    a = allocator.empty(8 * MB, np.uint8)
    b = allocator.empty(8 * MB, np.uint8)
    assert stats()["allocated_bytes"] == base + 16 * MB
    del a, b
    s = stats()
    assert s["allocated_bytes"] == base and s["peak_allocated_bytes"] == base + 16 * MB
    assert s["pooled_bytes"] == 16 * MB
    allocator.reset_peak_stats()
    assert stats()["peak_allocated_bytes"] == base
    allocator.empty_cache()
    assert stats()["pooled_bytes"] == 0


def test_bucket_sizes():
    assert allocator.bucket_bytes(65 * 1024) == 128 * 1024
    assert allocator.bucket_bytes(2 * MB) == 2 * MB
    assert allocator.bucket_bytes(2 * MB + 1) == 4 * MB
    assert allocator.bucket_bytes(5 * MB) == 6 * MB


def test_threads_share_the_pool_safely():
    base = stats()["allocated_bytes"]
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        for _ in range(200):
            n = int(rng.integers(70_000, 3 * MB))
            a = allocator.empty(n, np.uint8)
            a[0], a[-1] = seed, seed
            if a[0] != seed or a[-1] != seed:
                errors.append(seed)
            del a

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and stats()["allocated_bytes"] == base
