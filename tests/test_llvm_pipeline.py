"""The kernels' code generator settings (NOTE (no LSR) in runtime.llvm_pipeline): objects
and their assembly are made with loop strength reduction off, LLVM's default comes back
afterwards, and kernels made either way compute the same values."""
import contextlib

import llvmlite.binding as llvm
import numpy as np
import pytest

import tracegrad
from tracegrad.nn import functional as F
from tracegrad.runtime import cpu_program, llvm_jit, llvm_pipeline


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    llvm_jit.clear_memory_cache()
    cpu_program._RENDERED.clear()
    yield
    llvm_jit.clear_memory_cache()


# out[i] = sum of row i of a (rows, 1024) float32 matrix: a vectorised, interleaved row
# loop whose addressing LSR rewrites (so the two settings give different instructions)
ROW_SUM = """define void @rows(i64 %s, i64 %e, ptr noalias %out, ptr noalias %x) {
entry:
  %c0 = icmp slt i64 %s, %e
  br i1 %c0, label %row, label %done
row:
  %i = phi i64 [%s, %entry], [%i1, %next]
  %base = mul i64 %i, 1024
  br label %col
col:
  %j = phi i64 [0, %row], [%j1, %col]
  %acc = phi float [0.0, %row], [%acc1, %col]
  %k = add i64 %base, %j
  %px = getelementptr float, ptr %x, i64 %k
  %v = load float, ptr %px
  %acc1 = fadd reassoc float %acc, %v
  %j1 = add i64 %j, 1
  %cj = icmp slt i64 %j1, 1024
  br i1 %cj, label %col, label %next
next:
  %po = getelementptr float, ptr %out, i64 %i
  store float %acc1, ptr %po
  %i1 = add i64 %i, 1
  %c = icmp slt i64 %i1, %e
  br i1 %c, label %row, label %done
done:
  ret void
}
"""


def _assembly(optimized_ir: str) -> str:
    return llvm_jit._target_machine().emit_assembly(llvm.parse_assembly(optimized_ir))


def test_kernels_are_emitted_without_lsr_and_the_default_comes_back():
    cm = llvm_jit.compile_llvm(ROW_SUM, ["rows"])
    assert not llvm_pipeline.kernel_codegen_active()
    default = _assembly(cm.optimized_ir)        # outside: LLVM's default, LSR on
    with llvm_pipeline.kernel_codegen():
        assert llvm_pipeline.kernel_codegen_active()
        without_lsr = _assembly(cm.optimized_ir)
    assert without_lsr != default               # the switch changes this loop's code
    assert cm.assembly == without_lsr           # the dump shows the code that runs
    assert _assembly(cm.optimized_ir) == default


def test_nested_use_keeps_the_setting_until_the_outermost_block_ends():
    with llvm_pipeline.kernel_codegen():
        with llvm_pipeline.kernel_codegen():
            pass
        assert llvm_pipeline.kernel_codegen_active()
        inner_done = _assembly(llvm_jit.compile_llvm(ROW_SUM, ["rows"]).optimized_ir)
    cm = llvm_jit.compile_llvm(ROW_SUM, ["rows"])
    assert inner_done == cm.assembly != _assembly(cm.optimized_ir)


def test_an_error_inside_restores_the_default():
    with pytest.raises(ZeroDivisionError):
        with llvm_pipeline.kernel_codegen():
            1 / 0
    assert not llvm_pipeline.kernel_codegen_active()
    cm = llvm_jit.compile_llvm(ROW_SUM, ["rows"])
    assert _assembly(cm.optimized_ir) != cm.assembly


def test_the_setting_is_part_of_the_cache_key():
    assert "without LSR" in llvm_pipeline.PIPELINE
    assert llvm_jit.PIPELINE is llvm_pipeline.PIPELINE


def _rows_fns():
    rng = np.random.default_rng(3)
    w = tracegrad.from_numpy(rng.standard_normal(1024, dtype=np.float32))
    b = tracegrad.from_numpy(rng.standard_normal(1024, dtype=np.float32))
    return {"row sum": None,
            "softmax": lambda t: tracegrad.softmax(t, dim=-1),
            "log_softmax": lambda t: tracegrad.log_softmax(t, dim=-1),
            "layer_norm": lambda t: F.layer_norm(t, (1024,), w, b, 1e-5),
            "gelu": lambda t: F.gelu(t * 3, approximate="tanh")}


@pytest.mark.parametrize("name", list(_rows_fns()))
def test_kernels_with_and_without_lsr_compute_the_same_bits(name, monkeypatch, tmp_path):
    """LSR only rewrites address arithmetic: both builds must agree bit for bit (and the
    row kernels still agree with eager mode)."""
    x_np = np.random.default_rng(0).standard_normal((37, 1024), dtype=np.float32)
    fn = _rows_fns()[name]

    def run() -> np.ndarray:
        if fn is None:
            out = np.empty(37, np.float32)
            llvm_jit.compile_llvm(ROW_SUM, ["rows"]).functions["rows"](37, [out, x_np])
            return out
        return tracegrad.compile(fn)(tracegrad.from_numpy(x_np)).numpy()
    without_lsr = run()
    llvm_jit.clear_memory_cache()
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path / "with_lsr"))
    monkeypatch.setattr(llvm_jit, "kernel_codegen", contextlib.nullcontext)
    monkeypatch.setattr(llvm_jit, "PIPELINE", llvm_jit.PIPELINE + " (LSR on)")
    with_lsr = run()
    np.testing.assert_array_equal(without_lsr, with_lsr)
    if fn is None:
        np.testing.assert_allclose(without_lsr, x_np.sum(axis=1), rtol=1e-5, atol=1e-4)
    else:
        np.testing.assert_allclose(without_lsr, fn(tracegrad.from_numpy(x_np)).numpy(),
                                   rtol=1e-5, atol=1e-5)

