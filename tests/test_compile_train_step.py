"""A whole training step (zero_grad, forward, backward, clip, optimizer step) compiled as
one program: equal to eager over many steps, written back, retraced when it must be."""
import warnings

import numpy as np
import pytest

import tracegrad
import tracegrad.nn as nn
import tracegrad.nn.functional as F
from tracegrad.compiler.errors import TraceError
from compile_step_testing import assert_same_training, make_cnn, make_lstm, relative

optim = tracegrad.optim
OPTIMIZERS = [
    (optim.SGD, dict(lr=0.1)),
    (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    (optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, maximize=False)),
    (optim.Adam, dict(lr=1e-2)),
    (optim.Adam, dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    (optim.AdamW, dict(lr=1e-2, amsgrad=True)),
    (optim.RMSprop, dict(lr=1e-2)),
    (optim.RMSprop, dict(lr=1e-2, momentum=0.5, centered=True, weight_decay=1e-3)),
    (optim.Adagrad, dict(lr=1e-1, lr_decay=0.01, weight_decay=1e-3)),
    (optim.Adadelta, dict(lr=1.0, weight_decay=1e-3)),
    (optim.Adamax, dict(lr=1e-2, maximize=True)),
]
_rng = np.random.default_rng(0)
BATCHES = [(tracegrad.from_numpy(_rng.standard_normal((8, 20)).astype(np.float32)),
            tracegrad.from_numpy(_rng.integers(0, 4, 8))) for _ in range(5)]


def make_mlp():
    tracegrad.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 16), nn.Tanh(), nn.Linear(16, 4))


def make_step(model, opt, clip=None, set_to_none=True):
    # not compile_step_testing.make_step: that one negates the loss under maximize=True,
    # and these tests climb the loss itself (Adamax below), as they always have
    def step(x, y):
        opt.zero_grad(set_to_none=set_to_none)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss
    return step


@pytest.mark.parametrize("clip", [None, 0.5])
@pytest.mark.parametrize("cls, kw", OPTIMIZERS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_compiled_step_equals_eager_over_100_steps(cls, kw, clip):
    model_e, model_c = make_mlp(), make_mlp()
    opt_e, opt_c = cls(model_e.parameters(), **kw), cls(model_c.parameters(), **kw)
    eager = make_step(model_e, opt_e, clip)
    compiled = tracegrad.compile(make_step(model_c, opt_c, clip), fullgraph=True)
    for i in range(100):
        le = eager(*BATCHES[i % 5])
        lc = compiled(*BATCHES[i % 5])
        assert relative(le.item(), lc.item()) < 1e-4
    assert_same_training(model_e, opt_e, model_c, opt_c)
    # the first call traces with no .grad and no state, the second with both; then replay
    assert compiled.cache_info().misses == 2 and compiled.cache_info().hits == 98


def test_scheduler_changes_lr_without_recompiling():
    model_e, model_c = make_mlp(), make_mlp()
    opt_e = optim.Adam(model_e.parameters(), lr=1e-2)
    opt_c = optim.Adam(model_c.parameters(), lr=1e-2)
    sched_e = optim.lr_scheduler.StepLR(opt_e, 3, gamma=0.5)
    sched_c = optim.lr_scheduler.StepLR(opt_c, 3, gamma=0.5)
    eager = make_step(model_e, opt_e)
    compiled = tracegrad.compile(make_step(model_c, opt_c), fullgraph=True)
    for i in range(12):
        eager(*BATCHES[i % 5])
        compiled(*BATCHES[i % 5])
        sched_e.step()
        sched_c.step()
    assert opt_c.param_groups[0]["lr"] == pytest.approx(1e-2 / 16)
    assert compiled.cache_info().misses == 2
    assert_same_training(model_e, opt_e, model_c, opt_c, tol=1e-5)


def test_grads_written_back_keep_eager_identity_and_accumulate():
    """Without zero_grad, gradients accumulate into the same .grad tensor, as eagerly."""
    model_e, model_c = make_mlp(), make_mlp()

    def accumulate(model):
        def step(x, y):
            F.cross_entropy(model(x), y).backward()
        return step
    eager, compiled = accumulate(model_e), tracegrad.compile(accumulate(model_c))
    for i in range(4):
        eager(*BATCHES[i])
        compiled(*BATCHES[i])
        if i == 1:
            held = [p.grad for p in model_c.parameters()]
    for a, b, g in zip(model_e.parameters(), model_c.parameters(), held):
        np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-5, atol=1e-7)
        assert b.grad is g   # accumulated in place after the first step made it
        assert a.grad.numpy().shape == b.grad.numpy().shape


