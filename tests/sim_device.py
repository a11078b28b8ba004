"""A simulated CUDA device: the driver seam (``runtime.cuda_driver``) on the host, for tests.

- Device memory is host memory: ``mem_alloc`` hands out the address of a 256-byte
  aligned NumPy buffer, within a capacity (``memory_bytes``) so out-of-memory is real.
  Copies check that the device range lies inside one live allocation, as a driver does.
- A module is the same CUDA C source built as C++ by g++ against ``SIM_PRELUDE`` (the
  CUDA built-ins on the host, a descendant of ``test_render_cuda.HOST_PRELUDE``); the
  "binary image" is the shared object's bytes, so the runtime's disk cache is exercised
  too. g++ builds are cached per source under ``build_dir`` (a temp folder shared by
  every test process), so only the first run of the suite pays for them; every build
  includes one precompiled prelude header (``prelude-<hash>.h.gch`` there), which
  halves a cold run's build time.
- A launch runs the kernel with the given geometry, blocks one after another. A kernel
  without barriers runs its threads one after another (any order is a valid schedule);
  one that uses ``__syncthreads`` or ``__shfl_down_sync`` runs its threads as fibers
  (``ucontext``) that switch at every barrier: a block barrier releases when every thread
  of the block waits there, a warp barrier (each shuffle has two) when its warp's lanes
  do. Threads that diverge at a barrier (some exit, some wait) or a ``__trap()`` fail
  the launch; like a GPU's, the failure is reported at the next ``synchronize`` and
  later launches on the failed context are skipped until then.
"""
from __future__ import annotations

import bisect
import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from typing import Any, Sequence

import numpy as np

from tracegrad.runtime.cuda_driver import BuildFailure, DriverOutOfMemory, LaunchFailure

