"""Symbolic int arguments on the CUDA path (the simulated device, or a real GPU with
TRACEGRAD_TEST_CUDA=pycuda): the int's runtime scalar reaches the device program."""
from __future__ import annotations

import numpy as np
import pytest

from sim_device import CXX_FOUND, on_real_gpu, release_test_device, use_test_device

import tracegrad

pytestmark = pytest.mark.skipif(not (CXX_FOUND or on_real_gpu()), reason="g++ not found")


@pytest.fixture(scope="module", autouse=True)
def device():
    dev, _ = use_test_device()
    yield dev
    release_test_device()


def test_int_multiplier_and_branch_on_the_device():
    def f(x, i):
        return x * i - (i % 3) if i > 4 else x + i

    x = np.random.default_rng(0).standard_normal(33).astype(np.float32)
    cx = tracegrad.tensor(x, device="cuda")
    compiled = tracegrad.compile(f)
    for i in (2, 3, 5, 6, 7, 4, 9, 3):
        got = compiled(cx, i).cpu().numpy()
        np.testing.assert_allclose(got, f(tracegrad.tensor(x), i).numpy(), rtol=1e-6)
    assert compiled.cache_info().misses <= 3
