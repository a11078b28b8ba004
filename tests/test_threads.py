"""set_num_threads limits compiled kernels and OpenBLAS; results do not change."""
import numpy as np

import tracegrad as torch
from tracegrad.runtime import blas_threads


def test_set_num_threads_limits_kernels_and_blas():
    before = torch.get_num_threads()
    blas_before = blas_threads.get_blas_threads()
    f = torch.compile(lambda x: (x * 2).exp().sum(-1))
    x = torch.randn(512, 1024)
    expected = f(x).numpy().copy()
    try:
        torch.set_num_threads(1)
        assert torch.get_num_threads() == 1
        if blas_before is not None:
            assert blas_threads.get_blas_threads() == 1
        np.testing.assert_allclose(f(x).numpy(), expected, rtol=1e-6)
        a = torch.randn(64, 64)
        np.testing.assert_allclose((a @ a).numpy(), a.numpy() @ a.numpy(), rtol=1e-5)
    finally:
        torch.set_num_threads(before)
        if blas_before is not None:
            blas_threads.set_blas_threads(blas_before)
    assert torch.get_num_threads() == before
