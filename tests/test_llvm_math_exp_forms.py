"""The forms that make codegen.llvm_math's exp cheap in a vector loop.

NOTE (native ldexp): the exp family scaled by ``llvm.ldexp`` (one vscalefps on AVX-512)
gives the same bits as the two-step scaling it replaces, over the whole range: overflow,
denormal results, NaN and infinities included. NOTE (exp without select): NaN flows
through exp's arithmetic, so no compare and select restore it (values, NaN included:
tests/test_llvm_math.py)."""
import numpy as np
import pytest

from test_llvm_math import inputs, run, unary_loop_source
from tracegrad.runtime.llvm_jit import compile_llvm, host_has_feature

needs_avx512 = pytest.mark.skipif(not host_has_feature("avx512f"),
                                  reason="the renderer uses llvm.ldexp only on AVX-512 hosts")
SCALED = ["exp", "exp2", "expm1", "tanh", "sigmoid", "erf"]


def edges(dtype) -> np.ndarray:
    """Dense sweeps where the scaling leaves the normal range: exp's overflow and its
    denormal results, exp2's likewise."""
    if dtype == np.float32:
        spans = [(-105, -85), (86, 90), (-152, -124), (126, 130)]
    else:
        spans = [(-750, -700), (705, 712), (-1080, -1020), (1020, 1026)]
    return np.concatenate([np.linspace(lo, hi, 20001) for lo, hi in spans]).astype(dtype)


@needs_avx512
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", SCALED)
def test_native_ldexp_gives_the_same_bits(name, dtype):
    x = np.concatenate([inputs(dtype), edges(dtype)])
    two_step, native = run(name, x), run(name, x, native_ldexp=True)
    itype = np.int32 if dtype == np.float32 else np.int64
    nan = np.isnan(two_step)
    assert np.array_equal(nan, np.isnan(native))
    assert np.array_equal(two_step[~nan].view(itype), native[~nan].view(itype)), name


@needs_avx512
def test_native_ldexp_is_one_vector_instruction():
    asm = compile_llvm(unary_loop_source("exp", np.float32, native_ldexp=True), ["k"]).assembly
    assert "vscalefps" in asm and "ldexp" not in asm.replace("llvm.ldexp", "")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_keeps_nan_without_a_compare_or_an_integer_conversion(dtype):
    ir_text = compile_llvm(unary_loop_source("exp", dtype), ["k"]).optimized_ir
    assert "fcmp uno" not in ir_text and "fptosi" not in ir_text
    x = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -200.0, 1000.0], dtype)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(run("exp", x), np.exp(x))
