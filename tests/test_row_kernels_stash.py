"""NOTE (row stash) in codegen.lower: a costly row value that a reduction's pass and the
output pass both need is computed once, stored into the output row and loaded back; the
values stay those of the graph (NumPy reference, loop-IR interpreter, compiled)."""
import numpy as np
import pytest

import tracegrad
from codegen_testing import Builder, eval_graph, extern_eval, run_interp
from tracegrad.codegen.schedule import plan
from tracegrad.runtime import llvm_jit
from tracegrad.runtime.cpu_program import CompiledProgram

RNG = np.random.default_rng(11)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    llvm_jit.clear_memory_cache()


def check(g, shapes, rtol=1e-5):
    """The graph planned as one kernel: compiled and interpreted against NumPy; returns
    the kernel's loop IR."""
    p = plan(g)
    assert len(p.kernels) == 1
    xs = [RNG.standard_normal(s).astype(np.float32) for s in shapes]
    ref = eval_graph(g, xs)
    for got in (run_interp(p, xs), CompiledProgram(p, extern_eval)(xs)):
        for a, r in zip(got, ref):
            np.testing.assert_allclose(a, r, rtol=rtol, atol=1e-6)
    return p.kernels[0].loop_ir


def softmax_backward_shape(b, x, m, s, gy):
    """dx = e/s * (gy - sum(gy * e/s)), e = exp(x - m): e is read by the sum's pass (under
    other ops) and by the output."""
    e = b.exp(b.sub(x, m))
    y = b.div(e, s)
    return b.mul(y, b.sub(gy, b.sum(b.mul(gy, y), axes=(1,), keepdim=True)))


def test_value_under_the_reduction_input_is_computed_once():
    b = Builder()
    x, m, s, gy = b.input((6, 40)), b.input((6, 1)), b.input((6, 1)), b.input((6, 40))
    loop_ir = check(b.graph(softmax_backward_shape(b, x, m, s, gy)),
                    [(6, 40), (6, 1), (6, 1), (6, 40)])
    assert loop_ir.count("EXP(") == 1, loop_ir


def test_softmax_backward_computes_exp_at_most_once_and_matches_eager():
    xs = RNG.standard_normal((5, 33)).astype(np.float32)
    gy = RNG.standard_normal((5, 33)).astype(np.float32)

    def f(a, g):
        return (tracegrad.softmax(a, dim=-1) * g).sum()
    x = tracegrad.from_numpy(xs).requires_grad_()
    g = tracegrad.from_numpy(gy)
    cf = tracegrad.compile(f)
    report = cf.explain(x, g)
    backward_ir = "\n".join(k.loop_ir for k in report.kernels if k.stage == "backward")
    # recomputed from x once, or (when the partitioner saves y instead) not at all
    assert backward_ir.count("EXP(") <= 1, backward_ir
    (got,) = tracegrad.autograd.grad(cf(x, g), x)
    xe = tracegrad.from_numpy(xs).requires_grad_()
    (want,) = tracegrad.autograd.grad(f(xe, g), xe)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-7)


def test_a_value_the_output_reads_through_a_view_is_recomputed():
    # out[i, j] = exp(x[i, j + 1]) / sum(exp(x[i])): the output reads exp one element over,
    # not the element the sum's pass made, so nothing may be stashed for it
    b = Builder()
    x = b.input((4, 24))
    e = b.exp(x)
    total = b.sum(e, axes=(1,), keepdim=True)
    shifted = b.pad(b.slice(e, index=(slice(None), slice(1, None))), pads=((0, 0), (0, 1)),
                    value=0.0)
    check(b.graph(b.div(shifted, total)), [(4, 24)])
