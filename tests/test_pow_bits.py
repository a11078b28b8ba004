"""Float pow: eager and compiled compute one function (NOTE (one pow) in codegen/numpy_pow.py):
PyTorch's special exponents bit for bit as torch, any other float32 power correctly rounded
(checked against mpmath), compiled equal to eager bit for bit, exponent constant, symbolic
or a tensor."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg

try:   # (optional: the references of two tests; CI installs neither)
    import mpmath
except ImportError:
    mpmath = None
try:
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")
needs_mpmath = pytest.mark.skipif(mpmath is None, reason="needs mpmath")

SPECIAL = (2.0, 3.0, 0.5, -1.0, -2.0)


def _bits(a) -> np.ndarray:
    """The bits, every NaN as one (a NaN's sign and payload are not specified)."""
    a = np.asarray(a)
    return np.ascontiguousarray(np.where(np.isnan(a), abs(a.dtype.type(np.nan)), a)).view(np.uint8)


def _base(n=2000, seed=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 10).astype(np.float32)
    x[:6] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0]
    return x


@pytest.mark.parametrize("p", SPECIAL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@needs_torch
def test_special_exponents_give_torchs_bits(p, dtype):
    x = _base().astype(dtype)
    # torch 2.13's float32 sqrt here is 1 ulp off the correctly rounded value for ~10% of
    # these: 0.5 is compared with NumPy's (IEEE) sqrt
    with np.errstate(invalid="ignore"):
        want = np.sqrt(x) if p == 0.5 else (torch.from_numpy(x) ** p).numpy()
    np.testing.assert_array_equal(_bits((tg.tensor(x) ** p).numpy()), _bits(want))


def _correctly_rounded(x: float, y: float) -> float:
    with mpmath.workprec(120):
        return float(np.float32(float(mpmath.power(mpmath.mpf(x), mpmath.mpf(y)))))


@needs_mpmath
def test_a_float32_power_is_correctly_rounded():
    rng = np.random.default_rng(4)
    x = np.abs(rng.standard_normal(400) * 10).astype(np.float32) + np.float32(0.01)
    y = (rng.standard_normal(400) * 4).astype(np.float32)
    got = (tg.tensor(x) ** tg.tensor(y)).numpy()
    # the exact value rounded once to float32 (mpmath's float() rounds to a double first:
    # a double rounding off by one only within 2**-29 of a midpoint, none of these)
    want = np.float32([_correctly_rounded(float(a), float(b)) for a, b in zip(x, y)])
    np.testing.assert_array_equal(got, want)
    got_scalar = (tg.tensor(x) ** 2.5).numpy()
    np.testing.assert_array_equal(got_scalar, [_correctly_rounded(float(a), 2.5) for a in x])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", SPECIAL + (1.0, 0.0, 2.5, -0.5, 7.0))
def test_compiled_constant_exponent_matches_eager(dtype, p):
    x = tg.tensor(_base().astype(dtype))
    compiled = tg.compile(lambda x: (x + 1) ** p)
    got, want = compiled(x).numpy(), ((x + 1) ** p).numpy()
    if dtype == np.float32 or p in SPECIAL + (1.0, 0.0):
        np.testing.assert_array_equal(_bits(got), _bits(want))
    else:   # float64's general pow: NumPy's (SVML) eagerly, glibc's compiled, both < 1 ulp
        np.testing.assert_array_max_ulp(got, want, maxulp=1)


def test_compiled_tensor_exponent_matches_eager():
    x = tg.tensor(np.abs(_base()) + np.float32(0.5))
    y = tg.tensor(np.float32(np.resize(SPECIAL + (2.5, -3.0, 1.5, np.nan), x.shape[0])))
    compiled = tg.compile(lambda x, y: x ** (y + 0))
    np.testing.assert_array_equal(_bits(compiled(x, y).numpy()), _bits((x ** y).numpy()))
    # the special elements as the scalar rule
    for p in SPECIAL:
        hit = y.numpy() == p
        np.testing.assert_array_equal(_bits((x ** y).numpy()[hit]),
                                      _bits((x ** p).numpy()[hit]))


def test_symbolic_exponent_takes_the_special_rules():
    x = tg.tensor(_base())
    compiled = tg.compile(lambda x, p: x ** p, dynamic=True)
    for p in (3, 2, -1, -2, 5):
        np.testing.assert_array_equal(_bits(compiled(x, p).numpy()), _bits((x ** p).numpy()))