SIM_PRELUDE = r"""
#include <math.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <setjmp.h>
#include <ucontext.h>
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
struct tg_dim3 { unsigned x, y, z; };
// NOTE: plain globals (not static): a barrier switches fibers through swapcontext, and
// the compiler must reload threadIdx after any call that may run other threads
tg_dim3 threadIdx = {0, 0, 0}, blockIdx = {0, 0, 0}, blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline double __longlong_as_double(long long i) { double d; memcpy(&d, &i, 8); return d; }

enum { TG_RUN, TG_WAIT_BLOCK, TG_WAIT_WARP, TG_DONE };
struct tg_fiber { ucontext_t ctx; int state; };
static tg_fiber tg_f[1024];
static char* tg_stacks = 0;
static const size_t TG_STACK = 128 * 1024;
static ucontext_t tg_main_ctx;
static unsigned tg_cur = 0;
static int tg_fibers = 0;          // running as fibers (the kernel has barriers)
static char tg_err[512];
static jmp_buf tg_trap_jmp;
static void (*tg_body)(void**) = 0;
static void** tg_args = 0;
static unsigned long long tg_lanes[1024];

static void tg_yield(int state) {
  tg_f[tg_cur].state = state;
  swapcontext(&tg_f[tg_cur].ctx, &tg_main_ctx);
}
void __syncthreads() {
  if (!tg_fibers) { snprintf(tg_err, sizeof tg_err, "__syncthreads outside a barrier launch"); return; }
  tg_yield(TG_WAIT_BLOCK);
}
void __trap() {
  if (!tg_err[0]) snprintf(tg_err, sizeof tg_err, "__trap() in thread %u of block %u",
                           threadIdx.x, blockIdx.x);
  if (tg_fibers) { tg_f[tg_cur].state = TG_DONE; setcontext(&tg_main_ctx); }
  longjmp(tg_trap_jmp, 1);
}
template <typename T> T __shfl_down_sync(unsigned, T v, int s) {
  const unsigned t = threadIdx.x;
  memcpy(&tg_lanes[t], &v, sizeof(T));
  tg_yield(TG_WAIT_WARP);          // every lane has written
  T r = v;
  if (t % 32 + s < 32 && t + s < blockDim.x) memcpy(&r, &tg_lanes[t + s], sizeof(T));
  tg_yield(TG_WAIT_WARP);          // every lane has read
  return r;
}
static void tg_fiber_main(int i) {
  tg_body(tg_args);
  tg_f[i].state = TG_DONE;          // uc_link returns to the scheduler
}
static int tg_run_block_fibers(unsigned n) {
  if (!tg_stacks) tg_stacks = (char*)malloc(TG_STACK * 1024);
  for (unsigned i = 0; i < n; i++) {
    getcontext(&tg_f[i].ctx);
    tg_f[i].ctx.uc_stack.ss_sp = tg_stacks + (size_t)i * TG_STACK;
    tg_f[i].ctx.uc_stack.ss_size = TG_STACK;
    tg_f[i].ctx.uc_link = &tg_main_ctx;
    makecontext(&tg_f[i].ctx, (void (*)())tg_fiber_main, 1, (int)i);
    tg_f[i].state = TG_RUN;
  }
  for (;;) {
    for (unsigned i = 0; i < n; i++) {
      if (tg_f[i].state != TG_RUN) continue;
      tg_cur = i;
      threadIdx.x = i;
      swapcontext(&tg_main_ctx, &tg_f[i].ctx);
      if (tg_err[0]) return 1;
    }
    unsigned done = 0, at_block = 0;
    for (unsigned i = 0; i < n; i++) {
      done += tg_f[i].state == TG_DONE;
      at_block += tg_f[i].state == TG_WAIT_BLOCK;
    }
    if (done == n) return 0;
    int released = 0;
    if (at_block == n) {
      for (unsigned i = 0; i < n; i++) tg_f[i].state = TG_RUN;
      released = 1;
    }
    for (unsigned w = 0; w * 32 < n; w++) {
      unsigned lo = w * 32, hi = lo + 32 < n ? lo + 32 : n, waiting = 0;
      for (unsigned i = lo; i < hi; i++) waiting += tg_f[i].state == TG_WAIT_WARP;
      if (waiting == hi - lo) {
        for (unsigned i = lo; i < hi; i++) tg_f[i].state = TG_RUN;
        released = 1;
      }
    }
    if (!released) {
      snprintf(tg_err, sizeof tg_err, "barrier divergence in block %u: %u of %u threads "
               "exited, %u wait at __syncthreads, the rest at a warp shuffle",
               blockIdx.x, done, n, at_block);
      return 1;
    }
  }
}
static int tg_run(void** args, unsigned grid, unsigned block, void (*body)(void**),
                  int barriers, char* err, int errlen) {
  tg_err[0] = 0;
  tg_body = body; tg_args = args; tg_fibers = barriers;
  gridDim.x = grid; blockDim.x = block;
  int failed = 0;
  for (unsigned b = 0; b < grid && !failed; b++) {
    blockIdx.x = b;
    if (barriers) {
      failed = tg_run_block_fibers(block);
    } else if (setjmp(tg_trap_jmp) == 0) {
      for (unsigned t = 0; t < block; t++) { threadIdx.x = t; body(args); }
      failed = tg_err[0] != 0;
    } else {
      failed = 1;
    }
  }
  if (failed) snprintf(err, errlen, "%s", tg_err);
  return failed;
}
"""

CXX_FOUND = shutil.which("g++") is not None
# NOTE: the precompiled prelude is only used by builds with exactly these flags
_CXX_FLAGS = ("-O1", "-std=c++17", "-fPIC", "-w", "-fvisibility=hidden")
_SIGNATURE = re.compile(r'extern "C" __global__ void (\w+)\(([^)]*)\)', re.S)


def _launcher(source: str) -> str:
    """An exported ``tg_launch_<name>`` per kernel of ``source``: unpacks ``void**``."""
    barriers = int("__syncthreads" in source or "__shfl_down_sync" in source)
    out = []
    for name, params in _SIGNATURE.findall(source):
        casts = []
        for i, param in enumerate(p.strip() for p in params.split(",") if p.strip()):
            ctype = param.rsplit(None, 1)[0].replace("__restrict__", "").strip()
            casts.append(f"({ctype})a[{i}]")
        out.append(f"static void tg_body_{name}(void** a) {{ {name}({', '.join(casts)}); }}\n"
                   f'extern "C" __attribute__((visibility("default"))) int tg_launch_{name}('
                   f"void** a, unsigned g, unsigned b, char* err, int errlen) "
                   f"{{ return tg_run(a, g, b, tg_body_{name}, {barriers}, err, errlen); }}\n")
    return "\n".join(out)


def default_build_dir() -> str:
    return os.environ.get("TRACEGRAD_SIM_BUILD_DIR") or os.path.join(
        tempfile.gettempdir(), f"tracegrad-sim-build-{os.getuid()}")


class SimFunction:
    def __init__(self, name: str, entry: Any, module: Any):
        self.name, self.entry, self.module = name, entry, module


