"""Issue 11's whole training step as a user writes it (``import tracegrad as torch``,
PyTorch's names): compiled against eager, and the host reads that must stop the trace."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn.functional as F
from tracegrad import nn


def _batches(n=3, batch=16, features=20, classes=5, short=None):
    rng = np.random.default_rng(0)
    data = [(torch.tensor(rng.standard_normal((batch, features)).astype(np.float32)),
             torch.tensor(rng.integers(0, classes, batch))) for _ in range(n)]
    if short:
        data.append((data[0][0][:short], data[0][1][:short]))
    return data


def _issue_example(fullgraph):
    """The issue's example (smaller layers): Adam + StepLR + clip_grad_norm_."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, 10)

    def train_step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss
    if fullgraph is not None:
        train_step = torch.compile(train_step, fullgraph=fullgraph)
    return model, opt, sched, train_step


@pytest.mark.parametrize("fullgraph", [False, True])
def test_issue_example_matches_eager_with_a_short_last_batch(fullgraph):
    data = _batches(short=7)
    runs = []
    for compiled in (True, False):
        model, opt, sched, step = _issue_example(fullgraph if compiled else None)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)   # no fallback warning
            losses = [float(step(x, y)) for _ in range(12) for x, y in data]
        for _ in range(12):
            sched.step()
        runs.append((model, opt, losses, step))
    (model_c, opt_c, losses_c, step_c), (model_e, opt_e, losses_e, _) = runs
    np.testing.assert_allclose(losses_c, losses_e, rtol=1e-4)
    for pc, pe in zip(model_c.parameters(), model_e.parameters()):
        np.testing.assert_allclose(pc.detach().numpy(), pe.detach().numpy(), rtol=1e-4,
                                   atol=1e-5)
        np.testing.assert_allclose(pc.grad.numpy(), pe.grad.numpy(), rtol=1e-4, atol=1e-6)
    assert opt_c.param_groups[0]["lr"] == opt_e.param_groups[0]["lr"]
    steps_c = [float(s["step"]) for s in opt_c.state_dict()["state"].values()]
    assert steps_c == [float(s["step"]) for s in opt_e.state_dict()["state"].values()]
    # first call, lazily made state, the short batch: no compile per step or per lr
    assert step_c.cache_info().misses <= 3


def _step_printing_the_loss(model, opt):
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        print(loss)
        loss.backward()
        opt.step()
        return loss
    return step


def test_print_of_a_traced_loss_falls_back_with_the_line(capsys):
    (x, y), = _batches(n=1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 5))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    step = torch.compile(_step_printing_the_loss(model, opt))
    with pytest.warns(RuntimeWarning, match=r"test_user_train_step\.py:\d+ \(print\(loss\)\)"):
        loss = step(x, y)
    printed = capsys.readouterr().out
    assert "traced" not in printed                    # never a placeholder
    assert f"{float(loss):.4f}" in printed            # the real value, printed eagerly


def test_print_of_a_traced_loss_raises_with_fullgraph():
    (x, y), = _batches(n=1)
    model = nn.Sequential(nn.Linear(20, 5))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    weight = model[0].weight.detach().clone()
    step = torch.compile(_step_printing_the_loss(model, opt), fullgraph=True)
    with pytest.raises(RuntimeError, match="printing a tensor"):
        step(x, y)
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), weight.numpy())


