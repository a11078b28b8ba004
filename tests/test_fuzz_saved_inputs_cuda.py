"""NOTE (inputs read by backward) on the (simulated) CUDA device: a small argument that
the backward recomputes from is copied on the device at the call, so changing it in place
before backward leaves the gradient as eager mode's."""
import numpy as np
import pytest

from sim_device import CXX_FOUND, on_real_gpu, release_test_device, use_test_device

import tracegrad as tg
import tracegrad.nn.functional as F

pytestmark = pytest.mark.skipif(not (CXX_FOUND or on_real_gpu()), reason="g++ not found")


@pytest.fixture(scope="module", autouse=True)
def device():
    dev, _ = use_test_device()
    yield dev
    release_test_device()


def test_a_small_input_changed_before_backward_is_read_from_its_copy():
    def fn(x, b):
        return F.softmax(x + b, 1) * x

    compiled = tg.compile(fn)
    weights = np.linspace(-1.0, 1.0, 20, dtype=np.float32).reshape(4, 5)
    for seed in range(2):
        r = np.random.RandomState(seed)
        grads = []
        for f, where in ((fn, "cpu"), (compiled, "cuda")):
            x = tg.tensor(r.randn(4, 5).astype(np.float32), device=where, requires_grad=True)
            b = tg.tensor(np.arange(5, dtype=np.float32), device=where)
            y = f(x, b)
            with tg.no_grad():
                b.mul_(-3.0)
            (y * tg.tensor(weights, device=where)).sum().backward()
            grads.append(x.grad.cpu().numpy())
            r = np.random.RandomState(seed)
        np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-6)
    entry = next(iter(compiled._cache.values()))
    assert entry.saved_copies   # the device copy was the path taken
