"""``nn.LSTM(proj_size=...)`` (LSTMP: ``h = (o * tanh(c)) @ W_hr^T``): it raised
NotImplementedError. Against a NumPy recurrence, and against PyTorch when installed."""
import numpy as np
import pytest

import tracegrad as tg


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _set(m, lib=tg, seed=0):
    rng = np.random.default_rng(seed)
    with lib.no_grad():
        for p in m.parameters():
            p.copy_(lib.tensor((rng.standard_normal(tuple(p.shape)) * 0.5).astype(np.float32)))
    return m


X = np.random.default_rng(1).standard_normal((5, 2, 3)).astype(np.float32)   # (T, N, F)


def test_parameters_and_shapes():
    m = tg.nn.LSTM(3, 6, num_layers=2, proj_size=4, bidirectional=True)
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
    assert shapes["weight_hh_l0"] == (24, 4) and shapes["weight_hr_l0"] == (4, 6)
    assert shapes["weight_ih_l1"] == (24, 8) and shapes["weight_hr_l1_reverse"] == (4, 6)
    assert [n for n, _ in m.named_parameters()][:5] == [
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0"]
    out, (h, c) = m(tg.tensor(X))
    assert tuple(out.shape) == (5, 2, 8) and tuple(h.shape) == (4, 2, 4)
    assert tuple(c.shape) == (4, 2, 6)
    assert "proj_size=4" in repr(m)


def test_single_layer_matches_numpy_recurrence():
    m = _set(tg.nn.LSTM(3, 6, proj_size=4))
    w = {n: p.detach().numpy().astype(np.float64) for n, p in m.named_parameters()}
    h, c = np.zeros((2, 4)), np.zeros((2, 6))
    outs = []
    for x in X.astype(np.float64):
        gates = x @ w["weight_ih_l0"].T + w["bias_ih_l0"] + h @ w["weight_hh_l0"].T + \
            w["bias_hh_l0"]
        i, f, g, o = np.split(gates, 4, axis=1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = (_sigmoid(o) * np.tanh(c)) @ w["weight_hr_l0"].T
        outs.append(h)
    out, (h_n, c_n) = m(tg.tensor(X))
    np.testing.assert_allclose(out.detach().numpy(), np.stack(outs), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_n.detach().numpy()[0], h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c_n.detach().numpy()[0], c, rtol=1e-5, atol=1e-6)


def test_hidden_shapes_are_checked():
    m = tg.nn.LSTM(3, 6, proj_size=4)
    with pytest.raises(RuntimeError, match=r"h_0 of shape \(1, 2, 4\)"):
        m(tg.tensor(X), (tg.zeros(1, 2, 6), tg.zeros(1, 2, 6)))
    with pytest.raises(ValueError, match="smaller than hidden_size"):
        tg.nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="only supported for LSTM"):
        tg.nn.GRU(3, 4, proj_size=2)


@pytest.mark.parametrize("kw", [{}, {"num_layers": 2, "bidirectional": True}])
def test_training_matches_torch(kw):
    torch = pytest.importorskip("torch")
    out = []
    for lib in (tg, torch):
        m = _set(lib.nn.LSTM(3, 6, proj_size=4, batch_first=True, **kw), lib)
        opt = lib.optim.Adam(m.parameters(), lr=0.05)
        x = lib.tensor(X.transpose(1, 0, 2).copy())
        D = 2 if kw.get("bidirectional") else 1
        hx = (lib.full((kw.get("num_layers", 1) * D, 2, 4), 0.1),
              lib.full((kw.get("num_layers", 1) * D, 2, 6), -0.2))
        for _ in range(3):
            opt.zero_grad()
            o, (h, c) = m(x, hx)
            ((o ** 2).mean() + (h ** 2).mean() + (c ** 2).mean()).backward()
            opt.step()
        out.append({k: v.detach().numpy().copy() for k, v in m.state_dict().items()})
    assert list(out[0]) == list(out[1])
    for k in out[0]:
        np.testing.assert_allclose(out[0][k], out[1][k], rtol=1e-4, atol=1e-5, err_msg=k)
