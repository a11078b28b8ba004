"""Work the planner shares between fusion rounds and between plans of one process:
node facts across fusion rounds (NOTE (fusion rounds share node facts), codegen/fuse.py),
loop-IR texts across plans (``schedule._text_after_name``), and the input edges dropped
when planning ends (NOTE (edges end with planning), codegen/schedule.py)."""
import numpy as np
import pytest

from tracegrad.codegen import fuse as fuse_module
from tracegrad.codegen import schedule
from tracegrad.codegen.loop_ir import BufferArg, LoopKernel
from tracegrad.codegen.lower import LoweringCache, lower_group
from tracegrad.codegen.ops import Op
from tracegrad.codegen.passes import simplify
from tracegrad.codegen.schedule import plan
from tracegrad.runtime.cpu_program import CompiledProgram

from codegen_testing import Builder, eval_graph, extern_eval

F32 = np.dtype("float32")


def _exp_of_view(base_index: int):
    """x, y: (4, 8) inputs; v = x or y (by ``base_index``) permuted; out = exp(v)."""
    b = Builder()
    x, y = b.input((4, 8)), b.input((4, 8))
    v = b.permute((x, y)[base_index], perm=(1, 0))
    return simplify(b.graph(b.exp(v)))


def test_a_node_whose_input_object_changed_gets_fresh_edges():
    """The reader keeps its object; its input view, same id, now reads another base: the
    facts of the first graph must not serve it (a recompute round rewires readers so)."""
    g1, g2 = _exp_of_view(0), _exp_of_view(1)
    exp1 = next(n for n in g1.nodes if n.op is Op.EXP)
    view2 = next(n for n in g2.nodes if n.op is Op.PERMUTE)
    # the same EXP object in both graphs, reading a PERMUTE of the same id
    g2 = g2.rebuilt([exp1 if n.op is Op.EXP else n for n in g2.nodes], g2.outputs)
    assert view2.id == exp1.inputs[0]
    facts: dict = {}
    first = fuse_module._Fuser(g1, facts=facts)
    second = fuse_module._Fuser(g2, facts=facts)
    assert first.edges[exp1.id][0].src == g1.inputs[0]
    assert second.edges[exp1.id][0].src == g2.inputs[1]
    assert second.edges[exp1.id] == fuse_module.input_edges(g2, exp1)


def _relu_step(n: int):
    """A linear layer's ReLU read by the forward and by a backward where: the cheap value
    ``a <= 0`` is recomputed by each reader (a second fusion round)."""
    b = Builder()
    x, w, bias, g = b.input((n, 6)), b.input((6, 5)), b.input((5,)), b.input((n, 5))
    a = b.add(b.matmul(x, w), bias)
    mask = b.cmple(a, b.const(0.0))
    out = b.where(mask, b.const(0.0), a)
    grad = b.where(mask, b.const(0.0), b.mul(g, b.const(2.0)))
    return b.graph(b.sum(out, axes=(0, 1)), grad)


@pytest.mark.parametrize("n", [3, 7])
def test_shared_facts_fuse_as_fresh_ones(monkeypatch, n):
    g = simplify(_relu_step(n))
    shared = fuse_module.fuse(g)
    rounds = []
    fresh_fuser = fuse_module._Fuser

    def without_facts(graph, forced=frozenset(), facts=None):
        rounds.append(graph)
        return fresh_fuser(graph, forced, None)
    monkeypatch.setattr(fuse_module, "_Fuser", without_facts)
    fresh = fuse_module.fuse(g)
    assert len(rounds) >= 2   # the case exercises a recompute round
    assert [gr.members for gr in shared.groups] == [gr.members for gr in fresh.groups]
    assert shared.steps == fresh.steps and shared.group_of == fresh.group_of
    assert str(shared.graph) == str(fresh.graph)


def test_planned_programs_drop_edges_and_still_run():
    g = _relu_step(4)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(g.node(i).shape).astype(np.float32) for i in g.inputs]
    p = plan(g)
    assert p.fusion.edges == {}
    got = CompiledProgram(p, extern_eval)(inputs)
    for a, e in zip(got, eval_graph(g, inputs)):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)
    for step, group in zip(p.kernels, [p.fusion.groups[r] for k, r in p.fusion.steps
                                       if k == "group"]):
        # lowering computes the edges again where they are gone
        assert str(lower_group(p.graph, group, step.name, p.fusion.edges)) == str(step.kernel)


def _kernel(body, size: int) -> LoopKernel:
    return LoopKernel("k0", [BufferArg("buf0", F32, size, False),
                             BufferArg("buf1", F32, 4, True)], 4, body)


def test_loop_ir_text_follows_the_buffer_sizes_of_a_shared_body(monkeypatch):
    monkeypatch.setattr(schedule, "_TEXTS", {})
    body: list = []
    small, big = _kernel(body, 4), _kernel(body, 64)
    assert schedule._text_after_name(small) == str(small).split("(", 1)[1]
    assert schedule._text_after_name(big) == str(big).split("(", 1)[1]
    assert "float32[64]" in schedule._text_after_name(big)


def test_loop_ir_text_of_a_recycled_body_id_is_not_reused(monkeypatch):
    """An entry is keyed by the body's id and holds the body: a new body that happens to
    get a dead body's id must be formatted afresh."""
    stale_body, body = ["stale"], []
    k = _kernel(body, 4)
    key = (id(body), k.outer, k.outer_var,
           tuple((a.name, a.dtype.str, a.size, a.is_output) for a in k.buffers))
    monkeypatch.setattr(schedule, "_TEXTS", {key: (stale_body, "stale text")})
    assert schedule._text_after_name(k) == str(k).split("(", 1)[1]


def test_plans_at_two_lengths_share_texts_and_keep_their_own_sizes(monkeypatch):
    monkeypatch.setattr(schedule, "_LOWERING", LoweringCache(check=True))
    monkeypatch.setattr(schedule, "CHECK_REUSE", True)
    monkeypatch.setattr(schedule, "_TEXTS", {})
    for T in (3, 5):
        b = Builder()
        x, w = b.input((T, 2, 8)), b.input((8,))
        outs = [b.tanh(b.mul(b.reshape(b.slice(x, index=(slice(t, t + 1),)), shape=(2, 8)), w))
                for t in range(T)]
        p = plan(b.graph(*outs))
        for step in p.kernels:
            assert step.loop_ir == str(step.kernel)
            assert f"float32[{T * 16}]" in step.loop_ir

