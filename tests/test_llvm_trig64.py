"""Compiled float64 sin/cos for every argument (NOTE (float64 reduction) in
codegen/llvm_trig64.py, NOTE (vector variants) in codegen/llvm_vector_calls.py): against
a reference reduced exactly in Python integers, in units of the result's last place."""
import math
import re
from fractions import Fraction

import numpy as np
import pytest

from tracegrad.codegen.llvm_trig_reduce import two_over_pi_bits
from tracegrad.runtime.llvm_jit import compile_llvm, compile_llvm_many

from test_llvm_math import private_cache, run, unary_loop_source  # noqa: E402,F401

N_BITS = 1400
TWO_OVER_PI = two_over_pi_bits(N_BITS)   # 2/pi = TWO_OVER_PI 2**-N_BITS (1400 bits)
HALF_PI = Fraction(1 << N_BITS, TWO_OVER_PI)


def reference(name: str, x: float) -> float:
    """sin or cos of x reduced exactly (x 2/pi mod 4 in integers), then glibc's sin/cos
    of the small remainder r + r_lo (|r| <= pi/4, where libm is within ~0.5 ulp)."""
    mant, exp = math.frexp(abs(x))
    m, u = int(math.ldexp(mant, 53)), exp - 53
    v = m * TWO_OVER_PI                      # x 2/pi in units 2**-(N_BITS - u)
    unit = N_BITS - u
    t = v % (4 << unit) if unit >= 0 else 0
    q = (t + (1 << unit - 1)) >> unit        # nearest quarter turn
    f = Fraction(t - (q << unit), 1 << unit)
    if x < 0:
        q, f = -q, -f
    exact = f * HALF_PI
    r = float(exact)
    r_lo = float(exact - Fraction(r))
    q = (q + (name == "cos")) % 4
    y = math.cos(r) - r_lo * math.sin(r) if q % 2 else math.sin(r) + r_lo * math.cos(r)
    return -y if q >= 2 else y


def ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return np.abs(got - want) / np.spacing(np.abs(want))


def huge_arguments() -> np.ndarray:
    rng = np.random.default_rng(11)
    x = 2.0 ** rng.uniform(math.log2(1e10), 1023.99, 1500)
    pow2 = 2.0 ** np.arange(30, 1024, 3)
    # the float64 nearest a multiple of pi/2 (2**-61 quarter turns away), and its kin
    hard = [6381956970095103 * 2.0 ** 797, 5319372648326541 * 2.0 ** 797,
            np.finfo(np.float64).max, 2.0 ** 30, 1e22]
    near = [float(Fraction(int(k)) * HALF_PI * 2 ** int(s))
            for k, s in zip(rng.integers(1, 2 ** 62, 200), rng.integers(0, 900, 200))]
    x = np.concatenate([x, pow2, hard, near])
    return np.concatenate([x, -x])


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_huge_arguments_within_one_ulp(name):
    x = huge_arguments()
    want = np.array([reference(name, v) for v in x])
    err = ulps(run(name, x), want)
    assert err.max() <= 1.0, x[np.argmax(err)]   # measured 0.71 against mpmath


def test_reference_is_exact_where_numpy_is_not():
    # glibc (so NumPy) is 7.95 ulp off here; mpmath at 3000 bits: -4.68716592425462761e-19
    x = 6381956970095103 * 2.0 ** 797
    assert reference("cos", x) == -4.687165924254628e-19
    assert run("cos", np.array([x]))[0] == -4.687165924254628e-19


def test_huge_lanes_among_small_ones():
    # one huge lane in a vector of small ones: the cold path fixes only that lane
    rng = np.random.default_rng(3)
    x = rng.uniform(-10, 10, 1003)
    x[::37] = 2.0 ** rng.uniform(31, 1000, x[::37].size)
    for name in ("sin", "cos"):
        want = np.array([reference(name, v) for v in x])
        assert ulps(run(name, x), want).max() <= 2.5   # Cody-Waite below 2**30: 2.2


def test_boundaries_and_special_values():
    below = np.nextafter(2.0 ** 30, 0)
    x = np.array([below, 2.0 ** 30, -below, -2.0 ** 30, 0.0, -0.0, 5e-324, 1e-300,
                  np.inf, -np.inf, np.nan])
    s, c = run("sin", x), run("cos", x)
    for got, name in ((s, "sin"), (c, "cos")):
        want = np.array([reference(name, v) for v in x[:4]])
        assert ulps(got[:4], want).max() <= 2.5
        assert np.isnan(got[-3:]).all()
    assert np.array_equal(np.signbit(s[4:6]), [False, True]) and (c[4:8] == 1).all()
    assert np.array_equal(s[6:8], x[6:8])


def test_loop_inlines_a_vector_version():
    # the design this rests on: the vectoriser widens the call into the vector version,
    # inlined after it (NOTE (inlined vector variants)): the loop runs the vector
    # Cody-Waite path and calls the scalar slow path only from its cold block
    ir_text = compile_llvm(unary_loop_source("sin", np.float64), ["k"]).optimized_ir
    kernel = ir_text[ir_text.index("define void @k"):]
    kernel = kernel[:kernel.index("\n}")]
    assert re.search(r"call <(8|4) x double> @llvm\.rint\.v(8|4)f64", kernel)
    assert re.search(r"call \{ <(8|4) x double>, <\1 x double> \} "
                     r"@\"?tracegrad\.sincos\.f64\.1\.v\1\.lanes", kernel)
    assert not re.search(r"@\"?tracegrad\.sincos\.f64\.1\.v\d+\(", kernel)   # inlined


def test_batch_of_modules_with_the_same_helpers():
    # two modules defining the same weak_odr helpers link into one batch module; each
    # member's optimised text (JitModule.assembly) still parses
    # (kernels of their own: a source compiled before would come from the memory cache)
    names = ["batch", "batch", "batch2"]
    sources = [unary_loop_source(fn, np.float64).replace('"k"', f'"{name}"')
               for fn, name in zip(("sin", "cos", "sin"), names)]
    mods = compile_llvm_many(sources[:2], "batch") + compile_llvm_many(sources[2:], "batch2")
    x = np.array([1.5, -2.0 ** 40, 3.0, 1e300, 0.25, 7.0, -1e20, 2.0, 9.0])
    for mod, name, fn in zip(mods, names, (np.sin, np.cos, np.sin)):
        out = np.empty_like(x)
        mod.functions[name](x.size, [out, x], [])
        want = np.array([reference(fn.__name__, v) for v in x])
        assert ulps(out, want).max() <= 2.5
        assert "tracegrad.sincos.f64.1.v" in mod.assembly
