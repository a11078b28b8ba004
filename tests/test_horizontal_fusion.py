"""NOTE (horizontal fusion): an optimizer group's independent update kernels run as one
kernel (codegen/horizontal.py), in a compiled step and in eager ``fused=True`` steps, with
the values (NaN and inf included) of the separate kernels."""
import numpy as np
import pytest

import tracegrad
import tracegrad.nn as nn
from tracegrad.codegen.graph import Graph
from tracegrad.codegen.horizontal import merge_segments
from tracegrad.codegen.interp import run_kernel
from tracegrad.codegen.ops import Op
from tracegrad.codegen.schedule import plan
from compile_step_testing import assert_same_training, make_step

optim = tracegrad.optim
_rng = np.random.default_rng(1)
BATCHES = [(tracegrad.from_numpy(_rng.standard_normal((8, 20)).astype(np.float32)),
            tracegrad.from_numpy(_rng.integers(0, 4, 8))) for _ in range(5)]


def make_mlp(hidden=16):
    tracegrad.manual_seed(0)
    return nn.Sequential(nn.Linear(20, hidden), nn.Tanh(), nn.Linear(hidden, 4))


def two_groups(model, cls, **kw):
    first, second = model[0], model[2]
    return cls([{"params": first.parameters()},
                {"params": second.parameters(), "lr": kw["lr"] * 0.5}], **kw)


def update_kernels(compiled, batch):
    return [k for k in compiled.explain(*batch).kernels if "update" in k.stage]


@pytest.mark.parametrize("cls, kw", [(optim.Adam, dict(lr=1e-2)),
                                     (optim.AdamW, dict(lr=1e-2, amsgrad=True)),
                                     (optim.SGD, dict(lr=0.1, momentum=0.9)),
                                     (optim.RMSprop, dict(lr=1e-2, centered=True)),
                                     (optim.Adagrad, dict(lr=1e-1))],
                         ids=lambda v: getattr(v, "__name__", ""))
def test_two_param_groups_update_as_two_kernels_equal_to_eager(cls, kw):
    model_e, model_c = make_mlp(), make_mlp()
    opt_e, opt_c = two_groups(model_e, cls, **kw), two_groups(model_c, cls, **kw)
    eager = make_step(model_e, opt_e)
    compiled = tracegrad.compile(make_step(model_c, opt_c), fullgraph=True)
    for i in range(60):
        eager(*BATCHES[i % 5])
        compiled(*BATCHES[i % 5])
        if i == 30:   # a runtime hyper-parameter of one group only
            for o in (opt_e, opt_c):
                o.param_groups[1]["lr"] *= 0.3
    assert_same_training(model_e, opt_e, model_c, opt_c, tol=1e-5)
    update = update_kernels(compiled, BATCHES[0])
    assert len(update) == 2, [k.ops for k in update]
    # each group's kernel holds the loops of its two parameters (and any step counts)
    assert all(k.loop_ir.count(" for h") >= 2 for k in update)


def test_a_parameter_the_pool_splits_keeps_its_own_kernel():
    """At or above runtime.cpu_threads.PARALLEL_MIN_WORK a kernel stays apart, so the pool
    still splits it; the small ones merge. (SGD: Adam's first step divides gradients near 0
    by their own size, which turns the matmuls' reassociation into 1e-4 differences.)"""
    from tracegrad.runtime.cpu_threads import PARALLEL_MIN_WORK
    hidden = PARALLEL_MIN_WORK // 20 + 1     # the first weight: 20 * hidden elements
    model_e, model_c = make_mlp(hidden), make_mlp(hidden)
    opt_e, opt_c = (optim.SGD(m.parameters(), 0.1, momentum=0.9) for m in (model_e, model_c))
    eager = make_step(model_e, opt_e)
    compiled = tracegrad.compile(make_step(model_c, opt_c), fullgraph=True)
    for i in range(3):
        eager(*BATCHES[i])
        compiled(*BATCHES[i])
    assert_same_training(model_e, opt_e, model_c, opt_c, tol=1e-5)
    update = update_kernels(compiled, BATCHES[0])
    big = [k for k in update if " for h" not in k.loop_ir]
    assert len(big) == 1 and f"float32[{20 * hidden}]" in big[0].loop_ir, [k.ops for k in update]
    assert len(update) == 2


def test_nan_and_inf_in_one_gradient_propagate_as_in_eager():
    model_e, model_c = make_mlp(), make_mlp()
    opt_e, opt_c = optim.Adam(model_e.parameters(), 1e-2), optim.Adam(model_c.parameters(), 1e-2)

    def step_of(model, opt):
        def step(x, y, poison):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            model[2].bias.grad.mul_(poison)   # Adam: inf / sqrt(inf) = NaN, 0 * g: no NaN
            opt.step()
            return loss
        return step

    eager, compiled = step_of(model_e, opt_e), tracegrad.compile(step_of(model_c, opt_c))
    ones = tracegrad.ones(4)
    poison = tracegrad.tensor([1.0, float("inf"), 0.0, 1.0])   # the last step only
    for i, scale in enumerate([ones, ones, poison]):
        eager(*BATCHES[i], scale)
        compiled(*BATCHES[i], scale)
    for p_e, p_c in zip(model_e.parameters(), model_c.parameters()):
        e, c = p_e.detach().numpy(), p_c.detach().numpy()
        np.testing.assert_array_equal(np.isnan(c), np.isnan(e))
        np.testing.assert_array_equal(np.isinf(c), np.isinf(e))
        np.testing.assert_allclose(c, e, rtol=1e-5, atol=1e-7, equal_nan=True)
    # the poisoned parameter's neighbours in the one kernel are untouched by its NaN
    assert np.isnan(model_c[2].bias.detach().numpy()).sum() == 1
    assert np.isfinite(model_c[0].weight.detach().numpy()).all()
    # the poisoned bias's rule fuses with the backward's mul_ ("backward+update", not
    # merged: only pure update kernels are); the other three parameters' rules merge
    stages = sorted(k.stage for k in update_kernels(compiled, (*BATCHES[0], poison)))
    assert stages == ["backward+update", "update"], stages


