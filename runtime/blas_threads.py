"""How many threads the BLAS under NumPy's matmul uses (OpenBLAS, found in the process),
and the policy that keeps BLAS threads and tracegrad's kernel threads apart.

NOTE (one kind of worker): while a compiled program that calls BLAS runs, OpenBLAS is
asked for one thread (``hold_one_thread`` / ``release_one_thread``, counted across the
threads that run programs); when the last such call ends, the count in force before it
is put back, so NumPy's own matmul outside programs is unchanged. Inside a program the
only parallel workers are tracegrad's: the native pool's, to which a driver hands
parallel kernels and gemms of at least ``runtime.native_split.GEMM_NATIVE_MIN_MACS``
(single-threaded BLAS calls on blocks of C), or where that pool is off the Python pool's
(``runtime.cblas.GemmBlocks`` from ``runtime.cblas.GEMM_PARALLEL_MIN_MACS``). Why:

- OpenBLAS hands a gemm to its own workers and the caller then waits for them; an idle
  worker busy-waits ~2^28 cycles (``OPENBLAS_THREAD_TIMEOUT``, read only when the
  library loads, so no setting made after ``import numpy`` can shorten it). On a shared
  or small machine a worker that gets no core stalls the whole gemm, and spinning
  workers take the cores that the pool's threads need for the next kernel.
- Measured (2026-12-02, 2-core VM shared with other jobs, load average 2.5-3.4, wall /
  CPU time per call, median of 5 samples, one process per setting, two rounds):

  | compiled whole step | OpenBLAS default | OPENBLAS_THREAD_TIMEOUT=4 | BLAS 1 thread |
  |---|---|---|---|
  | seed MLP (64x1000-100-10) | 3.4-22 ms | 2.0-5.4 ms | 0.37 ms |
  | digits MLP epoch (8 steps) | 5.3-124 ms | 1.9-12 ms | 0.59-0.65 ms |
  | CNN step (batch 64) | 11-14 ms | 2.3-7.2 ms | 2.1-2.2 ms |
  | 4 x (1024x256 @ 256x256, tanh) | 12-37 ms | 7.7-17 ms | 6.6 ms |

  The one-thread column is what this policy gives without any environment variable.
  Before (main's code) / after this policy, at load average 10-12 (we got ~0.3 of a
  core), two rounds of alternated processes, wall per call without / with the
  benchmarks' OPENBLAS_THREAD_TIMEOUT=4: seed 140-156 / 83-104 ms before, 1.5-1.6 ms
  after either way (CPU 40 / 24-26 ms -> 0.42-0.44 ms); digits epoch 417-470 / 220-256
  ms -> 2.4-3.1 ms; CNN 61-117 / 8.8-12 ms -> 8.6-10 ms; the gemm/tanh program 110-120
  / 37-38 ms -> 25-27 ms. The CPU time that goes away is OpenBLAS's caller spinning
  while it waits for a worker that got no core, and the worker spinning after.
- Setting the count costs ~1.1 µs per call (``openblas_set_num_threads`` through
  ctypes, a get ~0.4 µs), so a program pays ~3 µs per call (a get and two sets), a get
  alone when OpenBLAS already runs one thread; programs that call no BLAS skip it.

Left as they are: an eager matmul outside programs still uses OpenBLAS's threads, and
its worker may spin for up to ~0.1 s afterwards beside the next program's pool threads
(``OPENBLAS_THREAD_TIMEOUT=4`` or ``tracegrad.set_num_threads(1)`` removes that too).
The count is process-wide, so a NumPy matmul that another thread runs while a program
runs gets one thread too. One thread may round otherwise than several: for the seed's
64x1000 @ 1000x100 in float32, 76% of the elements differ, by at most 2.1e-7 of the
largest, both as close to a float64 product (4.5e-7); 1024x256 @ 256x256 and 512^3 came
out identical. That is reassociation, which a compiled program is allowed.
Only OpenBLAS builds are handled (what NumPy's wheels ship); elsewhere these functions
do nothing and say so by returning None.
"""
from __future__ import annotations

import ctypes
import functools
import os
import threading
from typing import Callable, NamedTuple

from .cblas import gemm_library

_SETTERS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
            "scipy_openblas_get_num_threads", "openblas_get_num_threads")

_lock = threading.Lock()
_holders = 0                      # program calls now running with BLAS held to one thread
_restore_to: int | None = None    # the count to put back when the last of them ends


class _OpenBlas(NamedTuple):
    set: Callable[[int], None]
    get: Callable[[], int]
    path: str


@functools.lru_cache(maxsize=1)
def _openblas() -> _OpenBlas | None:
    import numpy  # noqa: F401  (loads NumPy's BLAS into the process)
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return None
    # NOTE: SciPy ships an OpenBLAS of its own; the one whose gemm compiled programs call
    # is the one to hold to a thread, so it is tried first
    gemm = gemm_library()
    for path in sorted(paths, key=lambda p: (gemm is None or p != gemm.path, p)):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        setter = next((getattr(lib, n) for n in _SETTERS if hasattr(lib, n)), None)
        getter = next((getattr(lib, n) for n in _GETTERS if hasattr(lib, n)), None)
        if setter is not None and getter is not None:
            setter.argtypes = [ctypes.c_int]
            getter.restype = ctypes.c_int
            return _OpenBlas(setter, getter, path)
    return None


def set_blas_threads(n: int) -> int | None:
    """Let OpenBLAS use ``n`` threads (outside compiled programs); returns the count now
    in force, or None without OpenBLAS. Called while programs run, it takes effect when
    the last of them ends (NOTE (one kind of worker))."""
    global _restore_to
    lib = _openblas()
    if lib is None:
        return None
    with _lock:
        if _holders and int(n) > 1:
            _restore_to = int(n)
            return lib.get()
        if _holders:
            _restore_to = None     # one thread is what the programs hold anyway
        lib.set(int(n))
        return lib.get()


def get_blas_threads() -> int | None:
    """The number of threads OpenBLAS uses now (1 while a program holds it), or None."""
    lib = _openblas()
    return None if lib is None else lib.get()


def hold_one_thread() -> None:
    """A program that calls BLAS starts: one BLAS thread until ``release_one_thread``."""
    global _holders, _restore_to
    lib = _openblas()
    if lib is None:
        return
    with _lock:
        if _holders == 0 and _restore_to is None:
            current = lib.get()
            if current > 1:
                lib.set(1)
                _restore_to = current
        _holders += 1


def release_one_thread() -> None:
    """The end of a ``hold_one_thread``; the last one puts the earlier count back."""
    global _holders, _restore_to
    lib = _openblas()
    if lib is None:
        return
    with _lock:
        _holders -= 1
        if _holders == 0 and _restore_to is not None:
            lib.set(_restore_to)
            _restore_to = None


def _reset_after_fork() -> None:
    # NOTE: a fork taken while another thread ran a program leaves that hold counted in
    # the child, where no thread will release it: forget the holds but keep the count
    # to restore, so the child's first program end puts it back.
    global _lock, _holders
    _lock = threading.Lock()
    _holders = 0


os.register_at_fork(after_in_child=_reset_after_fork)
