"""codegen.llvm_math against NumPy float64, through JIT-compiled vector loops.

Bounds asserted (relative error against the float64 reference rounded from NumPy):
float32: 3e-7 (~2.5 ulp; erf 1.2e-6); float64: 1e-15 (erf 4e-15); sqrt, abs, floor,
ceil, round, trunc exact. sin/cos are checked for |x| <= 1e4 in
relative error away from their zeros and in absolute error everywhere.
"""
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from llvmlite import ir

try:
    from tracegrad.codegen.llvm_math import FUNCTIONS, emit_math
    from tracegrad.runtime.llvm_jit import compile_llvm, host_has_feature
except ImportError:  # package not installed yet: import the folders directly
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tracegrad.codegen.llvm_math import FUNCTIONS, emit_math
    from tracegrad.runtime.llvm_jit import compile_llvm, host_has_feature

I64 = ir.IntType(64)


@pytest.fixture(autouse=True, scope="module")
def private_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:  # keep the user's cache out of the tests
        mp.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield
TYPES = {np.float32: ir.FloatType(), np.float64: ir.DoubleType()}


def unary_loop_source(name: str, dtype, native_ldexp: bool = False) -> str:
    """``out[i] = name(x[i])`` for start <= i < end, in the runtime kernel ABI."""
    ty = TYPES[dtype]
    mod = ir.Module(name=f"{name}_{np.dtype(dtype).name}")
    fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [I64, I64, ir.PointerType(),
                                                         ir.PointerType()]), name="k")
    start, end, out, inp = fn.args
    out.add_attribute("noalias")
    inp.add_attribute("noalias")
    entry, loop, done = (fn.append_basic_block(n) for n in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    b.cbranch(b.icmp_signed("<", start, end), loop, done)
    b.position_at_end(loop)
    i = b.phi(I64)
    i.add_incoming(start, entry)
    x = b.load(b.gep(inp, [i], source_etype=ty), typ=ty)
    b.store(emit_math(b, name, x, native_ldexp), b.gep(out, [i], source_etype=ty))
    nxt = b.add(i, ir.Constant(I64, 1))
    i.add_incoming(nxt, loop)
    b.cbranch(b.icmp_signed("<", nxt, end), loop, done)
    b.position_at_end(done)
    b.ret_void()
    return str(mod)


_compiled = {}


def run(name: str, x: np.ndarray, native_ldexp: bool = False):
    key = (name, x.dtype.type, native_ldexp)
    if key not in _compiled:
        _compiled[key] = compile_llvm(unary_loop_source(name, x.dtype.type, native_ldexp),
                                      ["k"])
    out = np.empty_like(x)
    _compiled[key].functions["k"](x.size, [out, x], [])
    return out


def inputs(dtype) -> np.ndarray:
    info = np.finfo(dtype)
    rng = np.random.default_rng(0)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, info.tiny, -info.tiny, info.smallest_subnormal,
               -info.smallest_subnormal, info.max, -info.max, 1.0, -1.0, 0.5, 2.0]
    logs = np.logspace(np.log10(float(info.smallest_subnormal)), np.log10(float(info.max)) - 1e-9,
                       4000, dtype=np.float64)
    mags = [logs, rng.uniform(0, 2, 3000), rng.uniform(0, 20, 3000), rng.uniform(0, 800, 2000)]
    body = np.concatenate(mags)
    return np.concatenate([special, body, -body]).astype(dtype)


REFS = {
    "exp": np.exp, "exp2": np.exp2, "expm1": np.expm1, "log": np.log, "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p, "tanh": np.tanh, "sin": np.sin, "cos": np.cos, "sqrt": np.sqrt,
    "abs": np.abs, "floor": np.floor, "ceil": np.ceil, "round": np.round, "trunc": np.trunc,
}
BOUND = {np.float32: 3e-7, np.float64: 1e-15}


