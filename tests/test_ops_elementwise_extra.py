"""isclose, nansum, fmax/fmin, logit, sinc, ldexp, float_power, heaviside, logaddexp2
(tracegrad/_ops/elementwise_extra.py) against torch: values, dtypes, gradients, compiled."""
import numpy as np
import pytest

import tracegrad as tg
from torch_parity_testing import compare, compiled_matches_eager

torch = pytest.importorskip("torch")
rng = np.random.default_rng(1)
A = rng.standard_normal((3, 4))
B = np.where(rng.random((3, 4)) < 0.3, A, rng.standard_normal((3, 4)))
P = rng.uniform(0.05, 0.95, (3, 4))


@pytest.mark.parametrize("call", [
    lambda m, a, b: m.fmax(a, b), lambda m, a, b: m.fmin(a, b), lambda m, a, b: a.fmax(b),
    lambda m, a, b: m.logaddexp2(a, b), lambda m, a, b: m.logaddexp2(a, b * 40),
    lambda m, a, b: m.ldexp(a, m.tensor([1.0, -2.0, 0.0, 3.0], dtype=a.dtype)),
    lambda m, a, b: m.ldexp(a, m.tensor([1, 2, 0, 3])),
    lambda m, a, b: m.float_power(a.abs(), b), lambda m, a, b: a.float_power(2),
    lambda m, a, b: m.nansum(a * b), lambda m, a, b: m.nansum(a, dim=-1, keepdim=True),
    lambda m, a, b: m.sinc(a), lambda m, a, b: m.sinc(a * 0),
])
def test_values_and_gradients(call):
    compare(call, call, A, B, grad=(0, 1))


@pytest.mark.parametrize("eps", [None, 0.1])
def test_logit(eps):
    p = P.copy()
    p[0, 0] = 0.02   # outside [eps, 1 - eps]: clamped, gradient 0 there as in PyTorch
    compare(lambda m, a: m.logit(a, eps), lambda m, a: m.logit(a, eps), p, grad=(0,))
    compare(lambda m, a: a.logit(eps=eps), lambda m, a: a.logit(eps=eps), p.astype(np.float32))


def test_ldexp_gradient_with_negative_int_exponents():
    # PyTorch's is 0 there (an integer 2 ** -2); the derivative of x * 2 ** e is 2 ** e
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    tg.ldexp(x, tg.tensor([-2, 1])).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.25, 2.0])


def test_nan_handling():
    a = np.array([1.0, np.nan, np.nan, -np.inf, 2.0])
    b = np.array([np.nan, 2.0, np.nan, -np.inf, 2.0])
    for name in ("fmax", "fmin", "logaddexp2"):
        compare(lambda m, x, y: getattr(m, name)(x, y), lambda m, x, y: getattr(m, name)(x, y),
                a, b)
    compare(lambda m, x: m.nansum(x), lambda m, x: m.nansum(x), a)
    compare(lambda m, x: m.nansum(x), lambda m, x: m.nansum(x), a, grad=(0,))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, np.float32])
def test_dtypes(dtype):
    a = (np.arange(6).reshape(2, 3) % 3).astype(dtype)
    b = (np.arange(6).reshape(2, 3) % 2).astype(dtype)
    pairs = ["fmax", "fmin", "ldexp", "float_power", "isclose", "heaviside"]
    if dtype == np.bool_:
        pairs = ["isclose"]
    for name in pairs:
        compare(lambda m, x, y: getattr(m, name)(x, y), lambda m, x, y: getattr(m, name)(x, y),
                a, b)
    for name in ["nansum", "sinc", "logit"] if dtype != np.bool_ else ["nansum"]:
        compare(lambda m, x: getattr(m, name)(x), lambda m, x: getattr(m, name)(x), a)


@pytest.mark.parametrize("kw", [{}, {"rtol": 0.5}, {"atol": 0.3}, {"equal_nan": True}])
def test_isclose(kw):
    a = np.array([1.0, np.inf, -np.inf, np.nan, 0.0, 1e-9, 2.0])
    b = np.array([1.0 + 1e-7, np.inf, np.inf, np.nan, 1e-9, 0.0, 2.8])
    compare(lambda m, x, y: m.isclose(x, y, **kw), lambda m, x, y: m.isclose(x, y, **kw), a, b)
    compare(lambda m, x, y: x.isclose(y, **kw), lambda m, x, y: x.isclose(y, **kw), a, b)


def test_heaviside_and_empty_and_0d():
    compare(lambda m, x: m.heaviside(x, m.tensor(0.5, dtype=x.dtype)),
            lambda m, x: m.heaviside(x, m.tensor(0.5, dtype=x.dtype)), np.array([-1.0, 0.0, 3.0]))
    for call in (lambda m, x: m.fmax(x, x), lambda m, x: m.sinc(x), lambda m, x: m.nansum(x),
                 lambda m, x: m.logaddexp2(x, x)):
        compare(call, call, np.zeros((0, 2)))
        compare(call, call, np.array(0.5))


def test_python_number_operands():
    x = tg.tensor([1.0, float("nan"), 3.0])
    assert tg.fmax(x, 2.0).tolist()[::2] == [2.0, 3.0] and tg.fmin(2, x).tolist()[1] == 2.0
    assert tg.isclose(x, 1.0).tolist() == [True, False, False]


def test_errors():
    with pytest.raises(TypeError, match=r"isclose.*float32.*float64"):
        tg.isclose(tg.ones(2), tg.ones(2, dtype=tg.float64))
    with pytest.raises(TypeError, match=r"heaviside.*int64"):
        tg.heaviside(tg.ones(2), tg.tensor(1))


def test_compiled_equals_eager():
    compiled_matches_eager(lambda a, b: tg.fmax(a, b) + tg.logaddexp2(a, b) + tg.sinc(a)
                           + tg.ldexp(a, 2) * tg.isclose(a, b) + tg.logit(a.sigmoid(), 1e-3)
                           + tg.nansum(a, 1, keepdim=True), A.astype(np.float32),
                           B.astype(np.float32), rtol=1e-5, atol=1e-6)
