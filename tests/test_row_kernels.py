"""Row kernels and the JIT's pass pipeline: what makes softmax-like rows and small kernels
cheap (NOTE (row reciprocal), NOTE (loop depth), NOTE (no unrolling))."""
import numpy as np
import pytest

from codegen_testing import Builder, eval_graph, extern_eval, run_interp
from tracegrad.codegen.loop_ir import BufferArg, KernelBuilder
from tracegrad.codegen.ops import Op
from tracegrad.codegen import render_llvm_vector
from tracegrad.codegen.render_llvm import render_llvm
from tracegrad.codegen.schedule import plan
from tracegrad.runtime import llvm_jit
from tracegrad.runtime.cpu_program import CompiledProgram

RNG = np.random.default_rng(7)
F32 = np.dtype(np.float32)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    llvm_jit.clear_memory_cache()


def run_both(g, inputs):
    """(program, interpreter outputs, compiled outputs, NumPy reference)."""
    p = plan(g)
    return p, run_interp(p, inputs), CompiledProgram(p, extern_eval)(inputs), eval_graph(g, inputs)


def output_loop(loop_ir: str) -> str:
    """The text of a row kernel's last loop (the one that stores full rows)."""
    return loop_ir[loop_ir.rindex("  for j"):]


def test_loop_depth_follows_loop_variables_and_accumulators():
    b = KernelBuilder("k", outer=4)
    row = b.emit(Op.MUL, (b.var_outer, b.const(8, np.int64)), np.int64)
    assert b.depth == 0 and b.loop_depth(row) == 0
    acc = b.define_acc(Op.ADD, F32, 0.0)
    r = b.begin_loop(8)
    x = b.emit(Op.LOAD, ("buf0", b.emit(Op.ADD, (row, r), np.int64)), F32)
    assert b.depth == 1 and b.loop_depth(x) == 1
    b.acc_update(acc, x)
    b.end_loop()
    j = b.begin_loop(8, "j")
    total = b.emit(Op.ACC, (acc,), F32)  # the finished sum: the same for every j
    assert b.loop_depth(total) == 0
    assert b.loop_depth(b.emit(Op.RECIP, (total,), F32)) == 0
    y = b.emit(Op.LOAD, ("buf0", b.emit(Op.ADD, (row, j), np.int64)), F32)
    assert b.loop_depth(b.emit(Op.MUL, (y, total), F32)) == 1
    b.end_loop()


def softmax(b, x):
    m = b.max(x, axes=(1,), keepdim=True)
    e = b.exp(b.sub(x, m))
    return b.div(e, b.sum(e, axes=(1,), keepdim=True))


def test_softmax_multiplies_its_rows_by_one_reciprocal():
    b = Builder()
    x = b.input((7, 300))
    xs = [RNG.standard_normal((7, 300)).astype(np.float32) * 4]
    p, interp, compiled, ref = run_both(b.graph(softmax(b, x)), xs)
    assert len(p.kernels) == 1
    out = output_loop(p.kernels[0].loop_ir)
    assert "DIV(" not in out and out.count("RECIP(") == 1 and "MUL(" in out
    for got in (interp[0], compiled[0]):
        np.testing.assert_allclose(got, ref[0], rtol=2e-6, atol=0)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)


def test_division_by_a_varying_value_stays_a_division():
    # x / y elementwise, and a row's values divided by each other: no reciprocal
    b = Builder()
    x, y = b.input((5, 64)), b.input((5, 64))
    s = b.sum(x, axes=(1,), keepdim=True)
    g = b.graph(b.div(x, y), b.div(s, b.add(b.max(y, axes=(1,), keepdim=True), s)))
    xs = [RNG.standard_normal((5, 64)).astype(np.float32),
          RNG.uniform(1, 2, (5, 64)).astype(np.float32)]
    p, interp, compiled, ref = run_both(g, xs)
    assert all("RECIP(" not in k.loop_ir for k in p.kernels)
    np.testing.assert_array_equal(compiled[0], ref[0])  # a division is exact to the last bit
    np.testing.assert_allclose(compiled[1], ref[1], rtol=1e-5)  # a sum, reassociated