def reference(name, x):
    with np.errstate(all="ignore"):
        if name == "erf":  # math.erf: within ~1 ulp of float64, and no scipy needed
            return np.frompyfunc(math.erf, 1, 1)(x.astype(np.float64)).astype(np.float64)
        if name == "sigmoid":  # x87 long double: exact enough for a float64 reference
            xl = x.astype(np.longdouble)
            e = np.exp(-np.abs(xl))
            return np.where(xl < 0, e / (1 + e), 1 / (1 + e)).astype(np.float64)
        return REFS[name](x.astype(np.float64))


def rel_error(got, want, dtype):
    """Relative error, with the reference rounded to ``dtype`` (so its rounding is free)
    and values in the denormal range compared in units of the smallest normal."""
    with np.errstate(over="ignore"):  # references beyond the dtype's range round to inf
        want_r = want.astype(dtype).astype(np.float64)
    same = (got == want_r) | (np.isnan(got) & np.isnan(want_r))
    scale = np.maximum(np.abs(want), float(np.finfo(dtype).tiny))
    with np.errstate(all="ignore"):
        err = np.abs(got.astype(np.float64) - want) / scale
    return np.where(same, 0.0, err)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", [n for n in FUNCTIONS if n not in ("sin", "cos")])
def test_against_numpy(name, dtype):
    x = inputs(dtype)
    got = run(name, x)
    want = reference(name, x)
    assert np.array_equal(np.isnan(got), np.isnan(want)), name
    bound = BOUND[dtype] * (4 if name == "erf" else 1)
    err = rel_error(got, want, dtype)
    worst = np.nanargmax(err)
    assert err[worst] <= bound, f"{name} {x[worst]!r}: got {got[worst]!r}, want {want[worst]!r}"
    # Signed zeros and infinities are exact.
    exact = (want == 0) | np.isinf(want)
    assert np.array_equal(np.signbit(got[exact]), np.signbit(want[exact]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sin", "cos"])
def test_sin_cos(name, dtype):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-10, 10, 20000), rng.uniform(-1e4, 1e4, 20000),
                        np.arange(-200, 200) * (np.pi / 4), [0.0, -0.0, 1e-30, -1e-30],
                        np.logspace(-40, -1, 200)]).astype(dtype)
    got = run(name, x).astype(np.float64)
    want = reference(name, x)
    eps = float(np.finfo(dtype).eps)
    assert np.abs(got - want).max() <= 2 * eps  # absolute, also at the zeros
    away = np.abs(want) > 1e-3
    assert rel_error(got[away], want[away], dtype).max() <= BOUND[dtype]
    tiny = np.abs(x) < 1e-3
    if name == "sin":
        assert rel_error(got[tiny], want[tiny], dtype).max() <= BOUND[dtype]
    special = np.array([np.inf, -np.inf, np.nan, 1e30, -3e38], dtype)
    got = run(name, special)
    assert np.isnan(got[:3]).all() and (np.abs(got[3:]) <= 1).all()


def test_round_half_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 3.4999998], np.float32)
    assert np.array_equal(run("round", x), np.round(x))


@pytest.mark.parametrize("name", ["exp", "log", "tanh", "sigmoid", "erf", "sin", "cos", "expm1",
                                  "log1p"])
def test_float32_loop_vectorises(name):
    ir_text = compile_llvm(unary_loop_source(name, np.float32), ["k"]).optimized_ir
    assert "call float @" not in ir_text.replace("call float @llvm.", "")  # no libm calls
    assert "call double @" not in ir_text.replace("call double @llvm.", "")
    # NOTE: float32 sin/cos reduce in float64, so they widen to the double vector width.
    wide = "<{} x double>" if name in ("sin", "cos") else "<{} x float>"
    if host_has_feature("avx512f"):
        assert wide.format(8 if name in ("sin", "cos") else 16) in ir_text
    elif host_has_feature("avx2"):
        assert wide.format(4 if name in ("sin", "cos") else 8) in ir_text
    else:
        pytest.skip("host has neither AVX2 nor AVX-512")
