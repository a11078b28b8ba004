"""``nn.MultiheadAttention(add_bias_kv=True, add_zero_attn=True)``: a learned key/value
row and a zero one that every query may attend to (the masks gain an "attend" column for
each); it raised NotImplementedError. Against a NumPy forward, and PyTorch when installed."""
import numpy as np
import pytest

import tracegrad as tg

E, H, L, S, N = 6, 3, 4, 5, 2
RNG = np.random.default_rng(0)
Q = RNG.standard_normal((L, N, E)).astype(np.float32)
KV = RNG.standard_normal((S, N, E)).astype(np.float32)
KPM = np.array([[False, False, True, False, True], [False] * S])
MASK = np.triu(np.ones((L, S), bool), 2)


def _mha(lib, bias_kv, zero_attn, seed=1):
    m = lib.nn.MultiheadAttention(E, H, add_bias_kv=bias_kv, add_zero_attn=zero_attn)
    rng = np.random.default_rng(seed)
    with lib.no_grad():
        for p in m.parameters():
            p.copy_(lib.tensor((rng.standard_normal(tuple(p.shape)) * 0.5).astype(np.float32)))
    return m


def _numpy_forward(m, bias_kv, zero_attn):
    w = {n: p.detach().numpy().astype(np.float64) for n, p in m.named_parameters()}
    wq, wk, wv = np.split(w["in_proj_weight"], 3)
    bq, bk, bv = np.split(w["in_proj_bias"], 3)
    q, k, v = Q @ wq.T + bq, KV @ wk.T + bk, KV @ wv.T + bv
    mask = np.where(MASK, -np.inf, 0.0)
    kpm = np.where(KPM, -np.inf, 0.0)
    if bias_kv:
        k = np.concatenate([k, np.broadcast_to(w["bias_k"], (1, N, E))])
        v = np.concatenate([v, np.broadcast_to(w["bias_v"], (1, N, E))])
    for _ in range(int(bias_kv) + int(zero_attn)):
        mask = np.pad(mask, ((0, 0), (0, 1)))
        kpm = np.pad(kpm, ((0, 0), (0, 1)))
    if zero_attn:
        k, v = np.concatenate([k, np.zeros((1, N, E))]), np.concatenate([v, np.zeros((1, N, E))])
    hd = E // H
    heads = lambda x: x.reshape(x.shape[0], N, H, hd).transpose(1, 2, 0, 3)   # noqa: E731
    scores = heads(q) @ heads(k).transpose(0, 1, 3, 2) / np.sqrt(hd)
    scores = scores + mask + kpm[:, None, None, :]
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    out = (weights @ heads(v)).transpose(2, 0, 1, 3).reshape(L, N, E)
    return out @ w["out_proj.weight"].T + w["out_proj.bias"], weights.mean(1)


@pytest.mark.parametrize("bias_kv,zero_attn", [(True, False), (False, True), (True, True)])
def test_forward_matches_numpy(bias_kv, zero_attn):
    m = _mha(tg, bias_kv, zero_attn)
    names = [n for n, _ in m.named_parameters()]
    assert names == ["in_proj_weight", "in_proj_bias"] + (["bias_k", "bias_v"] if bias_kv
                                                          else []) + ["out_proj.weight",
                                                                      "out_proj.bias"]
    out, weights = m(tg.tensor(Q), tg.tensor(KV), tg.tensor(KV), key_padding_mask=tg.tensor(KPM),
                     attn_mask=tg.tensor(MASK))
    want_out, want_w = _numpy_forward(m, bias_kv, zero_attn)
    np.testing.assert_allclose(out.detach().numpy(), want_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(weights.detach().numpy(), want_w, rtol=1e-4, atol=1e-6)
    assert tuple(weights.shape) == (N, L, S + int(bias_kv) + int(zero_attn))


def test_training_matches_torch():
    torch = pytest.importorskip("torch")
    out = []
    for lib in (tg, torch):
        m = _mha(lib, True, True)
        opt = lib.optim.SGD(m.parameters(), lr=0.1)
        q, kv = lib.tensor(Q), lib.tensor(KV)
        for _ in range(3):
            opt.zero_grad()
            y, w = m(q, kv, kv, key_padding_mask=lib.tensor(KPM), attn_mask=lib.tensor(MASK))
            ((y ** 2).mean() + (w ** 2).sum()).backward()
            opt.step()
        out.append({k: v.detach().numpy().copy() for k, v in m.state_dict().items()})
    assert list(out[0]) == list(out[1])
    for k in out[0]:
        np.testing.assert_allclose(out[0][k], out[1][k], rtol=1e-4, atol=1e-5, err_msg=k)
