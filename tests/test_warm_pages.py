"""NOTE (warm results), runtime.warm_pages: a cold compile faults in its first call's
result and temp blocks on the helper thread, so that call maps no fresh memory; the thread
is done before the call, and results still equal eager mode's."""
import numpy as np
import pytest

import tracegrad
from tracegrad.nn import functional as F
from tracegrad.compiler import entry as entry_module
from tracegrad.runtime import allocator, cpu_program, llvm_jit, warm_pages


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    llvm_jit.clear_memory_cache()
    cpu_program._RENDERED.clear()
    allocator.empty_cache()   # no warm block left over from an earlier test


def _layer_norm_relu(x, w, b):
    # two kernels with a temp between them: a result block and a temp slot to warm
    h = F.layer_norm(x, (x.shape[-1],), w, b, 1e-5)
    return tracegrad.relu(h @ w.reshape(-1, 1).expand(-1, 256))


@pytest.mark.parametrize("name", ["softmax", "layer_norm_matmul"])
def test_first_call_maps_no_fresh_block_and_agrees_with_eager(name, monkeypatch):
    rng = np.random.default_rng(1)
    x = tracegrad.from_numpy(rng.standard_normal((1024, 512), dtype=np.float32))
    w = tracegrad.from_numpy(rng.standard_normal(512, dtype=np.float32))
    b = tracegrad.from_numpy(rng.standard_normal(512, dtype=np.float32))
    fn = {"softmax": lambda t: tracegrad.softmax(t * 2, dim=-1),
          "layer_norm_matmul": lambda t: _layer_norm_relu(t, w, b)}[name]
    compiled = tracegrad.compile(fn)
    tasks = []   # each warm-up handed to the helper thread (NOTE (one helper thread))
    monkeypatch.setattr(entry_module, "warm", lambda sizes: tasks.append(
        warm_pages.warm(sizes)) or tasks[-1])
    seen = []
    real_build = compiled._build  # the compile: everything before the first run

    def build(*args, **kwargs):
        entry = real_build(*args, **kwargs)
        seen.append((allocator.memory_stats()["misses"],
                     [t for t in tasks if t is not None and not t.done.is_set()]))
        return entry
    compiled._build = build
    got = compiled(x).numpy()
    misses_after_compile, running = seen[0]
    assert tasks and running == []                             # joined before the call
    assert allocator.memory_stats()["misses"] == misses_after_compile  # all from the pool
    # a K=512 dot product of terms ~1 that cancels to ~1: its rounding, which depends on
    # the BLAS kernel's K order, is ~1e-5 absolute (NOTE (no bits across BLAS kernels))
    np.testing.assert_allclose(got, fn(x).numpy(), rtol=1e-5, atol=1e-4)


def test_fresh_bytes_counts_fresh_results_and_temp_slots():
    from tracegrad.codegen.schedule import Storage

    class Info:
        def __init__(self, nbytes, storage):
            self.nbytes, self.storage = nbytes, storage

    class Plan:
        buffers = {"a": Info(4 << 20, Storage.FRESH), "b": Info(8 << 20, Storage.ARGUMENT),
                   "c": Info(2 << 20, Storage.INPLACE), "d": Info(1 << 20, Storage.SLOT)}
        slots = [3 << 20]
    assert warm_pages.fresh_bytes(Plan()) == [4 << 20, 3 << 20]
    assert warm_pages.fresh_bytes(None) == []


def test_warm_leaves_faulted_blocks_in_the_pool_within_its_cap(monkeypatch):
    monkeypatch.setattr(warm_pages, "WARM_MAX_BYTES", 5 << 20)
    before = allocator.memory_stats()
    t = warm_pages.warm([2 << 20, 4 << 20, 2 << 20, 1000])
    t.join()
    after = allocator.memory_stats()
    # the largest first: the 4 MiB block fits the 5 MiB cap, each 2 MiB one would pass it
    assert after["pooled_bytes"] - before["pooled_bytes"] == 4 << 20
    assert after["allocated_bytes"] == before["allocated_bytes"]
    assert warm_pages.warm([1000, 2000]) is None
