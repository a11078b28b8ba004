"""Compiled float32 pow without a libm call per lane (NOTE (fast float32 pow) in
codegen/llvm_pow_f32.py): bit for bit glibc's pow of the widened operands rounded once
(the same kernel with every lane sent to it) and eager's (NumPy's float64 pow rounded),
over millions of random pairs and every special: negative bases with integer exponents,
signed zeros, infinities, NaN, subnormals, huge and tiny exponents, exact float32
midpoints (17 ** 6) and results next to the overflow and underflow thresholds. (Without
AVX-512 the loop is libm's either way.)"""
from __future__ import annotations

import re

import numpy as np
import pytest

import tracegrad as tg
from tracegrad.codegen import llvm_pow
from tracegrad.codegen.loop_ir import BufferArg, KernelBuilder
from tracegrad.codegen.numpy_pow import power
from tracegrad.codegen.ops import Op
from tracegrad.codegen.render_llvm import render_llvm
from tracegrad.runtime import llvm_jit
from tracegrad.runtime.render_options import render_options

F32 = np.float32
EDGE = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0,
        1e-45, -1e-45, 1.1754942e-38, 1.1754944e-38, 3.4028235e38, -3.4028235e38,
        1.0000001, 0.99999994, -1.0000001, 17.0, 1e10, 1e-10, 25.0, 1.5, 2.5, -2.5, 7.0,
        -7.0, 0.25, 4.0, 127.0, 128.0, -128.0, 149.0, 150.0, -149.0, -150.0, 1e30, -1e30,
        16777216.0, 16777217.0, 8388607.0, 0.1, 1.0 / 3.0]


def _kernel(name: str, n: int):
    kb = KernelBuilder(name, outer=n)
    x, y = kb.emit(Op.LOAD, ("buf0", "o"), F32), kb.emit(Op.LOAD, ("buf1", "o"), F32)
    kb.store("buf2", "o", kb.emit(Op.POW, (x, y), F32))
    dt = np.dtype(F32)
    kernel = kb.finish([BufferArg("buf0", dt, n, False), BufferArg("buf1", dt, n, False),
                        BufferArg("buf2", dt, n, True)])
    return llvm_jit.compile_llvm(render_llvm(kernel, **render_options()), [name])


@pytest.fixture(scope="module")
def kernels():
    """(fast, reference): one loop, the reference's lanes all taking glibc's pow."""
    n = 1 << 16
    fast = _kernel("pow_fast_f32", n)
    every_lane = pytest.MonkeyPatch()

    def all_slow(b, x, y, native_ldexp):
        out, need = fast_path(b, x, y, native_ldexp)
        return out, b.or_(need, b.not_(need))
    fast_path = llvm_pow.pow_f32_fast
    every_lane.setattr(llvm_pow, "pow_f32_fast", all_slow)
    every_lane.setattr(llvm_pow, "_POW_F32_VERSION", "ref")   # another function name
    try:
        reference = _kernel("pow_ref_f32", n)
    finally:
        every_lane.undo()
    return n, fast, reference


def _run(module, name, n, x, y):
    out = np.empty_like(x)
    for s in range(0, x.size, n):
        xs, ys = np.ascontiguousarray(x[s:s + n]), np.ascontiguousarray(y[s:s + n])
        o = np.zeros(n, F32)
        if xs.size < n:
            xs, ys = np.resize(xs, n), np.resize(ys, n)
        module.functions[name](n, [xs, ys, o], [])
        out[s:s + n] = o[:min(n, x.size - s)]
    return out


def _check(kernels, x, y):
    n, fast, reference = kernels
    got = _run(fast, "pow_fast_f32", n, x, y)
    want = _run(reference, "pow_ref_f32", n, x, y)
    bad = got.view(np.uint32) != want.view(np.uint32)
    assert not bad.any(), f"{bad.sum()} differ: x {x[bad][:4]} y {y[bad][:4]} " \
                          f"got {got[bad][:4]} want {want[bad][:4]}"
    with np.errstate(all="ignore"):
        eager = power(x, y)
    same = (got.view(np.uint32) == eager.view(np.uint32)) | (np.isnan(got) & np.isnan(eager))
    assert same.all(), f"eager: x {x[~same][:4]} y {y[~same][:4]}"


