"""MultiheadAttention against a NumPy reference (masks, batch_first, per-head weights,
kdim/vdim), TransformerEncoderLayer (post- and pre-norm) against its equations,
TransformerEncoder stacking, gradcheck."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn
from test_nn_helpers import module_gradcheck, rand64

rng = np.random.default_rng(3)


def softmax(a):
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def mha_ref(m, q, k, v, attn_mask=None, kpm=None):
    """(L, N, E) inputs; returns output and per-head weights (N, H, L, S)."""
    E, H = m.embed_dim, m.num_heads
    hd = E // H
    if m.in_proj_weight is not None:
        Wq, Wk, Wv = np.split(m.in_proj_weight.detach().numpy(), 3)
    else:
        Wq, Wk, Wv = (getattr(m, n).detach().numpy() for n in
                      ("q_proj_weight", "k_proj_weight", "v_proj_weight"))
    bq, bk, bv = np.split(m.in_proj_bias.detach().numpy(), 3)
    L, N, _ = q.shape
    S = k.shape[0]
    Q = (q @ Wq.T + bq).reshape(L, N, H, hd).transpose(1, 2, 0, 3)
    K = (k @ Wk.T + bk).reshape(S, N, H, hd).transpose(1, 2, 0, 3)
    V = (v @ Wv.T + bv).reshape(S, N, H, hd).transpose(1, 2, 0, 3)
    s = Q @ K.transpose(0, 1, 3, 2) / math.sqrt(hd)
    if attn_mask is not None:
        s = s + (np.where(attn_mask, -np.inf, 0.0) if attn_mask.dtype == bool else attn_mask)
    if kpm is not None:
        s = np.where(kpm[:, None, None, :], -np.inf, s)
    w = softmax(s)
    out = (w @ V).transpose(2, 0, 1, 3).reshape(L, N, E)
    out = out @ m.out_proj.weight.detach().numpy().T + m.out_proj.bias.detach().numpy()
    return out, w


def test_mha_matches_reference_with_masks():
    torch.manual_seed(0)
    m = nn.MultiheadAttention(8, 2).double()
    L, S, N = 4, 5, 3
    q, k, v = rng.standard_normal((L, N, 8)), rng.standard_normal((S, N, 8)), rng.standard_normal((S, N, 8))
    mask = np.triu(np.ones((L, S), bool), 2)
    kpm = np.zeros((N, S), bool)
    kpm[1, -2:] = True
    out, w = m(torch.tensor(q), torch.tensor(k), torch.tensor(v), attn_mask=torch.tensor(mask),
               key_padding_mask=torch.tensor(kpm))
    ref_out, ref_w = mha_ref(m, q, k, v, mask, kpm)
    np.testing.assert_allclose(out.detach().numpy(), ref_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.detach().numpy(), ref_w.mean(1), rtol=1e-10, atol=1e-12)
    _, w_all = m(torch.tensor(q), torch.tensor(k), torch.tensor(v), average_attn_weights=False)
    np.testing.assert_allclose(w_all.detach().numpy(), mha_ref(m, q, k, v)[1], rtol=1e-10)
    # float additive mask
    fm = rng.standard_normal((L, S))
    out, _ = m(torch.tensor(q), torch.tensor(k), torch.tensor(v), attn_mask=torch.tensor(fm))
    np.testing.assert_allclose(out.detach().numpy(), mha_ref(m, q, k, v, fm)[0], rtol=1e-10)
    out, none = m(torch.tensor(q), torch.tensor(k), torch.tensor(v), need_weights=False)
    assert none is None


def test_mha_batch_first_unbatched_kdim_and_names():
    torch.manual_seed(0)
    m = nn.MultiheadAttention(6, 3, batch_first=True).double()
    x = rng.standard_normal((2, 4, 6))
    out, w = m(torch.tensor(x), torch.tensor(x), torch.tensor(x))
    ref, ref_w = mha_ref(m, x.transpose(1, 0, 2), x.transpose(1, 0, 2), x.transpose(1, 0, 2))
    np.testing.assert_allclose(out.detach().numpy(), ref.transpose(1, 0, 2), rtol=1e-10)
    o1, w1 = m(torch.tensor(x[0]), torch.tensor(x[0]), torch.tensor(x[0]))  # unbatched (L, E)
    np.testing.assert_allclose(o1.detach().numpy(), ref[:, 0], rtol=1e-10)
    assert tuple(w1.shape) == (4, 4)
    assert sorted(m.state_dict()) == ["in_proj_bias", "in_proj_weight", "out_proj.bias",
                                      "out_proj.weight"]
    kv = nn.MultiheadAttention(4, 2, kdim=3, vdim=5).double()
    q, k, v = rng.standard_normal((2, 1, 4)), rng.standard_normal((3, 1, 3)), rng.standard_normal((3, 1, 5))
    out, _ = kv(torch.tensor(q), torch.tensor(k), torch.tensor(v))
    np.testing.assert_allclose(out.detach().numpy(), mha_ref(kv, q, k, v)[0], rtol=1e-10)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        nn.MultiheadAttention(5, 2)


def test_mha_gradcheck():
    torch.manual_seed(0)
    m = nn.MultiheadAttention(4, 2)
    x = rand64(3, 2, 4)
    assert module_gradcheck(m, x, x, x)


def layer_norm(x, w, b, eps=1e-5):
    m, v = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_matches_equations(norm_first, activation):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1,
                                       activation=activation, norm_first=norm_first,
                                       batch_first=True).double()
    layer.eval()  # dropout off
    x = rng.standard_normal((2, 5, 8))
    P = {k: v.numpy() for k, v in layer.state_dict().items()}
    from math import erf
    act = (lambda a: np.maximum(a, 0)) if activation == "relu" else \
        (lambda a: 0.5 * a * (1 + np.vectorize(erf)(a / np.sqrt(2))))

    def sa(h):
        o, _ = mha_ref(layer.self_attn, *(h.transpose(1, 0, 2),) * 3)
        return o.transpose(1, 0, 2)

    def ff(h):
        return act(h @ P["linear1.weight"].T + P["linear1.bias"]) @ P["linear2.weight"].T + P["linear2.bias"]
    n1 = lambda h: layer_norm(h, P["norm1.weight"], P["norm1.bias"])  # noqa: E731
    n2 = lambda h: layer_norm(h, P["norm2.weight"], P["norm2.bias"])  # noqa: E731
    if norm_first:
        h = x + sa(n1(x))
        ref = h + ff(n2(h))
    else:
        h = n1(x + sa(x))
        ref = n2(h + ff(h))
    np.testing.assert_allclose(layer(torch.tensor(x)).detach().numpy(), ref, rtol=1e-9, atol=1e-12)


def test_encoder_stack_copies_layers_and_masks_padding():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0)
    enc = nn.TransformerEncoder(layer, num_layers=3, norm=nn.LayerNorm(4))
    assert len(enc.layers) == 3
    assert enc.layers[0].linear1.weight is not enc.layers[1].linear1.weight
    np.testing.assert_allclose(enc.layers[0].linear1.weight.detach().numpy(),
                               enc.layers[2].linear1.weight.detach().numpy())
    names = [n for n, _ in enc.named_parameters()]
    assert "layers.2.self_attn.in_proj_weight" in names and names[-1] == "norm.bias"
    x = torch.randn(5, 2, 4)
    kpm = torch.tensor([[False] * 5, [False, False, False, True, True]])
    out = enc(x, src_key_padding_mask=kpm)
    # padded keys do not influence the unpadded positions of sequence 1
    x2 = x.clone()
    x2[3:, 1] = 100.0
    out2 = enc(x2, src_key_padding_mask=kpm)
    np.testing.assert_allclose(out[:3, 1].detach().numpy(), out2[:3, 1].detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_encoder_layer_gradcheck():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, norm_first=True)
    assert module_gradcheck(layer, rand64(3, 1, 4))