def test_module_zero_grad_and_manual_updates_in_a_compiled_step():
    # model.zero_grad() (not the optimizer's), clip_grad_value_, a hand-written SGD update
    # and an EMA copy: one program for every step, values as eager
    (x, y), = _batches(n=1)

    def make():
        torch.manual_seed(0)
        model = nn.ModuleDict({"net": nn.Sequential(nn.Linear(20, 16), nn.Tanh(),
                                                    nn.Linear(16, 5)),
                               "unused": nn.Linear(2, 2)})
        ema = [p.detach().clone() for p in model["net"].parameters()]

        def step(x, y):
            loss = F.cross_entropy(model["net"](x), y)
            model.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_value_(model.parameters(), 0.05)
            with torch.no_grad():
                for p, e in zip(model["net"].parameters(), ema):
                    p.add_(p.grad, alpha=-0.1)
                    p.clamp_(-0.3, 0.3)
                    e.mul_(0.9).add_(p, alpha=0.1)
            return loss
        return model, ema, step
    model_c, ema_c, step_c = make()
    model_e, ema_e, step_e = make()
    step_c = torch.compile(step_c, fullgraph=True)
    for _ in range(6):
        for model, step in ((model_c, step_c), (model_e, step_e)):
            model["unused"].weight.grad = torch.ones(2, 2)   # cleared by zero_grad()
            step(x, y)
    assert step_c.cache_info().misses <= 2
    assert model_c["unused"].weight.grad is None
    for a, b in zip(list(model_c.parameters()) + ema_c, list(model_e.parameters()) + ema_e):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5,
                                   atol=1e-7)


def _momentum_step(after_update=None):
    """``(w, step)``: one parameter, SGD with momentum, ``after_update(w)`` ending it."""
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(4, 3))
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    x = torch.randn(5, 4)

    def step():
        opt.zero_grad()
        loss = (x @ w).square().mean()
        loss.backward()
        opt.step()
        if after_update is not None:
            after_update(w)
        return loss
    return w, step


def _hooked_step(compiled, fullgraph=False):
    w, step = _momentum_step()
    calls = []
    w.register_post_accumulate_grad_hook(lambda p: calls.append(float(p.grad.sum())))
    if compiled:
        step = torch.compile(step, fullgraph=fullgraph)
    return w, calls, step


def test_a_post_accumulate_grad_hook_runs_at_every_step():
    w_e, calls_e, step_e = _hooked_step(False)
    w_c, calls_c, step_c = _hooked_step(True)
    with pytest.warns(RuntimeWarning, match="register_post_accumulate_grad_hook"):
        step_c()
    for _ in range(2):
        step_c()
    for _ in range(3):
        step_e()
    np.testing.assert_allclose(calls_c, calls_e, rtol=1e-6)
    np.testing.assert_allclose(w_c.detach().numpy(), w_e.detach().numpy(), rtol=1e-6)
    _, _, step_f = _hooked_step(True, fullgraph=True)
    with pytest.raises(RuntimeError, match="post-accumulate-grad hook"):
        step_f()


def test_a_trace_failing_after_the_update_leaves_the_parameters_usable():
    # the trace writes w (opt.step), then fails as it ends (a .grad set to a tensor made
    # outside it): w must be given back, so that the eager fallback (and the user) see it
    outside = torch.ones(4, 3)

    def set_grad(w):
        w.grad = outside
    w_c, step_c = _momentum_step(set_grad)
    w_e, step_e = _momentum_step(set_grad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        losses_c = [float(torch.compile(step_c)()) for _ in range(3)]
    losses_e = [float(step_e()) for _ in range(3)]
    np.testing.assert_allclose(losses_c, losses_e, rtol=1e-6)
    np.testing.assert_allclose(w_c.detach().numpy(), w_e.detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("kind", ["scales", "logs"])
def test_tensor_hooks_in_a_compiled_backward(kind):
    def make():
        torch.manual_seed(0)
        w = nn.Parameter(torch.randn(4, 3))
        log = []
        if kind == "scales":
            w.register_hook(lambda g: g * 2)               # pure: traced
        else:
            w.register_hook(lambda g: log.append(float(g.sum())))   # side effect
        x = torch.randn(5, 4)

        def step():
            w.grad = None
            loss = (x @ w).square().mean()
            loss.backward()
            return loss
        return w, log, step
    w_c, log_c, step_c = make()
    w_e, log_e, step_e = make()
    step_c = torch.compile(step_c)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(3):
            step_c()
            step_e()
    np.testing.assert_allclose(w_c.grad.numpy(), w_e.grad.numpy(), rtol=1e-6)
    if kind == "scales":
        assert step_c.cache_info().misses <= 2 and not record
    else:   # every call ran the hook (the trace's own run comes on top)
        assert len(log_c) >= len(log_e) == 3
        assert log_c[-3:] == pytest.approx(log_e)
        assert any("register_hook" in str(w.message) for w in record)