def test_layer_norm_rows_divide_once():
    b = Builder()
    x = b.input((6, 128))
    mean = b.mul(b.sum(x, axes=(1,), keepdim=True), b.const(1 / 128))
    xc = b.sub(x, mean)
    var = b.mul(b.sum(b.mul(xc, xc), axes=(1,), keepdim=True), b.const(1 / 128))
    out = b.div(xc, b.sqrt(b.add(var, b.const(1e-5))))
    xs = [RNG.standard_normal((6, 128)).astype(np.float32) * 3 + 1]
    p, interp, compiled, ref = run_both(b.graph(out), xs)
    assert len(p.kernels) == 1
    assert "DIV(" not in output_loop(p.kernels[0].loop_ir)
    np.testing.assert_allclose(compiled[0], ref[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(interp[0], ref[0], rtol=1e-5, atol=1e-6)


def one_row_kernel(n: int):
    """out[j] = -(a / b if mask[j] else c) for one row of ``n``: the shape of a loss's
    backward kernel, whose outer loop has one iteration."""
    kb = KernelBuilder("k", outer=1)
    zero = kb.const(0, np.int64)
    j = kb.begin_loop(n, "j")
    idx = kb.emit(Op.ADD, (kb.emit(Op.MUL, (kb.var_outer, kb.const(n, np.int64)), np.int64), j),
                  np.int64)
    mask = kb.emit(Op.LOAD, ("buf0", idx), np.bool_)
    a, bb, c = (kb.emit(Op.LOAD, (f"buf{k}", zero), F32) for k in (1, 2, 3))
    val = kb.emit(Op.WHERE, (mask, kb.emit(Op.DIV, (a, bb), F32), c), F32)
    kb.store("buf4", idx, kb.emit(Op.NEG, (val,), F32))
    kb.end_loop()
    bufs = [BufferArg("buf0", np.dtype(bool), n, False)]
    bufs += [BufferArg(f"buf{k}", F32, 1, False) for k in (1, 2, 3)]
    bufs.append(BufferArg("buf4", F32, n, True))
    return kb.finish(bufs)


def test_short_inner_loops_are_not_unrolled_into_outer_loop_gathers():
    # NOTE (no unrolling): O3 unrolled the 32-long inner loop and vectorised the outer
    # one-iteration loop with gathers: 41 lines of IR became 3585 and took 0.3-1.3 s
    kernel = one_row_kernel(32)
    module = llvm_jit.compile_llvm(render_llvm(kernel), ["k"])
    ir_text = module.optimized_ir
    assert "gather" not in ir_text and "scatter" not in ir_text
    assert ir_text.count("\n") < 300
    mask = RNG.random(32) < 0.5
    out = np.empty(32, np.float32)
    module.functions["k"](1, [mask, np.float32([3]), np.float32([4]), np.float32([5]), out])
    np.testing.assert_array_equal(out, np.where(mask, -np.float32(0.75), -np.float32(5)))


def test_cache_key_names_the_pass_pipeline(monkeypatch):
    src = render_llvm(one_row_kernel(8))
    key = llvm_jit.cache_key(src)
    monkeypatch.setattr(llvm_jit, "PIPELINE", llvm_jit.PIPELINE + " changed")
    assert llvm_jit.cache_key(src) != key


@pytest.mark.parametrize("cols, interleaved", [(1024, True), (64, False)])
def test_row_math_loops_without_reductions_run_four_vectors_per_iteration(monkeypatch, cols,
                                                                          interleaved):
    # NOTE (interleaved math loops): exp over rows, broadcast per-row values, no reduction;
    # on the scalar path (a float64 row, or any the vector renderer declines)
    monkeypatch.setattr(render_llvm_vector, "ENABLED", False)
    b = Builder()
    x, m = b.input((4, cols)), b.input((4, 1))
    g = b.graph(b.mul(b.exp(b.sub(x, m)), m))
    p = plan(g)
    src = render_llvm(p.kernels[0].kernel)
    assert ('"llvm.loop.interleave.count", i32 4' in src) is interleaved
    xs = [RNG.standard_normal((4, cols)).astype(np.float32),
          RNG.standard_normal((4, 1)).astype(np.float32)]
    np.testing.assert_allclose(CompiledProgram(p, extern_eval)(xs)[0], eval_graph(g, xs)[0],
                               rtol=1e-6)


def test_reducing_loops_are_left_to_llvm_interleaving():
    b = Builder()
    x = b.input((4, 1024))
    src = render_llvm(plan(b.graph(softmax(b, x))).kernels[0].kernel)
    assert "llvm.loop" not in src
