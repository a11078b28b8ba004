"""Reads in the user's code that tracegrad calls back from a stretch it runs with the
access-path recorder paused (NOTE (untraced stretches) in tracegrad/_untraced.py): a
module's forward inside a library container, a tensor hook in the engine, an optimizer
closure and step hook, a library module's subclass. Each is guarded: after a change the
compiled function retraces and agrees with eager."""
from __future__ import annotations

import copy
import sys

import numpy as np
import pytest

import tracegrad as torch
from tracegrad import _untraced, nn


class _Scaled(nn.Module):
    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(self, x):
        return x * CFG["scale"] + self.cfg["shift"]


CFG = {"scale": 2.0}


def test_a_user_module_inside_a_library_container():
    cfg = {"shift": 1.0}
    model = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.ReLU(), _Scaled(cfg)))
    f = torch.compile(model)
    x = torch.randn(4, 3)
    try:
        for change in (None, lambda: CFG.update(scale=3.0), lambda: cfg.update(shift=-2.0)):
            if change is not None:
                change()
            np.testing.assert_allclose(f(x).detach().numpy(), model(x).detach().numpy(),
                                       rtol=1e-6)
    finally:
        CFG["scale"] = 2.0
    assert f.cache_info().misses == 3


class _ScaledLinear(nn.Linear):   # a library module's subclass: its forward is the user's
    def forward(self, x):
        return super().forward(x) * CFG["scale"]


def test_a_library_module_subclass_read():
    model = nn.Sequential(nn.Sequential(_ScaledLinear(3, 2)))   # reached from a paused one
    f = torch.compile(model)
    x = torch.randn(4, 3)
    try:
        for scale in (2.0, 5.0):
            CFG["scale"] = scale
            np.testing.assert_allclose(f(x).detach().numpy(), model(x).detach().numpy(),
                                       rtol=1e-6)
    finally:
        CFG["scale"] = 2.0
    assert f.cache_info().misses == 2


def test_a_forward_set_on_a_library_module_instance():
    inner = nn.Linear(3, 2)
    plain_forward = inner.forward
    inner.forward = lambda x: plain_forward(x) * CFG["scale"]   # the user's, on the instance
    model = nn.Sequential(nn.Sequential(inner))
    f = torch.compile(model)
    x = torch.randn(4, 3)
    try:
        for scale in (2.0, 5.0):
            CFG["scale"] = scale
            np.testing.assert_allclose(f(x).detach().numpy(), model(x).detach().numpy(),
                                       rtol=1e-6)
    finally:
        CFG["scale"] = 2.0
    assert f.cache_info().misses == 2


def test_a_users_activation_function_in_a_transformer_layer():
    layer = nn.TransformerEncoderLayer(4, 1, dim_feedforward=6, dropout=0.0,
                                       activation=lambda x: x.relu() * CFG["scale"])
    f = torch.compile(nn.Sequential(layer))   # its forward reached from a paused call
    x = torch.randn(2, 3, 4)
    try:
        for scale in (2.0, 5.0):
            CFG["scale"] = scale
            np.testing.assert_allclose(f(x).detach().numpy(), layer(x).detach().numpy(),
                                       rtol=1e-5, atol=1e-6)
    finally:
        CFG["scale"] = 2.0
    assert f.cache_info().misses == 2


def _training_pair(make_step):
    """The parameters after compiled and eager steps, one model and optimizer each."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    twin = copy.deepcopy(model)
    compiled = torch.compile(make_step(model))
    eager = make_step(twin)
    return model, twin, compiled, eager


def _same_parameters(a, b):
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5,
                                   atol=1e-7)


def test_a_tensor_hook_run_by_loss_backward_in_a_training_step():
    cfg = {"s": 2.0}

    def make_step(model):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)

        def step(x):
            opt.zero_grad()
            h = model[0](x)
            h.register_hook(lambda g: g * cfg["s"])
            loss = model[2](model[1](h)).square().mean()
            loss.backward()
            opt.step()
            return loss
        return step
    model, twin, f, eager = _training_pair(make_step)
    x = torch.randn(5, 3)
    for s in (2.0, 2.0, 2.0, -3.0):   # the second call retraces: .grad was None
        cfg["s"] = s
        f(x)
        eager(x)
        _same_parameters(model, twin)
    assert f.cache_info().misses == 3


@pytest.mark.parametrize("where", ["closure", "pre_hook"])
def test_an_optimizer_closure_and_step_hook(where):
    cfg = {"s": 2.0}

    def make_step(model):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        if where == "pre_hook":
            def scale_grads(optimizer, args, kwargs):
                for p in model.parameters():
                    p.grad.mul_(cfg["s"])
            opt.register_step_pre_hook(scale_grads)

        def step(x):
            def closure():
                opt.zero_grad()
                loss = model(x).square().mean() * (cfg["s"] if where == "closure" else 1.0)
                loss.backward()
                return loss
            if where == "closure":
                return opt.step(closure)
            loss = closure()
            opt.step()
            return loss
        return step
    model, twin, f, eager = _training_pair(make_step)
    x = torch.randn(5, 3)
    for s in (2.0, 2.0, 2.0, 0.5):   # the second call retraces: .grad was None
        cfg["s"] = s
        np.testing.assert_allclose(f(x).detach().numpy(), eager(x).detach().numpy(),
                                   rtol=1e-5)
        _same_parameters(model, twin)
    assert f.cache_info().misses == 3


def test_the_recorder_is_back_after_an_error_in_a_paused_stretch():
    model = nn.Sequential(nn.Linear(3, 2))
    f = torch.compile(lambda x: model(x) * CFG["scale"])
    before = sys.gettrace()
    with pytest.raises(Exception, match="3"):
        f(torch.ones(2, 5))   # a shape error inside the library forward
    assert sys.gettrace() is before and _untraced.paused.hook is None
    np.testing.assert_allclose(f(torch.ones(1, 3)).detach().numpy(),
                               (model(torch.ones(1, 3)) * CFG["scale"]).detach().numpy(),
                               rtol=1e-6)


def test_a_debuggers_trace_function_is_never_paused():
    seen = set()

    def theirs(frame, event, arg):   # a debugger's or coverage's trace function
        if event == "call":
            seen.add(frame.f_code.co_name)
        return None
    model = nn.Sequential(nn.Linear(3, 2))
    f = torch.compile(lambda x: model(x).sum())
    before = sys.gettrace()
    sys.settrace(theirs)
    try:
        f(torch.ones(1, 3))
    finally:
        sys.settrace(before)
    assert "forward" in seen   # the library Linear's forward, which the recorder skips
