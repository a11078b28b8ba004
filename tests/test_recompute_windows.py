"""A cheap value recomputed by readers that each read one window of it (NOTE (clones at
the readers' window), codegen/recompute.py): the clone is made at the window, so an
unrolled loop's steps lower once whatever their step and the loop's length, and every
program computes what the graph does."""
import numpy as np
import pytest

from tracegrad.codegen import schedule
from tracegrad.codegen.fuse import fuse
from tracegrad.codegen.lower import LoweringCache
from tracegrad.codegen.ops import Op
from tracegrad.codegen.passes import simplify
from tracegrad.codegen.schedule import plan
from tracegrad.runtime.cpu_program import CompiledProgram

from codegen_testing import Builder, eval_graph, extern_eval, run_interp

B, F = 3, 8


@pytest.fixture(autouse=True)
def check_reuse(monkeypatch):
    monkeypatch.setattr(schedule, "CHECK_REUSE", True)


def _projected_steps(T: int, window: str = "step"):
    """xw = x * w + bias over (T, B, F) (a cheap value over one big input), read one
    window per step by h_t = tanh(window_t(xw) + h_{t-1} @ u) (the matmul ends each step's
    kernel). ``window``: "step" (xw[t]), "strided" (xw[t, ::2] padded to F by a second
    read), "permuted" (xw.permute(1, 0, 2)[:, t]), "whole" (xw[t] + xw.sum() read whole
    as well)."""
    b = Builder()
    x, w, bias, u = b.input((T, B, F)), b.input((F,)), b.input((F,)), b.input((F, F))
    xw = b.add(b.mul(x, w), bias)
    h, outs = None, []
    for t in range(T):
        if window == "permuted":
            xt = b.reshape(b.slice(b.permute(xw, perm=(1, 0, 2)),
                                   index=(slice(None), slice(t, t + 1), slice(None))),
                           shape=(B, F))
        else:
            xt = b.reshape(b.slice(xw, index=(slice(t, t + 1), slice(None), slice(None))),
                           shape=(B, F))
        if window == "strided":
            half = b.slice(xt, index=(slice(None), slice(0, F, 2)))
            xt = b.add(xt, b.expand(b.reshape(b.sum(half, axes=(1,)), shape=(B, 1)),
                                    shape=(B, F)))
        z = xt if h is None else b.add(xt, b.matmul(h, u))
        if window == "whole":
            z = b.add(z, b.sum(xw, axes=(0, 1, 2)))
        h = b.tanh(z)
        outs.append(h)
    rng = np.random.default_rng(T)
    inputs = [rng.standard_normal(s).astype(np.float32)
              for s in ((T, B, F), (F,), (F,), (F, F))]
    return b.graph(*outs), inputs


def _lowered(g) -> int:
    f = fuse(simplify(g))
    cache = LoweringCache(check=True)
    for i, gr in enumerate(f.groups):
        cache.lower(f.graph, gr, f"k{i}", f.edges)
    return cache.lowered


def test_steps_reading_a_window_of_a_recomputed_value_lower_once_at_any_length():
    # t=0 (no h_{t-1}) and every later step: 2, whatever T (before: one per step)
    assert [_lowered(_projected_steps(T)[0]) for T in (3, 5, 8)] == [2, 2, 2]


def test_the_clone_reads_its_inputs_through_the_window():
    g, _ = _projected_steps(4)
    f = fuse(simplify(g))
    clones = [n for n in f.graph.nodes if n.op is Op.ADD and n.shape == (B, F)
              and any(f.graph.node(i).op is Op.MUL for i in n.inputs)]
    assert len(clones) == 4   # one x * w + bias per step, each of the step's shape
    assert all(f.graph.node(n).shape != (4, B, F) for gr in f.groups for n in gr.nodes
               if f.graph.node(n).op in (Op.ADD, Op.MUL))


@pytest.mark.parametrize("window", ["step", "strided", "permuted", "whole"])
@pytest.mark.parametrize("T", [2, 5])
def test_programs_compute_what_the_graph_does(window, T):
    g, inputs = _projected_steps(T, window)
    p = plan(g)
    want = eval_graph(g, inputs)
    for got, w in zip(run_interp(p, inputs), want):
        np.testing.assert_allclose(got.reshape(w.shape), w, rtol=1e-5, atol=1e-5)
    for got, w in zip(CompiledProgram(p, extern_eval)(inputs), want):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-5)
