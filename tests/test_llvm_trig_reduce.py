"""Compiled float32 sin/cos over the whole float32 range (NOTE (float32 reduction) in
codegen/llvm_trig_reduce.py): every exponent, the arguments closest to a multiple of
pi/2, special values; against NumPy's float64 sin/cos of the same float32 (libm reduces
exactly), in units of the float32 result's last place."""
import numpy as np
import pytest

import tracegrad as torch
from tracegrad.codegen.llvm_trig_reduce import WORDS, two_over_pi_bits

from test_llvm_math import run  # noqa: E402  (the JIT-compiled loop over emit_math)

FDLIBM_2_OVER_PI = 0xA2F9836E4E441529FC2757D1F534DDC0DB6295993C439041FE5163AB  # 224 bits


def ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    unit = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - want) / unit


def closest_to_quarter_turns(exponent: int) -> np.ndarray:
    """The 8 float32 with this binary exponent whose x 2/pi lies nearest an integer
    (every significand tried, in 64-bit fixed point: error < 2**-40 of a quarter turn)."""
    u = exponent - 23
    bits = two_over_pi_bits(256)
    frac = ((bits << u) if u >= 0 else (bits >> -u)) >> (256 - 64) & ((1 << 64) - 1)
    m = np.arange(1 << 23, 1 << 24, dtype=np.uint64)
    v = m * np.uint64(frac)                      # frac(M 2**u 2/pi), mod 2**64
    dist = np.minimum(v, np.uint64(0) - v)
    best = m[np.argpartition(dist, 8)[:8]].astype(np.float64)
    return np.ldexp(best, u).astype(np.float32)


def test_two_over_pi_bits():
    assert two_over_pi_bits(224) == FDLIBM_2_OVER_PI
    assert (WORDS[0] & (1 << 64) - 1) >> 32 == 0xA2F9836E


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_every_exponent(name):
    rng = np.random.default_rng(7)
    exps = np.repeat(np.arange(-149, 128), 400)
    sig = rng.integers(1 << 23, 1 << 24, exps.size)
    x = np.ldexp(sig.astype(np.float64), exps - 23).astype(np.float32)
    x = np.concatenate([x, -x, np.float32([np.finfo(np.float32).max, 2.0 ** 25, 2.0 ** 25 - 2])])
    err = ulps(run(name, x), getattr(np, name)(x.astype(np.float64)))
    assert err.max() <= 0.55, x[np.argmax(err)]   # measured: 0.529 (sin), 0.529 (cos)


@pytest.fixture(scope="module")
def nearest_quarter_turns():
    # 16367173 * 2**72 is float32's nearest approach to a multiple of pi/2 (2**-29.9 of a
    # quarter turn): where a reduction short of ~60 bits loses the result altogether
    x = [np.float32(16367173 * 2.0 ** 72)]
    x += [closest_to_quarter_turns(e) for e in range(-1, 128, 9)]
    return np.concatenate([np.hstack(x), -np.hstack(x)])


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_arguments_nearest_multiples_of_half_pi(name, nearest_quarter_turns):
    x = nearest_quarter_turns
    err = ulps(run(name, x), getattr(np, name)(x.astype(np.float64)))
    assert err.max() <= 0.55, x[np.argmax(err)]


def test_special_values():
    x = np.float32([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-45, -1e-45])
    s, c = run("sin", x), run("cos", x)
    assert np.isnan(s[:3]).all() and np.isnan(c[:3]).all()
    assert np.array_equal(np.signbit(s[3:5]), [False, True]) and (s[3:5] == 0).all()
    assert (c[3:] == 1).all() and np.array_equal(s[5:], x[5:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_matches_eager_on_huge_arguments(dtype):
    x = np.array([1e10, -3e12, 1e20, -1e30, 3e38, 16367173 * 2.0 ** 72], dtype)
    compiled = torch.compile(lambda t: (t.sin(), t.cos(), t.tan()), fullgraph=True)
    eager = [f(x.astype(np.float64)) for f in (np.sin, np.cos, np.tan)]
    for got, want in zip(compiled(torch.from_numpy(x)), eager):
        np.testing.assert_allclose(got.numpy(), want, rtol=4 * np.finfo(dtype).eps)
