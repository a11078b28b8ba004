"""lgamma, digamma, erfinv, erfc, gcd, lcm, nextafter, frexp (tracegrad/_ops/special_eager.py)
against torch; they run eagerly under @compile (a warning, the eager values)."""
import numpy as np
import pytest

import tracegrad as tg
from torch_parity_testing import compare, compiled_matches_eager

torch = pytest.importorskip("torch")
rng = np.random.default_rng(2)
POS = rng.uniform(0.1, 20.0, 40)
ANY = np.concatenate([POS, -POS + 0.37, [0.5, 1.0, 2.0, 1e-4, 150.0]])
UNIT = np.concatenate([rng.uniform(-0.999, 0.999, 30), [0.0, 0.9999, -0.99999, 1e-6]])


@pytest.mark.parametrize("name,data", [("lgamma", ANY), ("digamma", ANY), ("erfc", ANY / 4),
                                       ("erfinv", UNIT)])
def test_values_and_gradients_float64(name, data):
    compare(lambda m, x: getattr(m, name)(x), lambda m, x: getattr(m, name)(x), data,
            grad=(0,), rtol=1e-9, atol=1e-9, grad_rtol=1e-7)
    compare(lambda m, x: getattr(x, name)(), lambda m, x: getattr(x, name)(),
            data.astype(np.float32), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["lgamma", "digamma", "erfc", "erfinv"])
def test_special_points_and_dtypes(name):
    points = np.array([0.0, -0.0, -1.0, -2.0, 1.0, -1.0001, np.inf, -np.inf, np.nan, 1.5, 3.0,
                       10.0, 27.0])
    compare(lambda m, x: getattr(m, name)(x), lambda m, x: getattr(m, name)(x), points,
            rtol=1e-9, atol=1e-12)
    compare(lambda m, x: getattr(m, name)(x), lambda m, x: getattr(m, name)(x),
            np.array([[0, 1], [2, 3]]), rtol=1e-6)
    compare(lambda m, x: getattr(m, name)(x), lambda m, x: getattr(m, name)(x), np.zeros((0, 3)))
    compare(lambda m, x: getattr(m, name)(x), lambda m, x: getattr(m, name)(x), np.array(0.25))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 6])
def test_polygamma(n):
    x = np.array([-1.5, -0.5, 0.5, 2.0, 30.0, 1e-3, 7.25, -7.3, 100.5, np.inf, np.nan, 0.0])
    if n != 1:   # PyTorch's trigamma at -1 is 6.6e32 (rounding), ours inf
        x = np.append(x, -1.0)
    compare(lambda m, t: m.polygamma(n, t), lambda m, t: m.polygamma(n, t), x, rtol=1e-9,
            atol=1e-12)
    compare(lambda m, t: t.polygamma(n), lambda m, t: t.polygamma(n), POS, grad=(0,),
            rtol=1e-9, grad_rtol=1e-8)
    # (float32 on positives: near a negative pole PyTorch's float32 arithmetic is off by
    # 1e-4 relative; ours runs in float64 and rounds once)
    compare(lambda m, t: m.polygamma(n, t), lambda m, t: m.polygamma(n, t),
            POS.astype(np.float32), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("p", [1, 2, 4])
def test_mvlgamma(p):
    x = rng.uniform(2.0, 9.0, (3, 4))
    compare(lambda m, t: m.mvlgamma(t, p), lambda m, t: m.mvlgamma(t, p), x, grad=(0,),
            rtol=1e-9, grad_rtol=1e-8)
    compare(lambda m, t: t.mvlgamma(p=p), lambda m, t: t.mvlgamma(p=p), x.astype(np.float32))
    with pytest.raises(ValueError, match="mvlgamma.*p must be"):
        tg.mvlgamma(tg.tensor(x), 0)


def test_third_derivative_of_digamma():
    x = tg.tensor([0.7, 3.5], dtype=tg.float64, requires_grad=True)
    (g1,) = tg.autograd.grad(tg.digamma(x).sum(), x, create_graph=True)
    (g2,) = tg.autograd.grad(g1.sum(), x, create_graph=True)
    g2.sum().backward()
    xt = torch.tensor([0.7, 3.5], dtype=torch.float64)
    np.testing.assert_allclose(x.grad.numpy(), torch.polygamma(3, xt).numpy(), rtol=1e-9)


def test_erfc_keeps_tiny_values():
    x = np.array([4.0, 6.0, 9.0], dtype=np.float32)
    compare(lambda m, t: m.erfc(t), lambda m, t: m.erfc(t), x, rtol=1e-5, atol=0)


def test_second_derivative_of_lgamma_is_trigamma():
    x = tg.tensor([0.3, 2.5, -1.5], dtype=tg.float64, requires_grad=True)
    (g,) = tg.autograd.grad(tg.lgamma(x).sum(), x, create_graph=True)
    g.sum().backward()
    xt = torch.tensor([0.3, 2.5, -1.5], dtype=torch.float64)
    np.testing.assert_allclose(x.grad.numpy(), torch.polygamma(1, xt).numpy(), rtol=1e-8)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.int16])
def test_gcd_lcm(dtype):
    a = np.array([4, 6, 0, 0, 9, 12]).astype(dtype)
    b = np.array([6, 4, 0, 5, 1, 18]).astype(dtype)
    if dtype != np.uint8:
        a[1] = -6
    for name in ("gcd", "lcm"):
        compare(lambda m, x, y: getattr(m, name)(x, y), lambda m, x, y: getattr(m, name)(x, y),
                a, b)
        compare(lambda m, x, y: getattr(x, name)(y), lambda m, x, y: getattr(x, name)(y), a, b)


def test_nextafter_and_frexp():
    a = np.array([1.0, 0.0, -2.5, np.inf, 3.0])
    b = np.array([2.0, -1.0, -2.5, 0.0, np.nan])
    for dtype in (np.float32, np.float64):
        compare(lambda m, x, y: m.nextafter(x, y), lambda m, x, y: m.nextafter(x, y),
                a.astype(dtype), b.astype(dtype), rtol=0, atol=0)
        compare(lambda m, x: tuple(m.frexp(x)), lambda m, x: tuple(m.frexp(x)),
                np.array([8.0, 0.3, -5.0, 0.0, 1e-30]).astype(dtype), rtol=0, atol=0)
    m, e = tg.tensor([8.0]).frexp()
    assert (m.item(), e.item()) == (0.5, 4) and tg.frexp(tg.tensor([1.0])).exponent.dtype == tg.int32


def test_errors():
    with pytest.raises(TypeError, match=r"gcd.*float32"):
        tg.gcd(tg.ones(2), tg.ones(2))
    with pytest.raises(TypeError, match=r"frexp.*int64"):
        tg.frexp(tg.tensor([8]))
    with pytest.raises(TypeError, match=r"nextafter.*int64"):
        tg.nextafter(tg.tensor([1]), tg.tensor([2]))


def test_compiled_runs_eagerly_with_a_warning():
    compiled_matches_eager(lambda x: tg.lgamma(x) + tg.erfinv(x * 0.1) * tg.digamma(x)
                           + tg.erfc(x), POS.astype(np.float32), expect_fallback=True)
