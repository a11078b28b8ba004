"""``nn.utils.parametrize`` and ``nn.utils.parametrizations.weight_norm`` (the weight-norm
form PyTorch recommends; ``tracegrad.nn.utils`` had neither: AttributeError). Values
against NumPy, the state-dict layout and training against PyTorch."""
import copy

import numpy as np
import pytest

import tracegrad as tg

P = tg.nn.utils.parametrize
X = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)


def _set(m, lib=tg, seed=0):
    rng = np.random.default_rng(seed)
    with lib.no_grad():
        for v in m.state_dict().values():
            v.copy_(lib.tensor(rng.standard_normal(tuple(v.shape)).astype(np.float32)))
    return m


class Symmetric(tg.nn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).transpose(-1, -2)

    def right_inverse(self, a):
        return a.triu()


class Double(tg.nn.Module):
    def forward(self, x):
        return x * 2

    def right_inverse(self, a):
        return a / 2


def test_chain_of_parametrizations_and_assignment():
    m = _set(tg.nn.Linear(3, 3))
    w = m.weight.detach().numpy().copy()
    P.register_parametrization(m, "weight", Symmetric())
    P.register_parametrization(m, "weight", Double())
    assert type(m).__name__ == "ParametrizedLinear" and P.is_parametrized(m, "weight")
    assert P.type_before_parametrizations(m) is tg.nn.Linear
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original"]
    sym = np.triu(w) + np.triu(w, 1).T
    np.testing.assert_allclose(m.weight.detach().numpy(), 2 * sym, rtol=1e-6)
    target = np.array([[2.0, 4, 6], [4, 8, 10], [6, 10, 12]], np.float32)
    m.weight = tg.tensor(target)   # right_inverse of the chain, in reverse order
    np.testing.assert_allclose(m.weight.detach().numpy(), target, rtol=1e-6)
    np.testing.assert_allclose(m.parametrizations.weight.original.detach().numpy(),
                               np.triu(target) / 2, rtol=1e-6)
    y = m(tg.tensor(X)).detach().numpy()
    np.testing.assert_allclose(y, X @ target.T + m.bias.detach().numpy(), rtol=1e-5)
    P.remove_parametrizations(m, "weight")
    assert type(m) is tg.nn.Linear and list(m.state_dict()) == ["bias", "weight"]   # re-added
    np.testing.assert_allclose(m.weight.detach().numpy(), target, rtol=1e-6)


def test_gradients_reach_the_original():
    m = _set(tg.nn.Linear(3, 3))
    P.register_parametrization(m, "weight", Symmetric())
    (m(tg.tensor(X)) ** 2).sum().backward()
    g = m.parametrizations.weight.original.grad.numpy()
    y = X @ m.weight.detach().numpy().T + m.bias.detach().numpy()
    gw = (2 * y).T @ X   # dL/dW for W = triu(O) + triu(O, 1)^T
    np.testing.assert_allclose(g, np.triu(gw) + np.triu(gw.T, 1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_parametrization(dim):
    m = _set(tg.nn.Linear(3, 5))
    w = m.weight.detach().numpy().astype(np.float64).copy()
    tg.nn.utils.parametrizations.weight_norm(m, dim=dim)
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original0",
                                    "parametrizations.weight.original1"]
    axes = None if dim is None else tuple(d for d in range(2) if d != dim)
    g = np.sqrt((w ** 2).sum(axis=axes, keepdims=dim is not None))
    np.testing.assert_allclose(m.parametrizations.weight.original0.detach().numpy(), g,
                               rtol=1e-6)
    np.testing.assert_allclose(m.weight.detach().numpy(), w, rtol=1e-5, atol=1e-6)
    replica = copy.deepcopy(m)   # AveragedModel copies models this way
    assert P.is_parametrized(replica, "weight")
    assert replica.parametrizations.weight.original1 is not m.parametrizations.weight.original1


def test_errors():
    with pytest.raises(ValueError, match="does not have a parameter"):
        P.register_parametrization(tg.nn.Linear(2, 2), "nope", Double())
    with pytest.raises(ValueError, match="may not change the dtype or shape"):
        P.register_parametrization(tg.nn.Linear(2, 2), "weight", tg.nn.Flatten(0))
    with pytest.raises(ValueError, match="does not have a parametrization"):
        P.remove_parametrizations(tg.nn.Linear(2, 2), "weight")


def test_weight_norm_training_matches_torch():
    torch = pytest.importorskip("torch")
    out = []
    for lib in (tg, torch):
        m = _set(lib.nn.Conv1d(3, 4, 3), lib)
        lib.nn.utils.parametrizations.weight_norm(m)
        x = lib.tensor(np.random.default_rng(2).standard_normal((2, 3, 7)).astype(np.float32))
        opt = lib.optim.Adam(m.parameters(), lr=0.05)
        for _ in range(3):
            opt.zero_grad()
            (m(x) ** 2).mean().backward()
            opt.step()
        out.append({k: v.detach().numpy().copy() for k, v in m.state_dict().items()})
    assert list(out[0]) == list(out[1])
    for k in out[0]:
        np.testing.assert_allclose(out[0][k], out[1][k], rtol=1e-4, atol=1e-5, err_msg=k)
