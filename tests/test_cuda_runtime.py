"""The CUDA runtime below programs: the caching allocator, copies, the module cache and
the errors (out of memory, a build failure, a failed launch), on the simulated device.

Tests of the simulator's own semantics (barriers, traps, capacity) skip on a real GPU.
"""
from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

from sim_device import CXX_FOUND, SimDriver, on_real_gpu, release_test_device, use_test_device

from tracegrad.runtime import cuda_device, disk_cache
from tracegrad.runtime.cuda_allocator import OutOfMemoryError, round_size
from tracegrad.runtime.cuda_device import CudaDevice, KernelLaunchError
from tracegrad.runtime.cuda_modules import KernelBuildError, ModuleCache

needs_sim = pytest.mark.skipif(on_real_gpu() or not CXX_FOUND,
                               reason="simulated device (g++) only")


@pytest.fixture
def device():
    dev, _ = use_test_device()
    yield dev
    release_test_device()


@pytest.fixture
def small_sim():
    """A simulated device with 8 MiB of memory."""
    if on_real_gpu():
        pytest.skip("simulated device only")
    dev, sim = use_test_device(memory_bytes=8 << 20)
    yield dev, sim
    release_test_device()


def test_import_tracegrad_never_imports_pycuda():
    code = ("import sys, tracegrad, tracegrad.runtime.cuda_program, tracegrad.runtime.cuda_driver; "
            "print('pycuda' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


# -- copies and the allocator -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool", "uint8", "int8"])
def test_host_device_round_trip(device, dtype):
    rng = np.random.default_rng(0)
    host = (rng.standard_normal((37, 5)) * 10).astype(dtype)
    arr = device.to_device(host)
    assert arr.shape == (37, 5) and arr.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(arr.get(), host)


def test_non_contiguous_host_arrays_are_copied_in_c_order(device):
    host = np.arange(60, dtype=np.float32).reshape(6, 10)[::2, ::-3]
    np.testing.assert_array_equal(device.to_device(host).get(), host)
    np.testing.assert_array_equal(device.to_device(np.float64(2.5)).get(), np.float64(2.5))
    empty = device.to_device(np.zeros((0, 3), np.float32))
    assert empty.get().shape == (0, 3)


def test_reshape_shares_memory_and_checks_sizes(device):
    arr = device.to_device(np.arange(12, dtype=np.int32))
    view = arr.reshape((3, 4))
    assert view.ptr == arr.ptr
    np.testing.assert_array_equal(view.get(), np.arange(12).reshape(3, 4))
    with pytest.raises(ValueError, match=r"reshape a device array of shape \(12,\) to \(5,\)"):
        arr.reshape((5,))


def test_caching_allocator_reuses_freed_blocks(device):
    alloc = device.allocator
    alloc.empty_cache()
    a = device.empty((1000,), np.float32)
    ptr, before = a.ptr, alloc.memory_stats()
    assert before["allocated_bytes"] >= round_size(4000)
    del a
    mid = alloc.memory_stats()
    assert mid["allocated_bytes"] == before["allocated_bytes"] - round_size(4000)
    assert mid["cached_bytes"] >= round_size(4000)
    b = device.empty((990,), np.float32)        # same bucket: the same block back
    assert b.ptr == ptr
    assert alloc.memory_stats()["num_cache_hits"] == before["num_cache_hits"] + 1
    del b
    alloc.empty_cache()
    after = alloc.memory_stats()
    assert after["cached_bytes"] == 0 and after["reserved_bytes"] == after["allocated_bytes"]


def test_a_block_freed_by_a_collection_inside_the_allocator_does_not_hang(device):
    """A garbage collection may start inside any of the allocator's locked sections and
    run a dead block's ``__del__`` there, on the same thread (the suite once hung so in
    ``empty_cache``): the release must not wait on the lock its own thread holds."""
    alloc = device.allocator
    block = alloc.allocate(4000)
    ptr, size = block.ptr, block.size
    released = threading.Event()

    def collect_inside_the_lock():
        with alloc._lock:
            block.__del__()      # what the collector does to a dead block here
            released.set()

    worker = threading.Thread(target=collect_inside_the_lock, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert released.is_set(), "release() waited on the allocator lock its thread holds"
    assert ptr in alloc._free[size]


def test_out_of_memory_empties_the_cache_and_retries_once(small_sim):
    dev, sim = small_sim
    keep = dev.empty((2 << 20,), np.uint8)            # 2 MiB held by a live array
    cached = dev.empty((4 << 20,), np.uint8)
    del cached                                          # 4 MiB cached
    big = dev.empty((4 << 20,), np.uint8)             # fits: served from the cache
    del big
    # 6 MiB (a bucket of 4 MiB + 1 byte) does not fit beside the 4 MiB cached: the retry
    # after emptying the cache does
    again = dev.empty(((4 << 20) + 1,), np.uint8)
    stats = dev.allocator.memory_stats()
    assert stats["num_alloc_retries"] == 1 and stats["cached_bytes"] == 0
    assert sim.used == 8 << 20
    del again
    with pytest.raises(OutOfMemoryError) as info:
        dev.empty((7 << 20,), np.uint8)
    msg = str(info.value)
    assert "Tried to allocate 7.00 MiB (a block of 8.00 MiB)" in msg
    assert "total capacity of 8.00 MiB" in msg
    assert "holds 2.00 MiB allocated in live tensors" in msg
    assert dev.allocator.memory_stats()["num_ooms"] == 1
    assert keep.get().shape == (2 << 20,)   # what lived stays usable


def test_out_of_memory_on_any_device(device):
    with pytest.raises(OutOfMemoryError, match="CUDA out of memory. Tried to allocate"):
        device.empty((device.driver.total_memory() + (1 << 30),), np.uint8)


# -- modules ---------------------------------------------------------------------------------

_SCALE = r'''
extern "C" __global__ void scale(const float* __restrict__ x, float* __restrict__ y) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i < %dLL) y[i] = 2.0f * x[i];
}
'''


def _run_scale(dev: CudaDevice, fn, n: int) -> np.ndarray:
    x = dev.to_device(np.arange(n, dtype=np.float32))
    y = dev.empty((n,), np.float32)
    dev.launch("scale", fn, (-(-n // 32), 1, 1), (32, 1, 1), [x.ptr, y.ptr])
    return y.get()


def test_binaries_come_from_memory_then_disk(device, tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    source = _SCALE % 100
    fn = device.modules.function(source, "scale")
    assert device.modules.function(source, "scale") is fn
    np.testing.assert_array_equal(_run_scale(device, fn, 100), 2 * np.arange(100))
    assert device.modules.stats["builds"] == 1
    fresh = ModuleCache(device.driver)         # a new process: the binary is on disk
    fn2 = fresh.function(source, "scale")
    assert (fresh.stats["disk_hits"], fresh.stats["builds"]) == (1, 0)
    np.testing.assert_array_equal(_run_scale(device, fn2, 100), 2 * np.arange(100))
    # a binary the driver refuses to load is deleted and rebuilt, never trusted
    key = fresh.key(source)
    disk_cache.store_blob(key, "cubin", b"garbage", {"name": "scale"})
    third = ModuleCache(device.driver)
    np.testing.assert_array_equal(_run_scale(device, third.function(source, "scale"), 100),
                                  2 * np.arange(100))
    assert third.stats["builds"] == 1 and third.stats["disk_hits"] == 0


def test_a_different_source_or_arch_is_another_key(device):
    from tracegrad.runtime.cuda_modules import cache_key
    assert cache_key("a", "sm_90", "v") != cache_key("b", "sm_90", "v")
    assert cache_key("a", "sm_90", "v") != cache_key("a", "sm_80", "v")
    assert cache_key("a", "sm_90", "v") != cache_key("a", "sm_90", "w")


def test_a_build_failure_names_the_saved_source(device, tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    bad = 'extern "C" __global__ void broken(float* __restrict__ y) { y[0] = undefined_name; }\n'
    with pytest.raises(KernelBuildError, match="CUDA kernel broken failed to build") as info:
        device.modules.function(bad, "broken")
    path = info.value.source_path
    assert path in str(info.value) and "undefined_name" in str(info.value)
    with open(path) as f:
        assert f.read() == bad


# -- launches ----------------------------------------------------------------------------------

_TRAP = r'''
extern "C" __global__ void bad_kernel(float* __restrict__ y) {
  if (blockIdx.x == 1 && threadIdx.x == 3) __trap();
  y[blockIdx.x * blockDim.x + threadIdx.x] = 1.0f;
}
'''


@needs_sim
def test_a_failed_launch_is_reported_at_the_next_synchronize_with_its_name(device):
    fn = device.modules.function(_TRAP, "bad_kernel")
    y = device.empty((64,), np.float32)
    device.launch("k7_bad_kernel", fn, (2, 1, 1), (32, 1, 1), [y.ptr])   # no error yet
    with pytest.raises(KernelLaunchError, match=r"CUDA error in kernel bad_kernel: launch "
                                                r"failed: __trap\(\) in thread 3 of block 1"):
        device.synchronize()
    device.synchronize()   # reported once
    # a copy to the host synchronizes first, so it reports the failure the same way
    device.launch("k7_bad_kernel", fn, (2, 1, 1), (32, 1, 1), [y.ptr])
    with pytest.raises(KernelLaunchError, match="bad_kernel"):
        y.get()


def test_a_launch_error_without_a_kernel_name_lists_the_pending_kernels():
    from tracegrad.runtime.cuda_driver import LaunchFailure

    class Failing(SimDriver):
        def synchronize(self):
            raise LaunchFailure("an illegal memory access was encountered")
    dev = CudaDevice(Failing())
    dev._pending = ["k0_exp", "k1_sum"]
    with pytest.raises(KernelLaunchError, match="last first: k1_sum, k0_exp"):
        dev.synchronize()


_BARRIER = r'''
extern "C" __global__ void reverse_block(const float* __restrict__ x, float* __restrict__ y) {
  __shared__ float tile[128];
  const unsigned t = threadIdx.x;
  const long long base = (long long)blockIdx.x * blockDim.x;
  tile[t] = x[base + t];
  __syncthreads();
  y[base + t] = tile[blockDim.x - 1 - t];
  __syncthreads();
}
'''


@needs_sim
def test_simulated_barriers_order_shared_memory_across_threads(device):
    fn = device.modules.function(_BARRIER, "reverse_block")
    x = device.to_device(np.arange(256, dtype=np.float32))
    y = device.empty((256,), np.float32)
    device.launch("reverse_block", fn, (2, 1, 1), (128, 1, 1), [x.ptr, y.ptr])
    want = np.arange(256, dtype=np.float32).reshape(2, 128)[:, ::-1].reshape(-1)
    np.testing.assert_array_equal(y.get(), want)


_DIVERGENT = r'''
extern "C" __global__ void divergent(float* __restrict__ y) {
  if (threadIdx.x < 16) return;
  __syncthreads();
  y[threadIdx.x] = 1.0f;
}
'''


@needs_sim
def test_simulated_barrier_divergence_fails_the_launch(device):
    fn = device.modules.function(_DIVERGENT, "divergent")
    y = device.empty((32,), np.float32)
    device.launch("divergent", fn, (1, 1, 1), (32, 1, 1), [y.ptr])
    with pytest.raises(KernelLaunchError, match="barrier divergence in block 0: 16 of 32"):
        device.synchronize()


@needs_sim
def test_simulated_launch_geometry_is_checked(device):
    fn = device.modules.function(_SCALE % 10, "scale")
    x = device.empty((10,), np.float32)
    device.launch("scale", fn, (1, 1, 1), (2048, 1, 1), [x.ptr, x.ptr])
    with pytest.raises(KernelLaunchError, match="invalid launch configuration"):
        device.synchronize()


@needs_sim
def test_simulated_copies_check_device_ranges(device):
    x = device.empty((10,), np.float32)
    with pytest.raises(ValueError, match="invalid device range"):
        # past the end of the (rounded) block
        device.driver.copy_htod(x.ptr + x.block.size - 8, np.zeros(10, np.float32))


def test_device_reset_frees_the_cache(device):
    sim_used = getattr(device.driver, "used", None)
    a = device.empty((1 << 16,), np.uint8)
    del a
    cuda_device.reset()
    if sim_used is not None:
        assert device.driver.used == sim_used
    assert cuda_device.current() is not device   # (the fixture releases the new one)


def test_without_pycuda_cuda_is_unavailable_and_says_what_is_missing():
    try:
        import pycuda  # noqa: F401
        pytest.skip("PyCUDA is installed here")
    except ImportError:
        pass
    import tracegrad
    release_test_device()   # no simulated device installed: the product's path
    assert not tracegrad.cuda.is_available()
    assert "PyCUDA is not installed" in tracegrad.cuda.why_unavailable()
    with pytest.raises(RuntimeError, match="CUDA is not available: PyCUDA is not installed"):
        tracegrad.ones(2).cuda()
    with pytest.raises(RuntimeError, match="PyCUDA is not installed"):
        cuda_device.current()
    assert tracegrad.cuda.memory_allocated() == 0


def _run_scale_on(sim, n=10):
    """Build ``_SCALE`` on ``sim`` and run it over ``arange(n)``: the doubled values."""
    fn = sim.get_function(sim.load_module(sim.compile(_SCALE % n, "scale")), "scale")
    x = sim.mem_alloc(4 * n)
    sim.copy_htod(x, np.arange(n, dtype=np.float32))
    sim.launch(fn, (1, 1, 1), (32, 1, 1), 0, [x, x])
    sim.synchronize()
    out = np.empty(n, np.float32)
    sim.copy_dtoh(out, x)
    return out


@needs_sim
def test_simulated_builds_share_one_precompiled_prelude(tmp_path):
    sim = SimDriver(build_dir=str(tmp_path))
    np.testing.assert_array_equal(_run_scale_on(sim), 2 * np.arange(10, dtype=np.float32))
    gch = list(tmp_path.glob("prelude-*.h.gch"))
    assert len(gch) == 1 and gch[0].stat().st_size > 0
    _run_scale_on(sim, 11)
    assert list(tmp_path.glob("prelude-*.h.gch")) == gch and sim.compiles == 2


@needs_sim
def test_simulated_build_survives_a_damaged_precompiled_prelude(tmp_path):
    sim = SimDriver(build_dir=str(tmp_path))
    _run_scale_on(sim)
    (gch,) = tmp_path.glob("prelude-*.h.gch")
    gch.write_bytes(gch.read_bytes()[:100000])   # g++ fails on a truncated PCH
    np.testing.assert_array_equal(_run_scale_on(sim, 12), 2 * np.arange(12, dtype=np.float32))
