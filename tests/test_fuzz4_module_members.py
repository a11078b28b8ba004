"""A module's parameters, buffers and submodules replaced between compiled calls (NOTE
(module members) in compiler/tracer.py): the program captured the old tensors by
identity and replayed on them, a wrong answer without a warning. Each case must give
eager's numbers, in a forward-only function and in a whole training step."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
from tracegrad import nn

from fuzz4_testing import assert_compiled_matches_eager, cross_entropy_step


def _replace_last_weight(m):
    m[2].weight = nn.Parameter(torch.full((3, 4), 0.25))


def _swap_last_layer(m):
    torch.manual_seed(7)
    m[2] = nn.Linear(4, 3)


def _swap_through_setattr(m):
    torch.manual_seed(7)
    setattr(m, "2", nn.Linear(4, 3))


def _insert_a_layer(m):
    m.insert(2, nn.Tanh())


def _load_state_dict_assign(m):
    m.load_state_dict({k: v * 2 for k, v in m.state_dict().items()}, assign=True)


def _drop_a_bias(m):
    m[0].bias = None


def _register_a_new_bias(m):
    m[0].register_parameter("bias", nn.Parameter(torch.ones(4)))


def _rebind_a_buffer(m):
    m[1].running_mean = torch.ones(4)


CHANGES = [_replace_last_weight, _swap_last_layer, _swap_through_setattr, _insert_a_layer,
           _load_state_dict_assign, _drop_a_bias, _register_a_new_bias]


def _model(with_norm=False):
    torch.manual_seed(0)
    middle = nn.BatchNorm1d(4).eval() if with_norm else nn.ReLU()
    return nn.Sequential(nn.Linear(6, 4), middle, nn.Linear(4, 3))


def _inputs(n=4):
    rng = np.random.default_rng(0)
    return [torch.tensor(rng.standard_normal((5, 6)).astype(np.float32)) for _ in range(n)]


def _forward_sums(change, compiled, with_norm=False):
    model = _model(with_norm)

    def f(x):
        return model(x).sum()
    if compiled:
        f = torch.compile(f)
    out = []
    for k, x in enumerate(_inputs()):
        out.append(float(f(x)))
        if k == 1:
            change(model)
    return out


@pytest.mark.parametrize("change", CHANGES + [_rebind_a_buffer], ids=lambda c: c.__name__)
def test_forward_follows_a_replaced_member(change):
    norm = change is _rebind_a_buffer
    np.testing.assert_allclose(_forward_sums(change, True, norm),
                               _forward_sums(change, False, norm), rtol=1e-5, atol=1e-6)


def test_a_member_replaced_inside_a_module_dict_retraces():
    """A ModuleDict is indexed in forward, never run itself: its members count too."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleDict({"a": nn.Linear(6, 3)})
            self.scales = nn.ParameterList([nn.Parameter(torch.ones(3))])

        def forward(self, x):
            return (self.heads["a"](x) * self.scales[0]).sum()
    sums = []
    for compiled in (True, False):
        torch.manual_seed(0)
        net = Net()
        f = torch.compile(net) if compiled else net
        got = []
        for k, x in enumerate(_inputs(5)):
            got.append(float(f(x)))
            if k == 1:
                net.heads["a"] = nn.Linear(6, 3)
            if k == 2:
                net.scales[0] = nn.Parameter(torch.full((3,), 2.0))
        sums.append(got)
    np.testing.assert_allclose(sums[0], sums[1], rtol=1e-5, atol=1e-6)


def _train(change, compiled, steps=5):
    model = _model()
    step = cross_entropy_step(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    if compiled:
        step = torch.compile(step)
    y = torch.tensor([0, 1, 2, 1, 0])
    losses = []
    for k, x in enumerate(_inputs(steps)):
        losses.append(float(step(x, y)))
        if k == 1:
            change(model)
    return losses, [p.detach().numpy().copy() for p in model.parameters()], step


@pytest.mark.parametrize("change", [_replace_last_weight, _swap_last_layer, _drop_a_bias],
                         ids=lambda c: c.__name__)
def test_training_step_follows_a_replaced_member(change):
    """The optimizer keeps updating the old tensors, as in eager; the model reads the new."""
    assert_compiled_matches_eager(lambda compiled: _train(change, compiled))


def test_unchanged_members_replay_without_a_retrace():
    model = _model()
    f = torch.compile(lambda x: model(x).sum())
    for x in _inputs():
        f(x)
    model.train()   # a module attribute written, members unchanged: the guard holds
    f(_inputs()[0])
    assert f.cache_info().misses == 1
