"""runtime.llvm_jit: compile hand-written kernels, call them, split them over threads."""
import gc

import numpy as np
import pytest
from llvmlite import ir

from tracegrad.runtime import cpu_threads, llvm_jit

I64, F64, F32 = ir.IntType(64), ir.DoubleType(), ir.FloatType()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    llvm_jit.clear_memory_cache()


def loop_kernel(mod, name, n_buf, n_scalar, body, ty=F64):
    """A kernel in the runtime ABI whose loop body is ``body(b, i, bufs, scalars)``."""
    args = [I64, I64] + [ir.PointerType()] * n_buf + [F64] * n_scalar
    fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), args), name=name)
    for a in fn.args[2:2 + n_buf]:
        a.add_attribute("noalias")
    entry, loop, done = (fn.append_basic_block(n) for n in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    b.cbranch(b.icmp_signed("<", fn.args[0], fn.args[1]), loop, done)
    b.position_at_end(loop)
    i = b.phi(I64)
    i.add_incoming(fn.args[0], entry)
    body(b, i, fn.args[2:2 + n_buf], fn.args[2 + n_buf:])
    nxt = b.add(i, ir.Constant(I64, 1))
    i.add_incoming(nxt, loop)
    b.cbranch(b.icmp_signed("<", nxt, fn.args[1]), loop, done)
    b.position_at_end(done)
    b.ret_void()


def axpy_body(b, i, bufs, scalars):
    """out[i] = a * x[i] + y[i] in float32, a passed as a double."""
    out, x, y = bufs
    a = b.fptrunc(scalars[0], F32)
    xv = b.load(b.gep(x, [i], source_etype=F32), typ=F32)
    yv = b.load(b.gep(y, [i], source_etype=F32), typ=F32)
    b.store(b.fadd(b.fmul(a, xv), yv), b.gep(out, [i], source_etype=F32))


def increment_body(b, i, bufs, scalars):
    """out[i] += 1 (float64): any iteration run twice or never shows up."""
    p = b.gep(bufs[0], [i], source_etype=F64)
    b.store(b.fadd(b.load(p, typ=F64), ir.Constant(F64, 1.0)), p)


def source(*kernels) -> str:
    mod = ir.Module(name="test")
    for k in kernels:
        loop_kernel(mod, *k)
    return str(mod)


AXPY = source(("axpy", 3, 1, axpy_body), ("inc", 1, 0, increment_body))


def test_axpy_values_and_metadata():
    cm = llvm_jit.compile_llvm(AXPY, ["axpy", "inc"])
    x = np.arange(1000, dtype=np.float32)
    y = np.full(1000, 0.5, np.float32)
    out = np.empty_like(x)
    cm.functions["axpy"](1000, [out, x, y], [2.0])
    np.testing.assert_array_equal(out, 2 * x + 0.5)
    assert not cm.from_disk_cache and cm.compile_seconds > 0
    assert "<8 x float>" in cm.optimized_ir or "<16 x float>" in cm.optimized_ir
    assert "axpy:" in cm.assembly
    assert cm.signatures == {"axpy": (3, 1), "inc": (1, 0)}


def test_integer_pointers_and_partial_range():
    k = llvm_jit.compile_llvm(AXPY, ["inc"]).functions["inc"]
    a = np.zeros(10)
    k(4, [a.ctypes.data], [])
    k.cfunc(6, 8, a.ctypes.data)  # the ABI's own start/end
    assert a.tolist() == [1, 1, 1, 1, 0, 0, 1, 1, 0, 0]


@pytest.mark.parametrize("parallel", [True, False, None])
@pytest.mark.parametrize("n", [1, 2, 3, 1000, 200_001])
def test_thread_split_covers_each_iteration_once(parallel, n):
    k = llvm_jit.compile_llvm(AXPY, ["inc"]).functions["inc"]
    a = np.zeros(n)
    k(n, [a], [], parallel=parallel)
    assert (a == 1).all()


def test_work_hint_decides_parallelism(monkeypatch):
    k = llvm_jit.compile_llvm(AXPY, ["inc"]).functions["inc"]
    calls = []
    monkeypatch.setattr(cpu_threads, "n_threads", lambda: 2)
    real = cpu_threads.thread_pool

    def spy():
        calls.append(1)
        return real()
    monkeypatch.setattr(cpu_threads, "thread_pool", spy)
    a = np.zeros(8)
    k(8, [a], [])  # tiny: direct call
    assert not calls
    k(8, [a], [], work=1 << 20)  # 8 rows of 128k elements each: split
    assert calls and (a == 2).all()


def test_argument_and_name_errors():
    cm = llvm_jit.compile_llvm(AXPY, ["axpy"])
    with pytest.raises(TypeError):
        cm.functions["axpy"](4, [np.zeros(4, np.float32)], [1.0])
    with pytest.raises(KeyError):
        llvm_jit.compile_llvm(AXPY, ["missing"])
    with pytest.raises(RuntimeError):
        llvm_jit.compile_llvm("define void @f( {", ["f"])


def test_memory_cache_and_kernel_keeps_code_alive():
    cm = llvm_jit.compile_llvm(AXPY, ["inc"])
    assert llvm_jit.compile_llvm(AXPY, ["inc"]) is cm
    k = cm.functions["inc"]
    del cm
    llvm_jit.clear_memory_cache()
    gc.collect()
    a = np.zeros(5)
    k(5, [a], [])  # the engine must still be alive through the kernel
    assert (a == 1).all()


@pytest.mark.parametrize("name", ["tracegrad.runtime.llvm_jit", "tracegrad.runtime.cpu_threads",
                                  "tracegrad.runtime.cpu_program",
                                  "tracegrad.runtime.disk_cache",
                                  "tracegrad.runtime.allocator",
                                  "tracegrad.codegen.schedule"])
def test_docstring_examples_run(name):
    import doctest
    import importlib
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
