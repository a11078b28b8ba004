"""Compile-speed machinery: what it skips must never change an answer.

Glue code (a program's driver) compiles at O0 (NOTE (glue at O0) in runtime.llvm_jit);
identical kernels are compiled once; warm loads skip LLVM's passes."""
import numpy as np
import pytest

import tracegrad
from tracegrad.runtime import cpu_program, llvm_jit

from test_runtime_jit import AXPY


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    llvm_jit.clear_memory_cache()
    cpu_program._RENDERED.clear()


def test_opt_level_0_runs_the_same_kernel_under_its_own_key():
    assert llvm_jit.cache_key(AXPY, 0) != llvm_jit.cache_key(AXPY, 3)
    assert llvm_jit.cache_key(AXPY) == llvm_jit.cache_key(AXPY, 3)
    fast = llvm_jit.compile_llvm(AXPY, ["axpy"], opt_level=0)
    slow = llvm_jit.compile_llvm(AXPY, ["axpy"])
    assert fast is not slow
    x, y = np.arange(7, dtype=np.float32), np.ones(7, np.float32)
    outs = [np.zeros(7, np.float32), np.zeros(7, np.float32)]
    for module, out in zip((fast, slow), outs):
        module.functions["axpy"](7, [out, x, y], [2.0])
    np.testing.assert_array_equal(outs[0], 2 * x + 1)
    np.testing.assert_array_equal(outs[1], outs[0])
    # O0 ran no IR pass: the optimised text still has the source's loop, not a vector one
    assert "<8 x float>" not in fast.optimized_ir and "<16 x float>" not in fast.optimized_ir


def test_opt_level_must_be_a_known_one():
    with pytest.raises(ValueError, match=r"compile_llvm: opt_level must be one of \(0, 3\), got 2"):
        llvm_jit.compile_llvm(AXPY, ["axpy"], opt_level=2)


def test_program_drivers_compile_at_o0_and_kernels_at_o3(monkeypatch):
    levels = []
    real = cpu_program.compile_llvm

    def spy(source, names, opt_level=3):
        levels.append((names[0], opt_level))
        return real(source, names, opt_level)
    monkeypatch.setattr(cpu_program, "compile_llvm", spy)
    w = tracegrad.randn(20, 30)
    f = tracegrad.compile(lambda x: (x.mm(w).relu() * 2).sum())
    x = tracegrad.randn(8, 20)
    np.testing.assert_allclose(f(x).numpy(), ((x.mm(w)).relu() * 2).sum().numpy(), rtol=1e-5)
    assert ("tg_driver", 0) in levels
    assert all(level == 3 for name, level in levels if name != "tg_driver")
