"""Thread counts set for one test and put back after it (kernel pool and OpenBLAS)."""
import contextlib

from tracegrad.runtime import blas_threads, cpu_threads


@contextlib.contextmanager
def _count_inside(get, set_, n: int):
    before = get()
    set_(n)
    try:
        yield
    finally:
        set_(before)


def kernel_threads(n: int):
    """Kernels split over ``n`` threads inside the block; the count is put back after."""
    return _count_inside(cpu_threads.n_threads, cpu_threads.set_n_threads, n)


def blas_at(n: int):
    """OpenBLAS set to ``n`` threads inside the block; the count is put back after."""
    return _count_inside(blas_threads.get_blas_threads, blas_threads.set_blas_threads, n)
