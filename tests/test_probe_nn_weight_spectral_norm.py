"""``nn.utils.weight_norm`` / ``spectral_norm`` and their ``remove_*`` (hook-based, as
WaveNet- and GAN-style scripts call them); ``tracegrad.nn.utils`` had neither
(AttributeError). Values against NumPy formulas, training against PyTorch."""
import numpy as np
import pytest

import tracegrad as tg

U = tg.nn.utils


def _set(m, lib=tg, seed=0):
    rng = np.random.default_rng(seed)
    with lib.no_grad():
        for v in m.state_dict().values():
            v.copy_(lib.tensor(rng.standard_normal(tuple(v.shape)).astype(np.float32)))
    return m


X = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)


@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_splits_and_recomposes(dim):
    m = _set(tg.nn.Linear(3, 5))
    w = m.weight.detach().numpy().copy()
    U.weight_norm(m, dim=dim)
    assert [n for n, _ in m.named_parameters()] == ["bias", "weight_g", "weight_v"]
    axes = None if dim is None else tuple(d for d in range(2) if d != dim)
    g = np.sqrt((w.astype(np.float64) ** 2).sum(axis=axes, keepdims=dim is not None))
    np.testing.assert_allclose(m.weight_g.detach().numpy(), g, rtol=1e-6)
    np.testing.assert_array_equal(m.weight_v.detach().numpy(), w)
    with tg.no_grad():
        m.weight_g.mul_(2.0)   # the magnitude doubles the weight at the next call
    y = m(tg.tensor(X)).detach().numpy()
    np.testing.assert_allclose(y, X @ (2 * w).T + m.bias.detach().numpy(), rtol=1e-5,
                               atol=1e-5)
    U.remove_weight_norm(m)
    assert [n for n, _ in m.named_parameters()] == ["bias", "weight"]
    np.testing.assert_allclose(m.weight.detach().numpy(), 2 * w, rtol=1e-6)
    with pytest.raises(ValueError, match="not found"):
        U.remove_weight_norm(m)


def test_weight_norm_twice_raises():
    m = U.weight_norm(tg.nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match="two weight_norm hooks"):
        U.weight_norm(m)


def test_spectral_norm_divides_by_the_largest_singular_value():
    m = _set(tg.nn.Linear(6, 4))
    w = m.weight.detach().numpy().astype(np.float64).copy()
    U.spectral_norm(m, n_power_iterations=50)
    assert sorted(m.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    m(tg.tensor(np.ones((1, 6), np.float32)))   # training mode: power iterations run
    sigma = np.linalg.svd(w, compute_uv=False)[0]
    np.testing.assert_allclose(m.weight.detach().numpy(), w / sigma, rtol=1e-4, atol=1e-6)
    u = m.weight_u.numpy().copy()
    m.eval()
    m(tg.tensor(np.ones((1, 6), np.float32)))   # eval mode: u is not advanced
    np.testing.assert_array_equal(m.weight_u.numpy(), u)
    U.remove_spectral_norm(m)
    assert sorted(m.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(m.weight.detach().numpy(), w / sigma, rtol=1e-4, atol=1e-6)


def test_spectral_norm_transposed_conv_uses_dim_1():
    m = _set(tg.nn.ConvTranspose1d(3, 4, 2))
    U.spectral_norm(m)
    assert tuple(m.weight_u.shape) == (4,) and tuple(m.weight_v.shape) == (3 * 2,)


@pytest.mark.parametrize("kind", ["weight", "spectral"])
def test_training_matches_torch(kind):
    torch = pytest.importorskip("torch")
    out = []
    for lib in (tg, torch):
        m = _set(lib.nn.Conv1d(3, 4, 3), lib)
        if kind == "weight":
            lib.nn.utils.weight_norm(m)
        else:
            lib.nn.utils.spectral_norm(m, n_power_iterations=2)
            _set(m, lib, seed=5)   # the same u, v as PyTorch (their start is random)
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
