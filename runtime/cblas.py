"""The CBLAS ``gemm`` of the BLAS NumPy ships, found at run time, and how a matmul maps to it.

NumPy's wheels bundle scipy-openblas (``numpy.libs/libscipy_openblas64_-*.so``) with
64-bit integers and prefixed symbols (``scipy_cblas_sgemm64_``); other builds export the
plain ``cblas_sgemm``. ``gemm_library()`` looks through the shared objects mapped into
this process (NumPy's BLAS is loaded with NumPy) for the first of those names and says
which library, symbol and integer width it found, or returns None (then matmuls stay
NumPy calls from Python). A generated driver (``runtime.driver``) calls the symbol
directly, so a matmul inside a compiled program costs no Python; a gemm big enough to
share runs instead as ``GemmBlocks`` of C over tracegrad's thread pool (``split_gemm``,
NOTE (one kind of worker) in ``runtime.blas_threads``).

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
from typing import Callable

import numpy as np

from . import cpu_threads

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


def gemm_function(found: GemmLibrary, dtype: np.dtype) -> Callable[..., None]:
    """The CBLAS gemm for ``dtype`` as a ctypes function (it releases the GIL)."""
    address = found.address(dtype)
    if address is None:
        raise TypeError(f"gemm: expected float32 or float64 operands, got {np.dtype(dtype)}")
    integer = ctypes.c_int64 if found.int_bits == 64 else ctypes.c_int32
    real = ctypes.c_float if np.dtype(dtype) == np.float32 else ctypes.c_double
    return ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_int, integer, integer,
                            integer, real, ctypes.c_void_p, integer, ctypes.c_void_p, integer,
                            real, ctypes.c_void_p, integer)(address)


def gemm_numpy_check(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` computed by calling the found gemm through ctypes (for tests)."""
    found = gemm_library()
    if found is None:
        raise RuntimeError("no CBLAS gemm found in this process")
    dtype = np.result_type(a, b)
    a, b = np.ascontiguousarray(a, dtype), np.ascontiguousarray(b, dtype)
    (m, k), (_, n) = a.shape, b.shape
    c = np.empty((m, n), dtype)
    gemm_function(found, dtype)(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, k, 1.0, a.ctypes.data, k,
                                b.ctypes.data, n, 0.0, c.ctypes.data, n)
    return c


@dataclass(frozen=True)
class GemmShape:
    """``c = alpha * op(a) @ op(b) + beta * c``, row major: what one CBLAS call takes
    besides the three matrices' addresses (leading dimensions in elements)."""
    dtype: np.dtype
    m: int
    n: int
    k: int
    trans_a: bool
    trans_b: bool
    lda: int
    ldb: int
    ldc: int
    alpha: float = 1.0
    beta: float = 0.0


class GemmBlocks:
    """One gemm cut into blocks of C's rows (or of its columns when C is wider than
    tall), each block one single-threaded CBLAS call, so tracegrad's pool splits it
    (NOTE (one kind of worker), ``runtime.blas_threads``). Called with the kernel ABI:
    ``blocks(lo, hi, a, b, c)`` computes rows (columns) ``[lo, hi)`` of C; ``outer`` is
    the number of rows (columns). Each element of C is still one dot product over all of
    K, so a split result equals the whole gemm's up to rounding: bit for bit where the
    BLAS keeps its K order at block edges, which OpenBLAS's kernels do for some core
    types and not others (NOTE (no bits across BLAS kernels), tests/gemm_rounding.py)."""

    def __init__(self, found: GemmLibrary, shape: GemmShape) -> None:
        self.shape = shape
        self.fn = gemm_function(found, shape.dtype)
        self.by_rows = shape.m >= shape.n
        self.outer = shape.m if self.by_rows else shape.n
        size = np.dtype(shape.dtype).itemsize
        # bytes from one row (column) of op(a) (op(b)) to the next, and of c
        if self.by_rows:
            self.step_a = size * (1 if shape.trans_a else shape.lda)
            self.step_b, self.step_c = 0, size * shape.ldc
        else:
            self.step_a, self.step_c = 0, size
            self.step_b = size * (shape.ldb if shape.trans_b else 1)

    def __call__(self, lo: int, hi: int, a: int, b: int, c: int) -> None:
        s = self.shape
        m, n = (hi - lo, s.n) if self.by_rows else (s.m, hi - lo)
        self.fn(ROW_MAJOR, TRANS if s.trans_a else NO_TRANS, TRANS if s.trans_b else NO_TRANS,
                m, n, s.k, s.alpha, a + lo * self.step_a, s.lda, b + lo * self.step_b, s.ldb,
                s.beta, c + lo * self.step_c, s.ldc)


# NOTE (one kind of worker), runtime.blas_threads: where the native pool is off
# (``runtime.native_pool``; on, gemms split inside the driver from
# ``runtime.native_split.GEMM_NATIVE_MIN_MACS``), a gemm of at least this many
# multiply-adds is split over tracegrad's Python pool (BLAS itself runs one thread in programs).
# One thread does ~85-90 GFLOP/s here (AVX-512 sgemm), so 2^23 is ~190 µs of work. The
# seed MLP's 64x1000x100 (6.4M, ~148 µs whole) stays whole: split in two over the pool
# it took min 125 / median 153-182 µs on an idle 2-core machine (2026-12-02, 200
# alternations; x.T @ g of the same size: 129 / 153 vs 148 / 154), since each block packs
# the shared operand again and runs the micro-kernels over half the width. Big gemms
# split well: 4 x (gemm, tanh) 1024x256x256 12.5 ms split vs 12.6 ms whole at load 6,
# and with no second core free the caller claims every chunk itself.
GEMM_PARALLEL_MIN_MACS = 1 << 23
# fewer rows (columns) than this per block make the BLAS micro-kernels run short
GEMM_MIN_BLOCK = 32


class SplitGemm:
    """A program step: one big gemm run as ``GemmBlocks`` over the pool. ``operands``
    are (position in the per-call address list, byte offset) of a, b and c."""

    __slots__ = ("blocks", "chunks", "operands")

    def __init__(self, blocks: GemmBlocks, chunks: list[tuple[int, int]],
                 operands: list[tuple[int, int]]) -> None:
        self.blocks = blocks
        self.chunks = chunks
        self.operands = operands

    def run(self, arrays: list, addrs: list, table: object) -> None:
        (pa, oa), (pb, ob), (pc, oc) = self.operands
        cpu_threads.run_chunks(self.blocks, self.chunks,
                               (addrs[pa] + oa, addrs[pb] + ob, addrs[pc] + oc))


def split_gemm(call, found: GemmLibrary | None) -> SplitGemm | None:
    """``call`` (a ``runtime.driver.GemmCall``) as blocks over the pool, or None when it
    is too small to pay for the hand-off (then the driver calls it whole)."""
    if found is None or call.m * call.n * call.k < GEMM_PARALLEL_MIN_MACS:
        return None
    shape = GemmShape(np.dtype(call.dtype), call.m, call.n, call.k, call.a.transpose,
                      call.b.transpose, call.a.ld, call.b.ld, call.c.ld, call.alpha, call.beta)
    blocks = GemmBlocks(found, shape)
    threads = min(cpu_threads.n_threads(), blocks.outer // GEMM_MIN_BLOCK)
    chunks = cpu_threads.chunks(blocks.outer, cpu_threads.PARALLEL_MIN_WORK, threads)
    if chunks is None:
        return None
    return SplitGemm(blocks, chunks,
                     [(op.position, op.byte_offset) for op in (call.a, call.b, call.c)])