def test_zero_grad_without_set_to_none_writes_zeros_in_place():
    model_e, model_c = make_mlp(), make_mlp()
    opt_e, opt_c = optim.SGD(model_e.parameters(), lr=0.1), optim.SGD(model_c.parameters(), lr=0.1)
    eager = make_step(model_e, opt_e, set_to_none=False)
    compiled = tracegrad.compile(make_step(model_c, opt_c, set_to_none=False), fullgraph=True)
    for i in range(6):
        eager(*BATCHES[i % 5])
        compiled(*BATCHES[i % 5])
    assert_same_training(model_e, opt_e, model_c, opt_c, tol=1e-5)


def test_two_parameters_never_share_a_written_back_gradient():
    w1 = tracegrad.ones(3, requires_grad=True)
    w2 = tracegrad.ones(3, requires_grad=True)

    @tracegrad.compile
    def step():
        (w1 + w2).sum().backward()   # both gradients are the same traced value
    step()
    w1.grad.mul_(2)
    assert w2.grad.tolist() == [1.0, 1.0, 1.0]


def test_adding_a_param_group_retraces():
    model = make_mlp()
    first, second = list(model.parameters())[:2], list(model.parameters())[2:]
    opt = optim.SGD(first, lr=0.1)
    compiled = tracegrad.compile(make_step(model, opt), fullgraph=True)
    for i in range(3):
        compiled(*BATCHES[i])
    before = [p.detach().numpy().copy() for p in second]
    misses = compiled.cache_info().misses
    opt.add_param_group({"params": second, "lr": 0.1})
    compiled(*BATCHES[3])
    assert compiled.cache_info().misses == misses + 1
    assert all(not np.array_equal(b, p.detach().numpy()) for b, p in zip(before, second))


def test_toggling_requires_grad_retraces_and_freezes():
    model = make_mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    compiled = tracegrad.compile(make_step(model, opt))
    for i in range(3):
        compiled(*BATCHES[i])
    frozen = model[0].weight
    frozen.requires_grad_(False)
    kept = frozen.detach().numpy().copy()
    misses = compiled.cache_info().misses
    for i in range(2):
        compiled(*BATCHES[i])
    assert compiled.cache_info().misses > misses
    np.testing.assert_array_equal(frozen.detach().numpy(), kept)


def test_item_mid_step_falls_back_with_the_line_and_raises_with_fullgraph():
    model = make_mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        if loss.item() > 1e9:   # reads the value on the host
            return loss
        loss.backward()
        opt.step()
        return loss
    before = model[0].weight.detach().numpy().copy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracegrad.compile(step)(*BATCHES[0])
    assert any("test_compile_train_step.py" in str(w.message) for w in caught)
    assert not np.array_equal(before, model[0].weight.detach().numpy())  # eager step ran
    with pytest.raises(TraceError, match="fullgraph"):
        tracegrad.compile(step, fullgraph=True)(*BATCHES[0])


def test_nan_mid_step_propagates_as_in_eager():
    w_e = tracegrad.tensor([1.0, -1.0], requires_grad=True)
    w_c = tracegrad.tensor([1.0, -1.0], requires_grad=True)
    opts = optim.SGD([w_e], lr=0.1), optim.SGD([w_c], lr=0.1)

    def make(w, opt):
        def step():
            opt.zero_grad()
            w.sqrt().sum().backward()   # sqrt(-1): nan value and gradient
            opt.step()
        return step
    make(w_e, opts[0])()
    tracegrad.compile(make(w_c, opts[1]))()
    np.testing.assert_array_equal(np.isnan(w_c.detach().numpy()), np.isnan(w_e.detach().numpy()))
    np.testing.assert_allclose(w_c.detach().numpy(), w_e.detach().numpy(), equal_nan=True)


def test_optimizer_step_alone_compiles_with_lr_a_runtime_input():
    w = tracegrad.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.5)
    step = tracegrad.compile(lambda: opt.step(), fullgraph=True)
    w.grad = tracegrad.tensor([1.0, 1.0])
    step()
    opt.param_groups[0]["lr"] = 0.25
    step()
    assert w.tolist() == [0.25, 1.25] and step.cache_info().misses == 1


