"""remainder's gradient is PyTorch's: g for a, -g * floor_divide(a, b) for b (NOTE
(remainder's gradient) in tracegrad/_ops/division.py). Through fmod's it was -trunc(a / b)
+ 1 where b was added: 3.0 % 0.1 gave -30 where torch gives -29. Values keep their bits."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg

torch = pytest.importorskip("torch")   # (every test compares with torch)

EDGES_A = [3.0, -3.0, 3.0, 0.3, -0.0, 7.5, 2.5, 1.0]
EDGES_B = [0.1, 0.1, -0.1, 0.1, 1.0, 2.0, -2.5, 0.0]


def _operands(dtype):
    rng = np.random.default_rng(8)
    a = np.concatenate([EDGES_A, rng.standard_normal(300) * 10,
                        rng.integers(-50, 50, 200) * 0.1])
    b = np.concatenate([EDGES_B, rng.standard_normal(300) + 3 * rng.choice([-1, 1], 300),
                        np.full(200, 0.1) * rng.choice([-1, 1], 200)])
    return a.astype(dtype), b.astype(dtype)


def _torch_grads(a, b):
    ta = torch.tensor(a, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    out = ta % tb
    out.sum().backward()
    return out.detach().numpy(), ta.grad.numpy(), tb.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eager_gradients_are_torchs(dtype):
    a, b = _operands(dtype)
    ta, tb = tg.tensor(a, requires_grad=True), tg.tensor(b, requires_grad=True)
    out = ta % tb
    out.sum().backward()
    want, ga, gb = _torch_grads(a, b)
    np.testing.assert_array_equal(out.detach().numpy(), want)
    real = ~np.isnan(want)
    np.testing.assert_array_equal(np.signbit(out.detach().numpy()[real]), np.signbit(want[real]))
    np.testing.assert_array_equal(ta.grad.numpy(), ga)
    np.testing.assert_array_equal(tb.grad.numpy(), gb)
    assert tb.grad.numpy()[0] == -29   # 3.0 % 0.1


def test_a_python_scalar_operand():
    a, b = _operands(np.float64)
    ta = tg.tensor(a, requires_grad=True)
    (ta % 0.1).sum().backward()
    t = torch.tensor(a, requires_grad=True)
    (t % 0.1).sum().backward()
    np.testing.assert_array_equal(ta.grad.numpy(), t.grad.numpy())
    tb = tg.tensor(b, requires_grad=True)
    (3.0 % tb).sum().backward()
    t = torch.tensor(b, requires_grad=True)
    torch.remainder(torch.full_like(t, 3.0), t).sum().backward()
    np.testing.assert_array_equal(tb.grad.numpy(), t.grad.numpy())


def test_an_infinite_quotient_leaves_a_finite_result_and_no_nan():
    a = tg.tensor([1e300, 5.0, -5.0], dtype=tg.float64, requires_grad=True)
    b = tg.tensor([1e-300, float("inf"), float("inf")], dtype=tg.float64, requires_grad=True)
    out = a % b
    out.sum().backward()
    assert np.all(np.isfinite(out.detach().numpy()[:1]))
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 1.0, 1.0])
    assert not np.isnan(b.grad.numpy()).any()


def test_compiled_gradients_equal_eager():
    a, b = _operands(np.float64)

    def step(x, y):
        loss = (x % y).sum()
        loss.backward()
        return loss

    compiled = tg.compile(step, fullgraph=True)
    xc, yc = tg.tensor(a, requires_grad=True), tg.tensor(b, requires_grad=True)
    xe, ye = tg.tensor(a, requires_grad=True), tg.tensor(b, requires_grad=True)
    compiled(xc, yc)
    step(xe, ye)
    np.testing.assert_array_equal(xc.grad.numpy(), xe.grad.numpy())
    np.testing.assert_array_equal(yc.grad.numpy(), ye.grad.numpy())


def test_without_grad_the_value_is_unchanged():
    a, b = _operands(np.float32)
    with tg.no_grad():
        plain = (tg.tensor(a, requires_grad=True) % tg.tensor(b)).numpy()
    tracked = (tg.tensor(a, requires_grad=True) % tg.tensor(b)).detach().numpy()
    np.testing.assert_array_equal(np.ascontiguousarray(plain).view(np.uint32),
                                  np.ascontiguousarray(tracked).view(np.uint32))
