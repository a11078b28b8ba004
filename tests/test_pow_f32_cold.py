"""The compiled float32 pow's code size (NOTE (cold float32 pow) in codegen/llvm_pow.py):
one 16-lane copy of its fast path per kernel (no 8-lane version, no fast path in the
scalar function, one vector per loop iteration), and the lanes that now take glibc's pow
through the scalar function (a loop's last lanes) give eager's bits."""
from __future__ import annotations

import re

import numpy as np
import pytest

import tracegrad as tg
from tracegrad.codegen.loop_ir import BufferArg, KernelBuilder
from tracegrad.codegen.ops import Op
from tracegrad.codegen.render_llvm import render_llvm
from tracegrad.runtime import llvm_jit
from tracegrad.runtime.render_options import render_options

F32 = np.float32
AVX512 = pytest.mark.skipif(not render_options()["native_ldexp"],
                            reason="the fast loop is AVX-512's")


def _source(name: str, n: int, native_ldexp: bool) -> str:
    kb = KernelBuilder(name, outer=n)
    x, y = kb.emit(Op.LOAD, ("buf0", "o"), F32), kb.emit(Op.LOAD, ("buf1", "o"), F32)
    kb.store("buf2", "o", kb.emit(Op.POW, (x, y), F32))
    dt = np.dtype(F32)
    kernel = kb.finish([BufferArg("buf0", dt, n, False), BufferArg("buf1", dt, n, False),
                        BufferArg("buf2", dt, n, True)])
    return render_llvm(kernel, **{**render_options(), "native_ldexp": native_ldexp})


def _function_body(ir_text: str, header: str) -> str:
    body = ir_text[ir_text.index(header):]
    return body[:body.index("\n}")]


@pytest.mark.parametrize("n", [1000, 1 << 20])   # (a constant trip count of >= 256)
def test_a_pow_loop_runs_one_vector_per_iteration(n):
    text = _source("pow_loop_ids", n, native_ldexp=True)
    assert re.findall(r'"llvm\.loop\.interleave\.count", i32 (\d+)', text) == ["1"]


def test_without_avx512_the_libm_loop_is_not_held_to_one_vector():
    # (no fast path to copy: LLVM interleaves the libm loop as before)
    text = _source("pow_libm_loop", 1 << 20, native_ldexp=False)
    assert "1" not in re.findall(r'"llvm\.loop\.interleave\.count", i32 (\d+)', text)


@AVX512
@pytest.mark.parametrize("n", [1003, 1 << 20])
def test_the_kernel_holds_one_16_lane_copy_of_the_fast_path(n):
    ir_text = llvm_jit.compile_llvm(_source("pow_one_copy", n, True), ["pow_one_copy"]
                                    ).optimized_ir
    kernel = _function_body(ir_text, "define void @pow_one_copy")
    # three tables (1 / c, log2 c, 2**(j/16)), each two 8-lane permutes for 16 lanes
    assert kernel.count("@llvm.x86.avx512.vpermi2var.pd.512(") == 6
    assert not re.search(r"<8 x float>", kernel)   # no vectorised epilogue


@AVX512
def test_the_scalar_function_is_glibcs_pow():
    ir_text = llvm_jit.compile_llvm(_source("pow_scalar", 1003, True), ["pow_scalar"]
                                    ).optimized_ir
    header = re.search(r"define [^\n]*\{ float \} @(tracegrad\.pow\.f32\.\w+)\(float", ir_text)
    scalar = _function_body(ir_text, header.group(0))
    assert "vpermi2var" not in scalar
    assert not re.search(r"@tracegrad\.pow\.f32\.(inv_c|log_c|exp2)", ir_text)   # tables
    assert re.search(r"call [^\n]*@(llvm\.pow\.f64|pow|tracegrad\.pow\.f32\.\w+\.slow)\(",
                     scalar)


@pytest.mark.parametrize("n", [1, 7, 15, 16, 17, 31, 33, 1000, 65_551])
def test_every_length_matches_eager_bit_for_bit(n):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 8).astype(F32)
    y = (rng.standard_normal(n) * 3).astype(F32)
    edge = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -2.0, 17.0, 1e-45, 1.0], F32)
    x[-min(n, 9):] = edge[:min(n, 9)]   # the loop's last lanes: the scalar function's
    y[-min(n, 9):] = np.array([2.5, 3.0, -1.5, 0.5, 1.0, 3.0, 6.0, 0.5, np.inf],
                              F32)[:min(n, 9)]
    a, b = tg.tensor(x), tg.tensor(y)
    got, want = tg.compile(lambda u, v: u ** v)(a, b).numpy(), (a ** b).numpy()
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), f"x {x[~same][:4]} y {y[~same][:4]} got {got[~same][:4]}"
