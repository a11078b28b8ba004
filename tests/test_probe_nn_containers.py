"""Containers as model code uses them.

ParameterDict built from a plain dict orders its keys sorted, as PyTorch does; tracegrad
kept insertion order, so ``parameters()`` (and so the integer ids of an optimizer's
``state_dict``) and ``state_dict()`` came in another order than PyTorch's. ParameterDict
also holds non-tensor values and has the dict methods (pop, get, setdefault, popitem,
clear, copy, fromkeys, |); Sequential has ``*`` and ``+=``; Module has ``set_submodule``."""
import collections
import pickle

import numpy as np
import pytest

import tracegrad as tg

nn = tg.nn


def _p(n):
    return nn.Parameter(tg.ones(n))


def test_plain_dict_keys_are_sorted_ordered_ones_keep_their_order():
    pd = nn.ParameterDict({"b": _p(1), "a": _p(2)})
    pd.update({"d": tg.ones(3), "c": tg.ones(4)})
    assert list(pd) == ["a", "b", "c", "d"]
    assert [n for n, _ in pd.named_parameters()] == ["a", "b", "c", "d"]
    assert list(pd.state_dict()) == ["a", "b", "c", "d"]
    assert [tuple(p.shape) for p in pd.parameters()] == [(2,), (1,), (4,), (3,)]
    od = nn.ParameterDict(collections.OrderedDict([("b", _p(1)), ("a", _p(2))]))
    assert list(od) == ["b", "a"]
    assert list(nn.ParameterDict([("z", _p(1)), ("y", _p(1))])) == ["z", "y"]


def test_optimizer_state_ids_follow_the_sorted_order():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.ParameterDict({"w2": nn.Parameter(tg.tensor([2.0, 2.0])),
                                       "w1": nn.Parameter(tg.tensor([1.0]))})

        def forward(self):
            return (self.p["w1"] ** 2).sum() + (self.p["w2"] ** 2).sum()

    m = M()
    opt = tg.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m().backward()
    opt.step()
    state = opt.state_dict()["state"]
    # id 0 is w1 (sorted first): its momentum buffer is its gradient 2 * 1.0
    np.testing.assert_array_equal(state[0]["momentum_buffer"].numpy(), [2.0])
    np.testing.assert_array_equal(state[1]["momentum_buffer"].numpy(), [4.0, 4.0])


def test_parameter_dict_methods_and_plain_values():
    pd = nn.ParameterDict({"x": 3, "w": "s", "t": tg.zeros(2)})
    assert list(pd) == ["t", "w", "x"] and pd["x"] == 3
    assert isinstance(pd["t"], nn.Parameter) and len(list(pd.parameters())) == 1
    assert pd.get("missing") is None and pd.get("x") == 3
    assert tuple(pd.setdefault("q", tg.ones(3)).shape) == (3,)
    assert pd.pop("w") == "s" and "w" not in pd
    assert pd.popitem()[0] == "q"
    assert list(reversed(pd)) == ["x", "t"]
    merged = pd | nn.ParameterDict({"a": _p(1)})
    assert list(merged) == ["t", "x", "a"] and list(pd) == ["t", "x"]
    assert list(pd.copy()) == ["t", "x"] and pd.copy()["t"] is pd["t"]
    assert list(pd.fromkeys(["u", "v"], 0)) == ["u", "v"]
    pd.clear()
    assert len(pd) == 0 and not list(pd.parameters())
    with pytest.raises(TypeError, match="not a string"):
        pd[1] = tg.ones(1)


def test_parameter_dict_pickles():
    pd = nn.ParameterDict({"b": _p(1), "a": _p(2)})
    back = pickle.loads(pickle.dumps(pd))
    assert list(back) == ["a", "b"] and tuple(back["a"].shape) == (2,)


def test_sequential_multiply_and_add_in_place():
    s = nn.Sequential(nn.Linear(1, 2), nn.ReLU())
    t = s * 2
    assert [type(m).__name__ for m in t] == ["Linear", "ReLU", "Linear", "ReLU"]
    assert t[0] is t[2] and list(t.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(2 * s) == 4
    s += nn.Sequential(nn.Tanh())
    assert list(s._modules) == ["0", "1", "2"]
    s *= 2
    assert len(s) == 6 and s[3] is s[0]
    with pytest.raises(ValueError, match="Non-positive"):
        s * 0
    with pytest.raises(TypeError):
        s * 1.5
    with pytest.raises(ValueError, match="only objects of Sequential"):
        s += [nn.ReLU()]


def test_set_submodule():
    m = nn.Sequential(nn.Sequential(nn.Linear(1, 1), nn.ReLU()))
    m.set_submodule("0.1", nn.Tanh())
    assert isinstance(m[0][1], nn.Tanh)
    x = tg.tensor([[0.5]])
    np.testing.assert_allclose(m(x).detach().numpy(), np.tanh(m[0][0](x).detach().numpy()))
    with pytest.raises(ValueError, match="without a target"):
        m.set_submodule("", nn.Tanh())
    with pytest.raises(AttributeError, match="has no attribute `5`"):
        m.set_submodule("0.5", nn.Tanh(), strict=True)
    with pytest.raises(AttributeError, match="is not an nn.Module"):
        m.set_submodule("0.0.weight", nn.Tanh())


def test_parameter_dict_order_matches_torch():
    torch = pytest.importorskip("torch")
    ours = nn.ParameterDict({"b": _p(1), "a": _p(2), "c": _p(3)})
    theirs = torch.nn.ParameterDict({"b": torch.nn.Parameter(torch.ones(1)),
                                     "a": torch.nn.Parameter(torch.ones(2)),
                                     "c": torch.nn.Parameter(torch.ones(3))})
    assert list(ours.state_dict()) == list(theirs.state_dict())