class SimDriver:
    """The driver seam on the host (see module doc)."""

    name = "sim"
    ALIGN = 256

    def __init__(self, memory_bytes: int = 1 << 30, max_threads: int = 1024,
                 build_dir: str | None = None, cxx: str = "g++"):
        self.memory_bytes, self.max_threads = memory_bytes, max_threads
        self.build_dir, self.cxx = build_dir or default_build_dir(), cxx
        self.used = 0
        self._buffers: dict[int, np.ndarray] = {}   # address -> backing array
        self._sizes: dict[int, int] = {}
        self._starts: list[int] = []                 # sorted addresses, for range checks
        self._error: LaunchFailure | None = None
        self.compiles = 0
        self._lock = threading.Lock()
        self.launches: list[tuple[str, tuple, tuple]] = []

    # -- queries ---------------------------------------------------------------------------
    def device_count(self) -> int:
        return 1

    def device_name(self) -> str:
        return "tracegrad simulated device"

    def arch(self) -> str:
        return "sim_host"

    def versions(self) -> str:
        return "sim-1 " + hashlib.sha256(SIM_PRELUDE.encode()).hexdigest()[:12]

    def total_memory(self) -> int:
        return self.memory_bytes

    def max_threads_per_block(self) -> int:
        return self.max_threads

    # -- memory ------------------------------------------------------------------------------
    def mem_alloc(self, nbytes: int) -> int:
        if self.used + nbytes > self.memory_bytes:
            raise DriverOutOfMemory(f"out of memory: {nbytes} requested, {self.used} of "
                                    f"{self.memory_bytes} in use")
        raw = np.empty(nbytes + self.ALIGN, np.uint8)
        start = -raw.ctypes.data % self.ALIGN
        ptr = raw.ctypes.data + start
        self._buffers[ptr], self._sizes[ptr] = raw, nbytes
        bisect.insort(self._starts, ptr)
        self.used += nbytes
        return ptr

    def mem_free(self, ptr: int) -> None:
        if ptr not in self._buffers:
            raise ValueError(f"mem_free: {ptr:#x} is not an allocation")
        del self._buffers[ptr]
        self.used -= self._sizes.pop(ptr)
        self._starts.remove(ptr)

    def check_range(self, ptr: int, nbytes: int) -> None:
        """Raise unless ``[ptr, ptr + nbytes)`` lies inside one live allocation."""
        k = bisect.bisect_right(self._starts, ptr) - 1
        if k < 0 or ptr + nbytes > self._starts[k] + self._sizes[self._starts[k]]:
            raise ValueError(f"invalid device range {ptr:#x}+{nbytes}")

    def copy_htod(self, dst: int, src: np.ndarray) -> None:
        self.check_range(dst, src.nbytes)
        ctypes.memmove(dst, src.ctypes.data, src.nbytes)

    def copy_dtoh(self, dst: np.ndarray, src: int) -> None:
        self.check_range(src, dst.nbytes)
        ctypes.memmove(dst.ctypes.data, src, dst.nbytes)

    def copy_dtod(self, dst: int, src: int, nbytes: int) -> None:
        self.check_range(src, nbytes)
        self.check_range(dst, nbytes)
        ctypes.memmove(dst, src, nbytes)

    def memset(self, dst: int, byte: int, nbytes: int) -> None:
        self.check_range(dst, nbytes)
        ctypes.memset(dst, byte, nbytes)

    # -- modules and launches -------------------------------------------------------------------
    def compile(self, source: str, name: str) -> bytes:
        body = source + "\n" + _launcher(source)
        key = hashlib.sha256((self.cxx + SIM_PRELUDE + body).encode()).hexdigest()[:32]
        os.makedirs(self.build_dir, exist_ok=True)
        lib = os.path.join(self.build_dir, f"{key}.so")
        if not os.path.exists(lib):
            prelude = f'#include "{os.path.basename(self._precompiled_prelude())}"\n'
            res = self._build(prelude + body, lib)
            if res.returncode != 0:
                # a damaged .gch fails the build ("while reading precompiled header"):
                # build once more from the prelude's text before blaming the source
                res = self._build(SIM_PRELUDE + body, lib)
            if res.returncode != 0:
                raise BuildFailure(res.stderr)
            self.compiles += 1
        with open(lib, "rb") as f:
            return f.read()

    def _build(self, text: str, lib: str) -> subprocess.CompletedProcess:
        pid = os.getpid()
        cpp, tmp = f"{lib[:-3]}.{pid}.cpp", f"{lib}.{pid}.tmp"
        with open(cpp, "w") as f:
            f.write(text)
        res = subprocess.run([self.cxx, *_CXX_FLAGS, "-shared", "-o", tmp, cpp],
                             capture_output=True, text=True)
        os.unlink(cpp)
        if res.returncode == 0:
            os.replace(tmp, lib)   # atomic: a concurrent test process sees all or nothing
        return res

    def _precompiled_prelude(self) -> str:
        """The prelude as a header beside its precompiled form (``.gch``), built once per
        prelude text and compiler: most of a small kernel's build time is parsing the
        prelude's C++ headers (0.24 s -> 0.10 s per build measured here). g++ uses the
        ``.gch`` when its flags match and falls back to the header text otherwise, so a
        stale or broken one costs time, never correctness."""
        key = hashlib.sha256((self.cxx + " ".join(_CXX_FLAGS) + SIM_PRELUDE).encode())
        header = os.path.join(self.build_dir, f"prelude-{key.hexdigest()[:16]}.h")
        if os.path.exists(header + ".gch"):
            return header
        pid = os.getpid()
        with open(f"{header}.{pid}.tmp", "w") as f:
            f.write(SIM_PRELUDE)
        os.replace(f"{header}.{pid}.tmp", header)
        res = subprocess.run([self.cxx, *_CXX_FLAGS, "-x", "c++-header", header,
                              "-o", f"{header}.gch.{pid}.tmp"], capture_output=True, text=True)
        if res.returncode != 0:
            raise BuildFailure(res.stderr)
        os.replace(f"{header}.gch.{pid}.tmp", header + ".gch")
        return header

    def load_module(self, image: bytes) -> Any:
        if not image.startswith(b"\x7fELF"):
            raise ValueError("not a shared object")
        path = os.path.join(self.build_dir, f"img-{hashlib.sha256(image).hexdigest()[:32]}.so")
        if not os.path.exists(path):
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(image)
            os.replace(tmp, path)
        return ctypes.CDLL(path)

    def get_function(self, module: Any, name: str) -> SimFunction:
        entry = getattr(module, f"tg_launch_{name}")
        entry.restype = ctypes.c_int
        entry.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_char_p,
                          ctypes.c_int]
        return SimFunction(name, entry, module)

    def launch(self, function: SimFunction, grid: tuple[int, int, int],
               block: tuple[int, int, int], shared_bytes: int, args: Sequence[int]) -> None:
        with self._lock:   # one stream: kernels run one at a time (ctypes drops the GIL)
            self._launch(function, grid, block, args)

    def _launch(self, function: SimFunction, grid: tuple[int, int, int],
                block: tuple[int, int, int], args: Sequence[int]) -> None:
        self.launches.append((function.name, tuple(grid), tuple(block)))
        if self._error is not None:
            return   # a failed context runs nothing until the error is reported
        if grid[1:] != (1, 1) or block[1:] != (1, 1) or not 0 < block[0] <= self.max_threads:
            self._error = LaunchFailure(f"invalid launch configuration grid={grid} "
                                        f"block={block}", function.name)
            return
        ptrs = (ctypes.c_void_p * max(len(args), 1))(*args)
        err = ctypes.create_string_buffer(512)
        if function.entry(ptrs, grid[0], block[0], err, len(err)):
            self._error = LaunchFailure(f"launch failed: {err.value.decode()}", function.name)

    def synchronize(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error


def use_test_device(**sim_options: Any):
    """Install the device the CUDA tests run on and return ``(device, sim)``: the
    simulated device (``sim`` is its driver), or with ``TRACEGRAD_TEST_CUDA=pycuda`` the
    real GPU through PyCUDA (``sim`` is None; ``tests/gpu/run.sh`` sets it). Undo with
    ``release_test_device()``."""
    from tracegrad.runtime import cuda_device, cuda_driver as driver
    cuda_device.reset()
    if on_real_gpu():
        driver.set_driver(None)
        return cuda_device.current(), None
    sim = SimDriver(**sim_options)
    driver.set_driver(sim)
    return cuda_device.current(), sim


def release_test_device() -> None:
    from tracegrad.runtime import cuda_device, cuda_driver as driver
    cuda_device.reset()
    driver.set_driver(None)


def on_real_gpu() -> bool:
    return os.environ.get("TRACEGRAD_TEST_CUDA", "sim") == "pycuda"
