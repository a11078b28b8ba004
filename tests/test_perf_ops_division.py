"""Eager float ``//`` of host arrays in fused chunks (NOTE (eager floor division) in
tracegrad/_ops/division_eager.py): the same bits as the composition of tensor ops it
replaces (signed zeros, NaN, infinities, subnormals, huge quotients, zero divisors), over
broadcasts and Python scalars, float32 and float64; the composition still serves traces,
gradients and ``%``."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
from tracegrad._ops import division, division_eager

SPECIAL = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e38, -1e38, 3.4e38, 3.0, -2.5, 0.1, -7.0,
           1e-40, -1e-45, 1.17549435e-38, 2.0 ** 24 + 1, 16777217.0 * 3, 1e-30, 7e30,
           1.5, -1.5, 0.5, 1e300, -1e-310]


def _operands(dtype, n=60000, seed=0):
    """Every pair of special values, then random pairs at scales 1e-13..1e13, quotients
    near integers, equal magnitudes, and huge ones (more than one 8192-element chunk)."""
    with np.errstate(over="ignore"):
        sa, sb = (v.ravel().astype(dtype) for v in np.meshgrid(SPECIAL, SPECIAL))
    rng = np.random.default_rng(seed)
    b = (rng.standard_normal(n) * np.exp(rng.uniform(-30, 30, n))).astype(dtype)
    q = np.round(rng.standard_normal(n) * 10.0 ** rng.integers(0, 12, n))
    a = (b * q).astype(dtype)   # quotients at or next to integers
    a[: n // 3] = (rng.standard_normal(n // 3) * np.exp(rng.uniform(-30, 30, n // 3))).astype(dtype)
    a[n // 3: n // 3 + 500] = b[n // 3: n // 3 + 500] * rng.choice([-1, 1], 500)
    b[::97] = 0.0
    return np.concatenate([sa, a]), np.concatenate([sb, b])


def _composition(fn, *args, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(division_eager, "host_operands", lambda a, b: None)
        return fn(*args).numpy()


def _bits(v: np.ndarray) -> np.ndarray:
    """The bits, every NaN as one."""
    v = np.asarray(v)
    return np.where(np.isnan(v), np.abs(v.dtype.type(np.nan)), v).view(f"u{v.dtype.itemsize}")


@pytest.mark.parametrize("op", ["floor_divide"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_bits_equal_the_composition(op, dtype, monkeypatch):
    a, b = (tg.tensor(v) for v in _operands(dtype))
    fn = getattr(tg, op)
    got, want = fn(a, b).numpy(), _composition(fn, a, b, monkeypatch=monkeypatch)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(_bits(got), _bits(want))


@pytest.mark.parametrize("op", ["floor_divide"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_broadcasts_and_scalars(op, dtype, monkeypatch):
    rng = np.random.default_rng(1)
    fn = getattr(tg, op)
    col = tg.tensor((rng.standard_normal((300, 1)) * 50).astype(dtype))
    row = tg.tensor(np.array(SPECIAL[:20] + [3.0] * 30, dtype=dtype).reshape(1, 50))
    cases = [(col, row), (row, col), (col, 2.5), (-7.25, row), (col, -0.0), (row, np.inf),
             (tg.tensor(np.array(-5.5, dtype)), tg.tensor(np.array(2.0, dtype))),
             (tg.tensor(np.zeros((0, 3), dtype)), 2.0)]
    for x, y in cases:
        got, want = fn(x, y), _composition(fn, x, y, monkeypatch=monkeypatch)
        assert tuple(got.shape) == want.shape and got.dtype == tg.tensor(want).dtype
        np.testing.assert_array_equal(_bits(got.numpy()), _bits(want))


def test_floor_division_takes_the_fused_path(monkeypatch):
    """``//`` of host tensors runs no op of the composition (no ``apply``)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the composition ran")
    a = tg.tensor(np.float32([5.0, -5.0, 3.0, -0.0]))
    b = tg.tensor(np.float32([3.0, 3.0, 0.1, 2.0]))
    monkeypatch.setattr(division, "apply", refuse)
    np.testing.assert_array_equal(_bits((a // b).numpy()), _bits(np.float32([1, -2, 29, -0.0])))
    np.testing.assert_array_equal(_bits((a // 2.0).numpy()), _bits(np.float32([2, -3, 1, -0.0])))


def test_gradients_and_traces_keep_the_composition():
    a = tg.tensor(np.float32([5.0, -5.0, 3.0]), requires_grad=True)
    b = tg.tensor(np.float32([3.0, 3.0, 0.1]), requires_grad=True)
    (a % b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1, 1, 1])
    np.testing.assert_array_equal(b.grad.numpy(), [-1, 2, -29])   # -floor(a / b), torch's
    compiled = tg.compile(lambda x, y: (x // y) + (x % y))
    x, y = (tg.tensor(np.float32(v)) for v in ([7.5, -7.5, 1e38, -0.0], [2.0, 2.0, 3.0, 5.0]))
    np.testing.assert_array_equal(_bits(compiled(x, y).numpy()), _bits((x // y + x % y).numpy()))
