"""``tracegrad.compile(opt.step)`` (and clipping) after an EAGER ``backward()``: each
``.grad`` the step reads is a per-call input that is the leaf's current gradient (NOTE
(gradient reads) in compiler/tracer.py). A new gradient tensor every step (zero_grad's
default set_to_none=True) must replay the one program, not recompile; every step must
equal eager mode: parameters, optimizer state and ``p.grad`` after the step."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracegrad
import tracegrad.nn as nn

optim = tracegrad.optim

STEPS = 20


def _model():
    tracegrad.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def _batch(k):
    rng = np.random.default_rng(k)
    return (tracegrad.tensor(rng.standard_normal((5, 4)).astype(np.float32)),
            tracegrad.tensor(rng.standard_normal((5, 3)).astype(np.float32)))


def _backward(model, k, scale=1.0):
    x, y = _batch(k)
    (((model(x) - y) ** 2).mean() * scale).backward()


def _same(a, b, what):
    if a is None or b is None:
        assert a is None and b is None, what
        return
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=what)


def _assert_same(model_e, opt_e, model_c, opt_c, step):
    for (name, pe), pc in zip(model_e.named_parameters(), model_c.parameters()):
        _same(pe, pc, f"step {step}: parameter {name}")
        _same(pe.grad, pc.grad, f"step {step}: {name}.grad")
        se, sc = opt_e.state.get(pe, {}), opt_c.state.get(pc, {})
        assert se.keys() == sc.keys(), f"step {step}: state keys of {name}"
        for key in se:
            ve, vc = se[key], sc[key]
            if isinstance(ve, tracegrad.Tensor):
                _same(ve, vc, f"step {step}: state {key} of {name}")
            else:
                assert ve == vc, f"step {step}: state {key} of {name}"


def _clip_then_step(model, opt):
    def clip_step():
        nn.utils.clip_grad_norm_(model.parameters(), 0.05)
        opt.step()
    return clip_step


OPTIMIZERS = [("Adam", dict(lr=1e-2)),
              ("Adam", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
              ("SGD", dict(lr=0.1, momentum=0.9)),
              ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2))]


def _train(name, options, *, clip, set_to_none, accumulate=False, drop=None):
    """20 steps, eager against ``compile(opt.step)`` (or of clipping then stepping),
    compared after every step; returns the compiled step's cache_info."""
    model_e, model_c = _model(), _model()
    opt_e = getattr(optim, name)(model_e.parameters(), **options)
    opt_c = getattr(optim, name)(model_c.parameters(), **options)
    step_e = _clip_then_step(model_e, opt_e) if clip else opt_e.step
    step_c = tracegrad.compile(_clip_then_step(model_c, opt_c) if clip else opt_c.step)
    for k in range(STEPS):
        for model, opt, step in ((model_e, opt_e, step_e), (model_c, opt_c, step_c)):
            opt.zero_grad(set_to_none=set_to_none)
            _backward(model, k)
            if accumulate:
                _backward(model, k + 100, scale=0.5)
            if drop is not None and drop(k):
                model[2].bias.grad = None      # no gradient for one parameter this step
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # no eager fallback
                step()
        _assert_same(model_e, opt_e, model_c, opt_c, k)
    return step_c.cache_info()


@pytest.mark.parametrize("clip", [False, True], ids=["step", "clip+step"])
@pytest.mark.parametrize("name,options", OPTIMIZERS,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZERS)])
def test_new_grad_tensor_every_step_replays(name, options, clip):
    info = _train(name, options, clip=clip, set_to_none=True)
    # the first step makes the state lazily, the second reads it
    assert info.misses <= 2, info
    assert info.hits == STEPS - info.misses


@pytest.mark.parametrize("clip", [False, True], ids=["step", "clip+step"])
def test_zero_grad_in_place_replays(clip):
    info = _train("Adam", dict(lr=1e-2), clip=clip, set_to_none=False)
    assert info.misses <= 2, info


@pytest.mark.parametrize("clip", [False, True], ids=["step", "clip+step"])
def test_gradient_accumulated_over_two_backwards(clip):
    info = _train("SGD", dict(lr=0.1, momentum=0.9), clip=clip, set_to_none=True,
                  accumulate=True)
    assert info.misses <= 2, info


@pytest.mark.parametrize("clip", [False, True], ids=["step", "clip+step"])
def test_a_gradient_missing_at_some_steps_retraces(clip):
    # no grad at steps 3, 4 and 9: the trace relied on which gradients exist, so step 3
    # traces a program without that input; later switches replay the kept traces (NOTE
    # (programs per signature) in compiler/function.py)
    info = _train("Adam", dict(lr=1e-2), clip=clip, set_to_none=True,
                  drop=lambda k: k in (3, 4, 9))
    assert 2 <= info.misses <= 3, info


def test_a_grad_of_another_shape_or_dtype_retraces():
    w = tracegrad.ones(3, requires_grad=True)
    opt = optim.SGD([w], lr=0.5)
    step = tracegrad.compile(opt.step)
    w.grad = tracegrad.tensor([1.0, 2.0, 3.0])
    step()
    w.grad = tracegrad.tensor([1.0, 2.0, 3.0], dtype=tracegrad.float64)
    step()      # eager mode would add a float64 gradient: the program must not replay
    np.testing.assert_allclose(w.detach().numpy(), [0.0, -1.0, -2.0])
    assert step.cache_info().misses == 2


def test_old_gradient_still_reachable_is_not_confused_with_the_new():
    # the step reads the old gradient through a closure AND p.grad: while the old tensor
    # lives and is no longer p.grad, one input cannot stand for both
    w = tracegrad.ones(2, requires_grad=True)
    held = {}

    def fn():
        return w.grad * 1 + held["g"] * 10

    f = tracegrad.compile(fn)
    w.grad = tracegrad.tensor([1.0, 2.0])
    held["g"] = w.grad
    np.testing.assert_allclose(f().numpy(), [11.0, 22.0])
    w.grad = tracegrad.tensor([3.0, 4.0])   # held["g"] is still the old gradient
    np.testing.assert_allclose(f().numpy(), [3.0 + 10.0, 4.0 + 20.0])


def test_in_place_write_lands_in_the_current_gradient():
    w = tracegrad.ones(2, requires_grad=True)

    def halve():
        w.grad.mul_(0.5)

    f = tracegrad.compile(halve)
    for k in range(4):
        w.grad = tracegrad.tensor([2.0 * (k + 1), 4.0])
        g = w.grad
        f()
        assert w.grad is g
        np.testing.assert_allclose(g.numpy(), [k + 1.0, 2.0])
    assert f.cache_info().misses == 1


def test_write_without_a_read_lands_in_the_current_gradient():
    w = tracegrad.ones(2, requires_grad=True)

    def clear():
        w.grad.zero_()

    f = tracegrad.compile(clear)
    for k in range(3):
        w.grad = tracegrad.tensor([1.0 + k, 2.0])
        g = w.grad
        f()
        assert w.grad is g
        np.testing.assert_allclose(g.numpy(), [0.0, 0.0])
