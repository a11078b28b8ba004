"""The NumPy-backed new ops (sort, topk, cumprod, quantile, searchsorted, ...) on a CUDA
tensor (the simulated device without a GPU): the answer stays on the device and equals
the CPU one (their NumPy indices and results are moved to the input's device)."""
from __future__ import annotations

import numpy as np
import pytest
from sim_device import CXX_FOUND, on_real_gpu, release_test_device, use_test_device

import tracegrad as tg

pytestmark = pytest.mark.skipif(not (CXX_FOUND or on_real_gpu()), reason="g++ not found")


@pytest.fixture(scope="module", autouse=True)
def device():
    dev, _ = use_test_device()
    yield dev
    release_test_device()


CASES = {
    "sort": lambda t: tg.sort(t, 1, descending=True).values,
    "topk": lambda t: tg.topk(t, 2).indices,
    "median": lambda t: tg.median(t, 1).values,
    "cumprod": lambda t: tg.cumprod(t, 1),
    "cummax": lambda t: tg.cummax(t, 1).values,
    "logcumsumexp": lambda t: tg.logcumsumexp(t, 1),
    "quantile": lambda t: tg.quantile(t, 0.3, dim=1),
    "take": lambda t: tg.take(t, tg.tensor([1, -2], device=t.device)),
    "repeat_interleave": lambda t: t.repeat_interleave(tg.tensor([1, 0, 2], device=t.device), 0),
    "searchsorted": lambda t: tg.searchsorted(tg.sort(t).values, t),
    "isin": lambda t: tg.isin(t, t[0]),
    "bincount": lambda t: tg.bincount((t.abs() * 3).long().reshape(-1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_numpy_backed_ops_answer_on_the_inputs_device(name):
    x = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
    got = CASES[name](tg.tensor(x, device="cuda"))
    want = CASES[name](tg.tensor(x))
    assert got.device.type == "cuda"
    np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), rtol=1e-6, atol=1e-6)
