"""The CBLAS ``gemm`` of the BLAS NumPy ships, found at run time, and how a matmul maps to it.

NumPy's wheels bundle scipy-openblas (``numpy.libs/libscipy_openblas64_-*.so``) with
64-bit integers and prefixed symbols (``scipy_cblas_sgemm64_``); other builds export the
plain ``cblas_sgemm``. ``gemm_library()`` looks through the shared objects mapped into
this process (NumPy's BLAS is loaded with NumPy) for the first of those names and says
which library, symbol and integer width it found, or returns None (then matmuls stay
NumPy calls from Python). A generated driver (``runtime.driver``) calls the symbol
directly, so a matmul inside a compiled program costs no Python.

``gemm_operand(shape, strides)`` decides how a 2-D operand (element strides of a view
over a buffer) is handed to a row-major gemm: ``(transpose, leading dimension)``, or
None when it is no plain or transposed matrix (a broadcast row, a gather).

>>> gemm_operand((64, 100), (100, 1)), gemm_operand((100, 64), (1, 100))
((False, 100), (True, 100))
>>> gemm_operand((3, 4), (0, 1)) is None   # a broadcast: every row the same memory
True
"""
from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

import numpy as np

# (sgemm, dgemm, integer bits): scipy-openblas's ILP64 names first (NumPy's wheels)
_NAMES = (("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", 64),
          ("cblas_sgemm64_", "cblas_dgemm64_", 64),
          ("scipy_cblas_sgemm", "scipy_cblas_dgemm", 32),
          ("cblas_sgemm", "cblas_dgemm", 32))
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112   # the CBLAS enum values


@dataclass(frozen=True)
class GemmLibrary:
    """Where the gemm symbols live: ``path`` of the shared object, the symbols' names
    and addresses, and ``int_bits`` (32 or 64) of its integer arguments."""
    path: str
    sgemm_name: str
    sgemm: int
    dgemm: int
    int_bits: int
    lib: ctypes.CDLL

    def address(self, dtype: np.dtype) -> int | None:
        """The gemm for ``dtype`` (float32 or float64), else None."""
        return {np.dtype(np.float32): self.sgemm, np.dtype(np.float64): self.dgemm}.get(
            np.dtype(dtype))


def _mapped_libraries() -> list[str]:
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if ".so" in line}
    except OSError:
        return []
    # BLAS-looking names first: fewer dlopen calls on the usual path
    return sorted(paths, key=lambda p: ("blas" not in p.lower(), p))


@functools.lru_cache(maxsize=1)
def gemm_library() -> GemmLibrary | None:
    """NumPy's CBLAS gemm (see module doc), or None when none is found."""
    import numpy  # noqa: F401  (loads NumPy's BLAS into the process)
    for path in _mapped_libraries():
        if "blas" not in path.lower():
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for sname, dname, bits in _NAMES:
            if hasattr(lib, sname) and hasattr(lib, dname):
                s = ctypes.cast(getattr(lib, sname), ctypes.c_void_p).value
                d = ctypes.cast(getattr(lib, dname), ctypes.c_void_p).value
                if s and d:
                    return GemmLibrary(path, sname, s, d, bits, lib)
    return None


def gemm_operand(shape: tuple[int, ...], strides: tuple[int, ...]) -> tuple[bool, int] | None:
    """(transpose, leading dimension) of a 2-D operand with element ``strides``, or None.

    A size-1 dimension's stride never moves, so it may be anything (codegen gives it 0)."""
    if len(shape) != 2 or 0 in shape:
        return None
    rows, cols = shape
    row_stride = strides[0] if rows > 1 else max(cols, 1)
    col_stride = strides[1] if cols > 1 else 1
    if col_stride == 1 and row_stride >= cols:
        return False, row_stride
    col_stride = strides[1] if cols > 1 else max(rows, 1)
    row_stride = strides[0] if rows > 1 else 1
    if row_stride == 1 and col_stride >= rows:
        return True, col_stride
    return None


def gemm_numpy_check(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` computed by calling the found gemm through ctypes (for tests)."""
    found = gemm_library()
    if found is None:
        raise RuntimeError("no CBLAS gemm found in this process")
    dtype = np.result_type(a, b)
    a, b = np.ascontiguousarray(a, dtype), np.ascontiguousarray(b, dtype)
    (m, k), (_, n) = a.shape, b.shape
    c = np.empty((m, n), dtype)
    integer = ctypes.c_int64 if found.int_bits == 64 else ctypes.c_int32
    real = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    address = found.address(dtype)
    if address is None:
        raise TypeError(f"gemm: expected float32 or float64 operands, got {dtype}")
    fn = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_int, integer, integer,
                          integer, real, ctypes.c_void_p, integer, ctypes.c_void_p, integer,
                          real, ctypes.c_void_p, integer)(address)
    fn(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, k, 1.0, a.ctypes.data, k, b.ctypes.data, n, 0.0,
       c.ctypes.data, n)
    return c
