"""RNN/LSTM/GRU against the gate equations in NumPy (PyTorch's gate order and names),
bidirectional and multi-layer stacking, initial states, batch_first, cells, any sequence
length, gradcheck."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn
from tracegrad import ShapeError
from test_nn_helpers import module_gradcheck, rand64

rng = np.random.default_rng(2)
sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731


def _p(m, name):
    return getattr(m, name).detach().numpy()


def ref_direction(mode, x, h, c, m, sfx, reverse=False):
    """One direction of one layer over (L, N, in), straight from the equations."""
    Wi, Wh = _p(m, "weight_ih" + sfx), _p(m, "weight_hh" + sfx)
    bi = _p(m, "bias_ih" + sfx) if m.bias else 0.0
    bh = _p(m, "bias_hh" + sfx) if m.bias else 0.0
    outs = [None] * len(x)
    steps = range(len(x) - 1, -1, -1) if reverse else range(len(x))
    for t in steps:
        if mode == "LSTM":
            gates = x[t] @ Wi.T + bi + h @ Wh.T + bh
            i, f, g, o = np.split(gates, 4, -1)
            c = sig(f) * c + sig(i) * np.tanh(g)
            h = sig(o) * np.tanh(c)
        elif mode == "GRU":
            gi, gh = x[t] @ Wi.T + bi, h @ Wh.T + bh
            ir, iz, in_ = np.split(gi, 3, -1)
            hr, hz, hn = np.split(gh, 3, -1)
            r, z = sig(ir + hr), sig(iz + hz)
            n = np.tanh(in_ + r * hn)
            h = (1 - z) * n + z * h
        else:
            pre = x[t] @ Wi.T + bi + h @ Wh.T + bh
            h = np.maximum(pre, 0) if mode == "RNN_RELU" else np.tanh(pre)
        outs[t] = h
    return np.stack(outs), h, c


def ref_rnn(m, x, h0, c0):
    D = 2 if m.bidirectional else 1
    hn, cn = [], []
    for layer in range(m.num_layers):
        outs = []
        for d in range(D):
            k = layer * D + d
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            o, h, c = ref_direction(m.mode, x, h0[k], None if c0 is None else c0[k], m, sfx, d == 1)
            outs.append(o)
            hn.append(h)
            cn.append(c)
        x = np.concatenate(outs, -1)
    return x, np.stack(hn), (np.stack(cn) if c0 is not None else None)


@pytest.mark.parametrize("cls,kw", [
    (nn.RNN, {}), (nn.RNN, {"nonlinearity": "relu", "bias": False}),
    (nn.LSTM, {}), (nn.LSTM, {"num_layers": 2, "bidirectional": True}),
    (nn.GRU, {}), (nn.GRU, {"num_layers": 2, "bidirectional": True, "bias": False})])
def test_sequence_layers_match_equations(cls, kw):
    torch.manual_seed(0)
    m = cls(3, 4, **kw).double()
    L, N = 5, 2
    D = 2 if m.bidirectional else 1
    x = rng.standard_normal((L, N, 3))
    h0 = rng.standard_normal((m.num_layers * D, N, 4))
    c0 = rng.standard_normal((m.num_layers * D, N, 4)) if cls is nn.LSTM else None
    hx = (torch.tensor(h0), torch.tensor(c0)) if cls is nn.LSTM else torch.tensor(h0)
    out, hidden = m(torch.tensor(x), hx)
    ref_out, ref_h, ref_c = ref_rnn(m, x, h0, c0)
    np.testing.assert_allclose(out.detach().numpy(), ref_out, rtol=1e-10, atol=1e-12)
    if cls is nn.LSTM:
        np.testing.assert_allclose(hidden[0].detach().numpy(), ref_h, rtol=1e-10)
        np.testing.assert_allclose(hidden[1].detach().numpy(), ref_c, rtol=1e-10)
    else:
        np.testing.assert_allclose(hidden.detach().numpy(), ref_h, rtol=1e-10)


def test_parameter_names_shapes_and_init_like_pytorch():
    m = nn.LSTM(3, 5, num_layers=2, bidirectional=True)
    names = [n for n, _ in m.named_parameters()]
    assert names[:8] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                         "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse",
                         "bias_hh_l0_reverse"]
    assert tuple(m.weight_ih_l0.shape) == (20, 3)
    assert tuple(m.weight_ih_l1.shape) == (20, 10)
    assert tuple(nn.GRU(3, 5).weight_hh_l0.shape) == (15, 5)
    bound = 1 / np.sqrt(5)
    assert all(np.abs(p.detach().numpy()).max() <= bound for p in m.parameters())
    assert repr(m) == "LSTM(3, 5, num_layers=2, bidirectional=True)"
    assert len(m.all_weights) == 4


def test_batch_first_unbatched_and_default_state():
    torch.manual_seed(1)
    m = nn.GRU(3, 4, batch_first=True).double()
    x = rng.standard_normal((2, 6, 3))
    out, h = m(torch.tensor(x))
    ref_out, ref_h, _ = ref_rnn(m, x.transpose(1, 0, 2), np.zeros((1, 2, 4)), None)
    np.testing.assert_allclose(out.detach().numpy(), ref_out.transpose(1, 0, 2), rtol=1e-10)
    out1, h1 = m(torch.tensor(x[0]))  # unbatched (L, H_in)
    np.testing.assert_allclose(out1.detach().numpy(), ref_out[:, 0], rtol=1e-10)
    assert tuple(h1.shape) == (1, 4)
    lstm = nn.LSTM(3, 4)
    o, (h, c) = lstm(torch.randn(7, 3))
    assert tuple(o.shape) == (7, 4) and tuple(h.shape) == (1, 4) and tuple(c.shape) == (1, 4)


def test_any_sequence_length_builds_its_own_graph():
    m = nn.LSTM(2, 3)
    for L in (1, 4, 11):
        x = torch.randn(L, 1, 2)
        out, _ = m(x)
        assert out.shape[0] == L
        out.sum().backward()
    assert m.weight_hh_l0.grad is not None


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    m = nn.GRU(3, 8, num_layers=2, dropout=0.5)
    x = torch.randn(4, 2, 3)
    a = m(x)[0]
    b = m(x)[0]
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())
    m.eval()
    np.testing.assert_allclose(m(x)[0].detach().numpy(), m(x)[0].detach().numpy())


def test_cells_match_one_step_of_the_layers():
    torch.manual_seed(0)
    for cell_cls, layer_cls in ((nn.RNNCell, nn.RNN), (nn.LSTMCell, nn.LSTM), (nn.GRUCell, nn.GRU)):
        cell = cell_cls(3, 4).double()
        layer = layer_cls(3, 4).double()
        layer.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
        x = rng.standard_normal((2, 3))
        h = rng.standard_normal((2, 4))
        if cell_cls is nn.LSTMCell:
            c = rng.standard_normal((2, 4))
            h1, c1 = cell(torch.tensor(x), (torch.tensor(h), torch.tensor(c)))
            _, (hl, cl) = layer(torch.tensor(x[None]), (torch.tensor(h[None]), torch.tensor(c[None])))
            np.testing.assert_allclose(c1.detach().numpy(), cl[0].detach().numpy(), rtol=1e-12)
        else:
            h1 = cell(torch.tensor(x), torch.tensor(h))
            _, hl = layer(torch.tensor(x[None]), torch.tensor(h[None]))
        np.testing.assert_allclose(h1.detach().numpy(), hl[0].detach().numpy(), rtol=1e-12)
    assert tuple(nn.GRUCell(3, 4)(torch.randn(3)).shape) == (4,)
    assert repr(nn.RNNCell(3, 4, nonlinearity="relu")) == "RNNCell(3, 4, nonlinearity=relu)"


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_rnn_gradcheck(cls):
    torch.manual_seed(0)
    m = cls(2, 3, bidirectional=True)
    assert module_gradcheck(m, rand64(3, 2, 2))


def test_cell_gradcheck():
    assert module_gradcheck(nn.LSTMCell(2, 3), rand64(2, 2))
    assert module_gradcheck(nn.GRUCell(2, 3), rand64(2, 2), rand64(2, 3, seed=5))


def test_rnn_shape_errors():
    with pytest.raises(ShapeError, match=r"LSTM\(3, 4\): expected input with last dimension 3 "
                                         r"\(input_size\), got shape \(5, 2, 7\)"):
        nn.LSTM(3, 4)(torch.randn(5, 2, 7))
    with pytest.raises(ShapeError, match=r"expected hx of shape \(1, 2, 4\), got \(2, 2, 4\)"):
        nn.GRU(3, 4)(torch.randn(5, 2, 3), torch.randn(2, 2, 4))
