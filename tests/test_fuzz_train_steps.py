"""Whole training steps compiled with fullgraph=True against the same steps run eagerly,
over 6 calls, with what users do between steps: two backward calls in a step,
retain_graph, gradients accumulated over calls, zero_grad(set_to_none=False), BatchNorm
switched between train() and eval(), a layer frozen mid-training, param_groups changed,
lr and momentum set by hand, a .grad scaled or replaced, a parameter scaled or its .data
replaced. Parameters, gradients, buffers and losses must agree at every step, and losses
returned by earlier calls must keep their values."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn as nn
import tracegrad.nn.functional as F


def _model(batch_norm: bool):
    tg.manual_seed(0)
    # NOTE: no bias before a BatchNorm: its gradient is 0 up to rounding, which Adam's
    # normalised step would turn into an update of the order of lr either way
    layers = [nn.Linear(5, 8, bias=not batch_norm)] + ([nn.BatchNorm1d(8)] if batch_norm else [])
    return nn.Sequential(*layers, nn.Tanh(), nn.Linear(8, 3))


def _standard(m, o, x, y):
    o.zero_grad()
    loss = F.cross_entropy(m(x), y)
    loss.backward()
    o.step()
    return loss


def _two_backward(m, o, x, y):
    o.zero_grad()
    loss = F.cross_entropy(m(x), y)
    loss.backward()
    extra = m(x).pow(2).mean()
    extra.backward()
    o.step()
    return loss + extra


def _retain_graph(m, o, x, y):
    o.zero_grad()
    loss = F.cross_entropy(m(x), y)
    loss.backward(retain_graph=True)
    loss.backward()
    o.step()
    return loss


def _no_zero_grad(m, o, x, y):
    loss = F.cross_entropy(m(x), y)
    loss.backward()
    o.step()
    return loss


def _backward_only(m, o, x, y):
    loss = F.cross_entropy(m(x), y)
    loss.backward()
    return loss


def _keep_grad_tensors(m, o, x, y):
    o.zero_grad(set_to_none=False)
    loss = F.cross_entropy(m(x), y)
    loss.backward()
    o.step()
    return loss


def _step_every_other_call(k, models, opts):
    if k % 2 == 0 and k:
        for o in opts:
            o.step()
            o.zero_grad()


def _eval_every_third_call(k, models, opts):
    for m in models:
        m.train(k % 3 != 2)


def _freeze_first_layer(k, models, opts):
    if k == 3:
        for m in models:
            m[0].weight.requires_grad_(False)


def _regroup(k, models, opts):
    if k == 3:
        for m, o in zip(models, opts):
            o.param_groups[0]["params"] = [m[0].weight, m[0].bias]
            o.add_param_group({"params": list(m[-1].parameters()), "lr": 0.01})


def _set_lr_and_momentum(k, models, opts):
    for o in opts:
        o.param_groups[0]["lr"] = 0.1 / (k + 1)
        o.param_groups[0]["momentum"] = 0.5 if k > 2 else 0.9


def _scale_a_grad(k, models, opts):
    for m in models:
        if m[0].weight.grad is not None:
            with tg.no_grad():
                m[0].weight.grad.mul_(0.5)


def _replace_a_grad(k, models, opts):
    if k == 2:
        for m in models:
            m[0].weight.grad = tg.ones(8, 5)


def _scale_a_parameter(k, models, opts):
    for m in models:
        with tg.no_grad():
            m[-1].weight.mul_(0.9)


def _replace_parameter_data(k, models, opts):
    if k == 3:
        for m in models:
            m[-1].weight.data = m[-1].weight.data * 2


SGD = (tg.optim.SGD, dict(lr=0.1, momentum=0.9))
ADAM = (tg.optim.Adam, dict(lr=0.01))
SCENARIOS = {
    "standard": (_standard, None, False, SGD),
    "two backward calls": (_two_backward, None, False, SGD),
    "retain_graph": (_retain_graph, None, False, SGD),
    "no zero_grad": (_no_zero_grad, None, False, SGD),
    "accumulate, step every other call": (_backward_only, _step_every_other_call, False, SGD),
    "zero_grad(set_to_none=False)": (_keep_grad_tensors, None, False, ADAM),
    "batch norm": (_standard, None, True, SGD),
    "batch norm, eval every third call": (_standard, _eval_every_third_call, True, ADAM),
    "frozen mid-training (SGD)": (_standard, _freeze_first_layer, False, SGD),
    "frozen mid-training (Adam)": (_standard, _freeze_first_layer, False, ADAM),
    "param_groups changed": (_standard, _regroup, False, ADAM),
    "lr and momentum set by hand": (_standard, _set_lr_and_momentum, False, SGD),
    "a .grad scaled between calls": (_no_zero_grad, _scale_a_grad, False, SGD),
    "a .grad replaced between calls": (_no_zero_grad, _replace_a_grad, False, SGD),
    "a parameter scaled between calls": (_standard, _scale_a_parameter, False, ADAM),
    "a parameter's .data replaced": (_standard, _replace_parameter_data, False, SGD),
}


def _assert_same(a, b, what):
    if a is None or b is None:
        assert a is None and b is None, what
        return
    np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-5,
                               atol=1e-6, err_msg=what)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_compiled_step_matches_eager(name):
    body, between, batch_norm, (opt_class, options) = SCENARIOS[name]
    models = [_model(batch_norm), _model(batch_norm)]
    opts = [opt_class(m.parameters(), **options) for m in models]
    eager = lambda x, y: body(models[0], opts[0], x, y)  # noqa: E731
    compiled = tg.compile(lambda x, y: body(models[1], opts[1], x, y), fullgraph=True)
    rng = np.random.default_rng(0)
    held = []
    for k in range(6):
        x = tg.tensor(rng.standard_normal((4, 5)).astype(np.float32))
        y = tg.tensor(rng.integers(0, 3, 4))
        if between is not None:
            between(k, models, opts)
        want, got = eager(x, y), compiled(x, y)
        _assert_same(want, got, f"loss at call {k}")
        held.append((got, got.detach().numpy().copy()))
        for (pname, p), (_, q) in zip(models[0].named_parameters(),
                                      models[1].named_parameters()):
            _assert_same(p, q, f"{pname} at call {k}")
            _assert_same(p.grad, q.grad, f"{pname}.grad at call {k}")
        for (bname, b), (_, c) in zip(models[0].named_buffers(), models[1].named_buffers()):
            _assert_same(b, c, f"{bname} at call {k}")
    for loss, value in held:
        np.testing.assert_array_equal(loss.detach().numpy(), value)
