"""How many threads the BLAS under NumPy's matmul uses (OpenBLAS, found in the process).

On a small or busy machine, OpenBLAS threads that spin while idle can take the cores
that the next kernel needs; ``tracegrad.set_num_threads`` limits them together with
tracegrad's own kernel threads. Only OpenBLAS builds are handled (what NumPy's wheels
ship); elsewhere these functions do nothing and say so by returning None.
"""
from __future__ import annotations

import ctypes
import functools

_SETTERS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
            "scipy_openblas_get_num_threads", "openblas_get_num_threads")


@functools.lru_cache(maxsize=1)
def _openblas():
    import numpy  # noqa: F401  (loads NumPy's BLAS into the process)
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        setter = next((getattr(lib, n) for n in _SETTERS if hasattr(lib, n)), None)
        getter = next((getattr(lib, n) for n in _GETTERS if hasattr(lib, n)), None)
        if setter is not None and getter is not None:
            setter.argtypes = [ctypes.c_int]
            getter.restype = ctypes.c_int
            return setter, getter
    return None


def set_blas_threads(n: int) -> int | None:
    lib = _openblas()
    if lib is None:
        return None
    lib[0](int(n))
    return lib[1]()


def get_blas_threads() -> int | None:
    lib = _openblas()
    return None if lib is None else lib[1]()
