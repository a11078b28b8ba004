"""Module state-dict hooks and extra state with PyTorch's signatures, as checkpointing code
registers them: ``register_load_state_dict_pre_hook`` passes the module first (it did not:
a PyTorch-style hook raised TypeError), ``register_state_dict_pre_hook`` /
``register_state_dict_post_hook`` / ``register_load_state_dict_post_hook`` exist, and a
module's ``get_extra_state`` / ``set_extra_state`` travel under ``<prefix>_extra_state``
(they were dropped silently)."""
import copy
import io

import numpy as np
import pytest

import tracegrad as tg

nn = tg.nn


class Scaled(nn.Module):
    """A module with non-tensor state, as quantisation observers and tokenizers keep it."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.scale = 1.0

    def forward(self, x):
        return self.lin(x) * self.scale

    def get_extra_state(self):
        return {"scale": self.scale}

    def set_extra_state(self, state):
        self.scale = state["scale"]


def _net():
    return nn.Sequential(nn.Linear(2, 3), Scaled())


def test_extra_state_round_trips_through_save_and_load():
    a = _net()
    a[1].scale = 2.5
    sd = a.state_dict()
    # a module's own entries, its extra state, then its children (PyTorch's order)
    assert list(sd) == ["0.weight", "0.bias", "1._extra_state", "1.lin.weight", "1.lin.bias"]
    assert sd["1._extra_state"] == {"scale": 2.5}
    buf = io.BytesIO()
    tg.save(sd, buf)
    buf.seek(0)
    b = _net()
    assert not b.load_state_dict(tg.load(buf)).missing_keys
    assert b[1].scale == 2.5
    x = tg.tensor(np.ones((1, 2), np.float32))
    np.testing.assert_array_equal(b(x).detach().numpy(), a(x).detach().numpy())


def test_missing_extra_state_is_a_missing_key():
    sd = dict(_net().state_dict())
    del sd["1._extra_state"]
    with pytest.raises(RuntimeError, match='Missing key.*"1._extra_state"'):
        _net().load_state_dict(sd)
    assert _net().load_state_dict(sd, strict=False).missing_keys == ["1._extra_state"]


def test_plain_module_has_no_extra_state_key():
    assert "_extra_state" not in "".join(nn.Linear(1, 1).state_dict())


def test_load_state_dict_pre_hook_gets_the_module_first():
    m = _net()
    seen = []

    def hook(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
        seen.append((module, prefix))
        state_dict[prefix + "bias"] = state_dict[prefix + "bias"] * 0 + 7.0

    m[0].register_load_state_dict_pre_hook(hook)
    m.load_state_dict(copy.deepcopy(m.state_dict()))
    assert seen == [(m[0], "0.")]
    np.testing.assert_array_equal(m[0].bias.detach().numpy(), [7.0, 7.0, 7.0])


def test_load_state_dict_post_hook_may_clear_missing_keys():
    m = _net()
    calls = []

    def hook(module, incompatible):
        calls.append(list(incompatible.missing_keys))
        incompatible.missing_keys.clear()

    handle = m.register_load_state_dict_post_hook(hook)
    sd = dict(m.state_dict())
    del sd["0.bias"]
    assert m.load_state_dict(sd).missing_keys == []   # strict, yet no error
    assert calls == [["0.bias"]]
    handle.remove()
    with pytest.raises(RuntimeError, match="Missing key"):
        m.load_state_dict(sd)


def test_state_dict_pre_and_post_hooks():
    m = _net()
    log = []
    m[0].register_state_dict_pre_hook(lambda mod, prefix, keep_vars: log.append(("pre", prefix)))

    def post(mod, state_dict, prefix, local_metadata):
        log.append(("post", prefix))
        state_dict[prefix + "note"] = "added"

    m.register_state_dict_post_hook(post)
    sd = m.state_dict()
    assert log == [("pre", "0."), ("post", "")]
    assert sd["note"] == "added"


def test_hook_signatures_match_torch():
    torch = pytest.importorskip("torch")
    for lib in (tg, torch):
        m = lib.nn.Linear(2, 2)
        seen = []
        m.register_load_state_dict_pre_hook(
            lambda module, sd, prefix, meta, strict, mk, uk, em: seen.append(type(module)))
        m.register_load_state_dict_post_hook(lambda module, keys: seen.append(len(keys)))
        m.register_state_dict_pre_hook(lambda module, prefix, keep_vars: seen.append(prefix))
        m.load_state_dict(m.state_dict())   # state_dict()'s pre hook runs first
        assert [s if not isinstance(s, type) else s.__name__ for s in seen] == ["", "Linear", 2]


def test_extra_state_order_matches_torch():
    torch = pytest.importorskip("torch")

    class TorchScaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)

        def get_extra_state(self):
            return 1

        def set_extra_state(self, state):
            pass

    theirs = torch.nn.Sequential(torch.nn.Linear(2, 3), TorchScaled())
    assert list(_net().state_dict()) == list(theirs.state_dict())
