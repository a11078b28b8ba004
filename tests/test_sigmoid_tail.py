"""Eager sigmoid in its subnormal tail: 1 / (1 + e^-x) gave 0 where e^-x overflows (x <
-88.7 float32, -709.8 float64) though the true value is subnormal down to x = -104 / -745;
the compiled sigmoid had it right (NOTE in codegen/scalar_ops.py's sigmoid). torch 2.13
gives 0 there too: this checks against 80-bit references instead."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
from test_llvm_math_ulps import ulp_errors

TAILS = {np.float32: (-106.0, -80.0), np.float64: (-750.0, -700.0)}


def _reference(x: np.ndarray) -> np.ndarray:
    e = np.exp(x.astype(np.longdouble))
    return e / (1 + e)


def _tail(dtype) -> np.ndarray:
    lo, hi = TAILS[dtype]
    x = np.random.default_rng(7).uniform(lo, hi, 3000)
    return np.concatenate([x, [lo, hi, -np.inf, 0.0]]).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eager_tail_is_the_true_subnormal(dtype):
    x = _tail(dtype)
    got = tg.sigmoid(tg.tensor(x)).numpy()
    want = _reference(x)
    assert np.all((got > 0) == (want.astype(dtype) > 0))
    assert ulp_errors(got, want).max() <= 3.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_matches_eager_in_the_tail(dtype):
    x = tg.tensor(_tail(dtype))
    compiled = tg.compile(lambda t: tg.sigmoid(t * 1)).__call__(x).numpy()
    eager = tg.sigmoid(x).numpy()
    np.testing.assert_array_max_ulp(compiled, eager, maxulp=3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tail_gradient_is_the_value(dtype):
    # d sigmoid = s (1 - s) = s where s is subnormal
    x = _tail(dtype)
    t = tg.tensor(x, requires_grad=True)
    tg.sigmoid(t).sum().backward()
    want = _reference(x) * (1 - _reference(x))
    assert np.all((t.grad.numpy() > 0) == (want.astype(dtype) > 0))
    assert ulp_errors(t.grad.numpy(), want).max() <= 3.0


def test_a_zero_d_tail():
    x = tg.tensor(np.array(-720.0))
    assert x.numpy().dtype == np.float64
    assert float(tg.sigmoid(x).numpy()) == pytest.approx(float(_reference(np.array(-720.0))),
                                                        rel=1e-9, abs=0)