def test_explain_labels_forward_backward_and_update_kernels():
    model = make_mlp()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    compiled = tracegrad.compile(make_step(model, opt), fullgraph=True)
    compiled(*BATCHES[0])
    compiled(*BATCHES[1])
    report = compiled.explain(*BATCHES[2])
    stages = {k.stage for k in report.kernels}
    assert "forward" in stages and any("update" in s for s in stages), stages
    assert any("backward" in s for s in stages), stages
    assert "[update]" in str(report) or "+update]" in str(report)
    # Adam's rule (both moments, the bias-corrected step, the parameter) of every
    # parameter and the step counts run as ONE kernel per group (NOTE (horizontal fusion))
    (update,) = [k for k in report.kernels if k.stage == "update"]
    n_params = len(list(model.parameters()))
    assert update.ops.count("SQRT") == n_params and "[update]" in str(update)


@pytest.mark.parametrize("cls, kw", [(optim.Adam, dict(lr=1e-2)),
                                     (optim.SGD, dict(lr=0.1, momentum=0.9))],
                         ids=["Adam", "SGD"])
def test_fused_eager_step_equals_the_per_parameter_loop(cls, kw):
    model_l, model_f = make_mlp(), make_mlp()
    opt_l, opt_f = cls(model_l.parameters(), **kw), cls(model_f.parameters(), fused=True, **kw)
    loop, fused = make_step(model_l, opt_l), make_step(model_f, opt_f)
    for i in range(20):
        loop(*BATCHES[i % 5])
        fused(*BATCHES[i % 5])
        if i == 10:
            for o in (opt_l, opt_f):
                o.param_groups[0]["lr"] *= 0.5
    assert_same_training(model_l, opt_l, model_f, opt_f, tol=1e-5)
    (program,) = opt_f._fused_programs.values()
    # SGD traces its first step (momentum buffer = grad) and then the general one; Adam's
    # first step is its general rule over zero moments, so one trace serves both. The lr
    # change and the new .grad tensors of every step replay.
    info = program.cache_info()
    assert info.misses == (1 if cls is optim.Adam else 2) and info.hits == 20 - info.misses


def test_parameter_and_state_updates_are_computed_over_their_own_storage():
    """NOTE (in-place results): no fresh result array copied back per written tensor."""
    from tracegrad.codegen.schedule import Storage
    model = make_mlp()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    compiled = tracegrad.compile(make_step(model, opt), fullgraph=True)
    for i in range(3):
        compiled(*BATCHES[i])
    (entry,) = [e for e in compiled._cache.values()]
    inplace = [b for b in entry.forward_plan.buffers.values() if b.storage is Storage.INPLACE]
    # parameter, both moments and the step count of every parameter
    assert len(inplace) == 4 * len(list(model.parameters()))


def test_a_write_whose_old_value_a_reduction_reads_is_not_made_in_place():
    def make(w):
        def f():
            with tracegrad.no_grad():
                w.sub_(w.sum() * 0.1)   # every element reads all others: no in-place kernel
                w.mul_(w.flip(0))       # reads a permuted view of the written tensor
        return f
    w_e, w_c = tracegrad.arange(4096.0) / 4096, tracegrad.arange(4096.0) / 4096
    eager, compiled = make(w_e), tracegrad.compile(make(w_c))
    for _ in range(3):
        eager()
        compiled()
    np.testing.assert_allclose(w_c.numpy(), w_e.numpy(), rtol=1e-5)


@pytest.mark.parametrize("build, batch", [
    (make_cnn, lambda r: (r.standard_normal((8, 1, 8, 8)), r.integers(0, 10, 8))),
    (make_lstm, lambda r: (r.standard_normal((4, 5, 6)), r.standard_normal((4, 8)))),
], ids=["cnn", "lstm"])
@pytest.mark.parametrize("cls, kw", [(optim.SGD, dict(lr=0.05, momentum=0.9)),
                                     (optim.Adam, dict(lr=1e-3))], ids=["SGD", "Adam"])
def test_cnn_and_lstm_steps_compiled_whole_equal_eager(build, batch, cls, kw):
    rng = np.random.default_rng(1)
    data = []
    for _ in range(3):
        x, y = batch(rng)
        data.append((tracegrad.from_numpy(x.astype(np.float32)),
                     tracegrad.from_numpy(y if y.dtype.kind == "i" else y.astype(np.float32))))

    def loss(model, x, y):
        out = model(x)
        return F.cross_entropy(out, y) if y.dtype == tracegrad.int64 else (out - y).pow(2).mean()
    models = build(), build()
    opts = [cls(m.parameters(), **kw) for m in models]

    def make(model, opt):
        def step(x, y):
            opt.zero_grad()
            out = loss(model, x, y)
            out.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            return out
        return step
    eager = make(models[0], opts[0])
    compiled = tracegrad.compile(make(models[1], opts[1]), fullgraph=True)
    for i in range(30):
        eager(*data[i % 3])
        compiled(*data[i % 3])
    assert_same_training(models[0], opts[0], models[1], opts[1])
    assert compiled.cache_info().misses <= 2


