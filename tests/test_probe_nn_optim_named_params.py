"""Optimizers built from ``model.named_parameters()`` (PyTorch 2.6+): the names go to the
group's ``param_names`` and into ``state_dict()``; the update is the one the plain
parameters get. This raised "optimizer can only optimize Tensors, but one of the params
is builtins.tuple"."""
import copy

import numpy as np
import pytest

import tracegrad as tg


def _model(seed=0):
    rng = np.random.default_rng(seed)
    m = tg.nn.Sequential(tg.nn.Linear(3, 4), tg.nn.Tanh(), tg.nn.Linear(4, 2))
    with tg.no_grad():
        for p in m.parameters():
            p.copy_(tg.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
    return m


def _train(m, opt, steps=3):
    x = tg.tensor(np.linspace(-1, 1, 15, dtype=np.float32).reshape(5, 3))
    for _ in range(steps):
        opt.zero_grad()
        (m(x) ** 2).mean().backward()
        opt.step()
    return [p.detach().numpy().copy() for p in m.parameters()]


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_named_parameters_train_like_parameters(name):
    kw = {"lr": 0.05, "momentum": 0.9} if name in ("SGD", "RMSprop") else {"lr": 0.05}
    a, b = _model(), _model()
    wa = _train(a, getattr(tg.optim, name)(a.parameters(), **kw))
    opt = getattr(tg.optim, name)(b.named_parameters(), **kw)
    wb = _train(b, opt)
    for x, y in zip(wa, wb):
        np.testing.assert_array_equal(x, y)
    assert opt.param_groups[0]["param_names"] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert all(isinstance(p, tg.nn.Parameter) for p in opt.param_groups[0]["params"])


def test_state_dict_keeps_names_and_round_trips():
    m = _model()
    opt = tg.optim.Adam([{"params": m[0].named_parameters()},
                         {"params": m[2].named_parameters(), "lr": 0.5}], lr=0.01)
    _train(m, opt, 1)
    sd = opt.state_dict()
    assert [g["param_names"] for g in sd["param_groups"]] == [["weight", "bias"]] * 2
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2, 3]]
    assert list(sd["param_groups"][0])[0] == "param_names"   # PyTorch's key order
    assert sorted(sd["state"]) == [0, 1, 2, 3]
    # into an optimizer made from plain parameters: the saved names come along
    m2 = copy.deepcopy(m)
    opt2 = tg.optim.Adam([{"params": m2[0].parameters()},
                          {"params": m2[2].parameters(), "lr": 0.5}], lr=0.01)
    opt2.load_state_dict(copy.deepcopy(sd))
    assert opt2.param_groups[1]["param_names"] == ["weight", "bias"]
    for x, y in zip(_train(m, opt, 2), _train(m2, opt2, 2)):
        np.testing.assert_array_equal(x, y)


def test_mixed_named_and_plain_parameters_raise():
    m = _model()
    with pytest.raises(ValueError, match="with/without names"):
        tg.optim.SGD([("0.weight", m[0].weight), m[0].bias], lr=0.1)
    opt = tg.optim.SGD(m[0].named_parameters(), lr=0.1)
    with pytest.raises(ValueError, match="with/without names"):
        opt.add_param_group({"params": m[2].parameters()})
    opt.add_param_group({"params": m[2].named_parameters(), "lr": 0.2})
    assert opt.param_groups[1]["param_names"] == ["weight", "bias"]


def test_matches_torch_state_dict_format():
    torch = pytest.importorskip("torch")
    ours = _model()
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    o1 = tg.optim.SGD(ours.named_parameters(), lr=0.1, momentum=0.9)
    o2 = torch.optim.SGD(theirs.named_parameters(), lr=0.1, momentum=0.9)
    g1, g2 = o1.state_dict()["param_groups"][0], o2.state_dict()["param_groups"][0]
    assert g1["param_names"] == g2["param_names"]
    assert g1["params"] == g2["params"]