@pytest.mark.parametrize("cls, kw", [(optim.Adam, dict(lr=1e-2)),
                                     (optim.SGD, dict(lr=0.1, momentum=0.9))],
                         ids=["Adam", "SGD"])
def test_eager_fused_step_is_one_kernel_per_group(cls, kw):
    model_l, model_f = make_mlp(), make_mlp()
    opt_l = two_groups(model_l, cls, **kw)
    opt_f = two_groups(model_f, cls, fused=True, **kw)
    loop, fused = make_step(model_l, opt_l), make_step(model_f, opt_f)
    for i in range(20):
        loop(*BATCHES[i % 5])
        fused(*BATCHES[i % 5])
    assert_same_training(model_l, opt_l, model_f, opt_f, tol=1e-5)
    (program,) = opt_f._fused_programs.values()
    kernels = [k for entry in program._cache.values() for k in entry.forward_plan.kernels]
    latest = list(program._cache.values())[-1].forward_plan.kernels
    assert len(latest) == 2, [k.ops for k in kernels]


def _two_kernels(second_reads_first: bool):
    g = Graph()
    a = g.add(Op.INPUT, (), (4,), "float32", index=0)
    b = g.add(Op.INPUT, (), (6,), "float32", index=1)
    first = g.add(Op.EXP, (a.id,), (4,), "float32")
    source = first if second_reads_first else b
    second = g.add(Op.NEG, (source.id,), (4,) if second_reads_first else (6,), "float32")
    g.outputs = [first.id, second.id]
    return plan(g)


def test_merged_kernel_computes_what_the_separate_kernels_did():
    program = _two_kernels(False)
    separate = [(k.kernel, k.buffers) for k in program.kernels]
    merge_segments(program, {n.id: 0 for n in program.graph.nodes}, None, 1 << 18)
    (merged,) = program.kernels
    data = {"in0": np.array([0.0, 1.0, np.inf, np.nan], np.float32),
            "in1": np.arange(6, dtype=np.float32)}
    expected = {}
    for kernel, bound in separate:
        bufs = {arg.name: data.get(b, np.zeros(arg.size, arg.dtype))
                for arg, b in zip(kernel.buffers, bound)}
        run_kernel(kernel, bufs)
        expected.update({b: bufs[arg.name] for arg, b in zip(kernel.buffers, bound)})
    bufs = {arg.name: data.get(b, np.zeros(arg.size, arg.dtype))
            for arg, b in zip(merged.kernel.buffers, merged.buffers)}
    run_kernel(merged.kernel, bufs)
    for arg, b in zip(merged.kernel.buffers, merged.buffers):
        np.testing.assert_array_equal(bufs[arg.name], expected[b])


def test_only_independent_kernels_join_a_run():
    """A kernel reading or writing what an earlier member writes starts a new run, and so
    does one after a step that reads an earlier member's result (the merged kernel runs at
    the run's last position) or writes what a member reads."""
    from tracegrad.codegen.horizontal import _independent_runs
    steps = {0: ({"a"}, {"x"}), 1: ({"x"}, {"y"}), 2: ({"b"}, {"z"}), 3: ({"z"}, {"w"}),
             4: ({"c"}, {"v"}), 5: ({"d"}, {"c"}), 6: ({"e"}, {"u"})}
    touched = steps.__getitem__
    assert _independent_runs(list(steps), [0, 1, 2], touched) == [[0], [1, 2]]
    # step 1 (not a member) reads x, which member 0 writes
    assert _independent_runs(list(steps), [0, 2], touched) == [[0], [2]]
    apart = {0: ({"a", "s"}, {"x"}), 1: ({"q", "s"}, {"r"}), 2: ({"b", "s"}, {"z"})}
    assert _independent_runs(list(apart), [0, 2], apart.__getitem__) == [[0, 2]]
    # step 3 (not a member) reads z, which member 2 writes: 2 cannot move past it
    assert _independent_runs(list(steps), [2, 4], touched) == [[2], [4]]
    # step 5 (not a member) writes c, which member 4 reads
    assert _independent_runs(list(steps), [4, 6], touched) == [[4], [6]]


def test_a_chain_through_an_extern_is_not_merged():
    g = Graph()
    a = g.add(Op.INPUT, (), (4, 4), "float32", index=0)
    first = g.add(Op.EXP, (a.id,), (4, 4), "float32")
    product = g.add(Op.MATMUL, (first.id, first.id), (4, 4), "float32")
    g.outputs = [first.id, g.add(Op.NEG, (product.id,), (4, 4), "float32").id]
    program = plan(g)
    assert len(program.kernels) == 2
    merge_segments(program, {n.id: 0 for n in program.graph.nodes}, None, 1 << 18)
    assert len(program.kernels) == 2


def test_kernels_of_different_segments_or_too_big_stay_apart():
    program = _two_kernels(False)
    ids = [n.id for n in program.graph.nodes]
    merge_segments(program, {ids[2]: 0, ids[3]: 1}, None, 1 << 18)
    assert len(program.kernels) == 2
    program = _two_kernels(False)
    merge_segments(program, {n: 0 for n in ids}, None, 6)   # NEG's 6 elements: too many
    assert len(program.kernels) == 2