def test_switching_train_and_eval_retraces():
    tracegrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 16), nn.Dropout(0.5), nn.Linear(16, 4))
    opt = optim.SGD(model.parameters(), lr=0.1)
    compiled = tracegrad.compile(make_step(model, opt))
    x, y = BATCHES[0]
    for _ in range(3):
        compiled(x, y)
    misses = compiled.cache_info().misses
    model.eval()
    w = [p.detach().numpy().copy() for p in model.parameters()]
    # in eval mode dropout is the identity: the reference is the two linear layers
    eager_model = nn.Sequential(nn.Linear(20, 16), nn.Linear(16, 4))
    with tracegrad.no_grad():
        for e, p in zip(eager_model.parameters(), model.parameters()):
            e.copy_(p)
    eager_model_opt = optim.SGD(eager_model.parameters(), lr=0.1)
    compiled(x, y)
    assert compiled.cache_info().misses == misses + 1
    make_step(eager_model, eager_model_opt)(x, y)
    for a, b in zip(eager_model.parameters(), model.parameters()):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert any(not np.array_equal(a, p.detach().numpy()) for a, p in zip(w, model.parameters()))


def test_capture_docstring_example_runs():
    import doctest
    import importlib
    result = doctest.testmod(importlib.import_module("tracegrad.optim._capture"))
    assert result.attempted > 0 and result.failed == 0


def test_load_state_dict_between_compiled_steps_is_followed():
    model_e, model_c = make_mlp(), make_mlp()
    opt_e = optim.Adam(model_e.parameters(), lr=1e-2)
    opt_c = optim.Adam(model_c.parameters(), lr=1e-2)
    eager = make_step(model_e, opt_e)
    compiled = tracegrad.compile(make_step(model_c, opt_c), fullgraph=True)
    for i in range(3):
        eager(*BATCHES[i])
        compiled(*BATCHES[i])
    saved = opt_e.state_dict()
    saved["param_groups"][0]["lr"] = 5e-3
    import copy
    opt_e.load_state_dict(copy.deepcopy(saved))
    opt_c.load_state_dict(copy.deepcopy(saved))
    for i in range(3, 8):
        eager(*BATCHES[i % 5])
        compiled(*BATCHES[i % 5])
    assert_same_training(model_e, opt_e, model_c, opt_c, tol=1e-5)


def test_guard_retraces_never_warn_about_changing_signatures():
    w = tracegrad.ones(3, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    step = tracegrad.compile(make_step_scalar(w, opt))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(12):   # the momentum state is dropped every call: a guard fails
            step()
            opt.state.clear()
    assert step.cache_info().misses > 10


def test_a_grad_cleared_between_calls_is_served_by_the_two_programs():
    # the grad is cleared every other call: one program accumulates into it, the other
    # starts it, and neither is traced again (the .grad is read as the leaf's current one)
    w = tracegrad.ones(3, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    step = tracegrad.compile(make_step_scalar(w, opt))
    w_eager = tracegrad.ones(3, requires_grad=True)
    eager = make_step_scalar(w_eager, optim.SGD([w_eager], lr=0.1))
    for k in range(12):
        step()
        eager()
        if k % 2:
            w.grad = w_eager.grad = None
    np.testing.assert_allclose(w.detach().numpy(), w_eager.detach().numpy(), rtol=1e-6)
    assert step.cache_info().misses == 2


def make_step_scalar(w, opt):
    def step():
        (w * w).sum().backward()
        opt.step()
    return step


@pytest.mark.parametrize("make", [
    lambda p: tracegrad.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.5),
    lambda p: tracegrad.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    lambda p: tracegrad.optim.Adam(p, lr=0.05),
])
def test_a_step_that_falls_back_after_the_update_trains_exactly_as_eager(make):
    # the trace made the optimizer's state before .item() stopped it: the fallback must not
    # find that state (SGD's first step copies the gradient; a dampened zero buffer differs)
    def run(compiled):
        tracegrad.manual_seed(0)
        model = nn.Linear(4, 2)
        opt = make(model.parameters())

        def step(x, y):
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            loss.item()
            return loss
        f = tracegrad.compile(step) if compiled else step
        x, y = tracegrad.randn(8, 4), tracegrad.randn(8, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(3):
                f(x, y)
        return model.weight.detach().numpy().copy()
    np.testing.assert_array_equal(run(True), run(False))