@pytest.mark.skipif(not render_options()["native_ldexp"], reason="the fast loop is AVX-512's")
def test_the_loop_calls_pow_only_in_its_cold_path():
    module = _kernel("pow_fast_ir", 1024)
    ir_text = module.optimized_ir
    body = ir_text[ir_text.index("define void @pow_fast_ir"):]
    body = body[:body.index("\n}")]
    assert not re.search(r"@(llvm\.)?pow\b", body.split("cold")[0])
    assert re.search(r"tracegrad\.pow\.f32\.[\w.]*\.v\d+\.lanes", body)


def test_every_pair_of_edge_values(kernels):
    x, y = (v.ravel().astype(F32) for v in np.meshgrid(EDGE, EDGE))
    _check(kernels, x, y)


def test_random_pairs_over_every_binade(kernels):
    rng = np.random.default_rng(0)
    n = 3_000_000
    sign = rng.choice([-1.0, 1.0], n)
    x = (sign * 2.0 ** rng.uniform(-152, 129, n)).astype(F32)
    kind = rng.integers(0, 5, n)
    y = np.select([kind == 0, kind == 1, kind == 2, kind == 3],
                  [rng.integers(-60, 60, n),                       # integer powers
                   rng.standard_normal(n) * 3,
                   rng.integers(-400, 400, n) / 4.0,               # quarters and halves
                   2.0 ** rng.uniform(-30, 40, n) * rng.choice([-1, 1], n)],
                  rng.standard_normal(n) * 150 / np.maximum(np.abs(np.log2(np.abs(x))), 1))
    _check(kernels, x, y.astype(F32))


def test_bases_near_one_and_results_near_the_thresholds(kernels):
    rng = np.random.default_rng(1)
    n = 1_000_000
    x = (1 + rng.integers(-2000, 2000, n) * 2.0 ** -24).astype(F32)   # within 2000 ulps of 1
    y = (rng.choice([-1, 1], n) * 2.0 ** rng.uniform(0, 32, n)).astype(F32)
    _check(kernels, x, y)
    # x ** y next to 2**128 (overflow), 2**-126 (subnormal), 2**-149 and 2**-150 (zero)
    t = rng.choice([128.0, -126.0, -149.0, -150.0, -151.0], n) + rng.uniform(-0.01, 0.01, n)
    x = np.abs(rng.standard_normal(n) * 100).astype(F32) + F32(1.5)
    _check(kernels, x, (t / np.log2(x.astype(np.float64))).astype(F32))


def test_exact_midpoints_take_glibcs_pow(kernels):
    """Results exactly halfway between two float32s (ties to even) and next to them."""
    xs, ys = [], []
    for k in range(3, 4096, 2):
        for n in range(2, 25):
            if 2 ** 24 <= k ** n < 2 ** 25:   # an odd 25-bit integer: a midpoint
                for j in (-6, 0, 3):
                    xs.append(k * 2.0 ** j)
                    ys.append(n)
    for k in range(257, 323, 2):   # (k*k) ** 1.5 = k**3, 25 bits
        xs.append(k * k)
        ys.append(1.5)
    x, y = np.array(xs, F32), np.array(ys, F32)
    assert len(x) > 100
    _check(kernels, np.concatenate([x, -x, np.nextafter(x, F32(0))]), np.tile(y, 3))


@pytest.mark.parametrize("p", [2.5, -0.75, 7.0, -3.0, 1.0 / 3.0, 1e-3, 40.0])
def test_compiled_constant_exponent_matches_eager(p):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(100_003) * 10).astype(F32)   # (an odd length: the loop's tail)
    x[:8] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 3e38]
    t = tg.tensor(x)
    got, want = tg.compile(lambda a: a ** p)(t).numpy(), (t ** p).numpy()
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), f"x {x[~same][:4]} got {got[~same][:4]} want {want[~same][:4]}"

