"""pack_padded_sequence / pad_packed_sequence / pack_sequence and RNN, LSTM, GRU on a
PackedSequence, as NLP training scripts use them (``tracegrad.nn.utils.rnn`` had only
pad_sequence: AttributeError). Checked against each sequence run alone (no padding), and
against PyTorch when it is installed."""
import numpy as np
import pytest

import tracegrad as tg

R = tg.nn.utils.rnn
LENGTHS = [3, 5, 1, 4]


def _padded(batch_first=True, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((len(LENGTHS), max(LENGTHS), 3)).astype(np.float32)
    for b, n in enumerate(LENGTHS):
        x[b, n:] = 0.0
    return x if batch_first else x.transpose(1, 0, 2).copy()


def test_pack_layout_and_round_trip():
    x = tg.tensor(_padded(), requires_grad=True)
    p = R.pack_padded_sequence(x, tg.tensor(LENGTHS), batch_first=True, enforce_sorted=False)
    order = np.argsort(-np.array(LENGTHS), kind="stable")
    assert p.batch_sizes.tolist() == [4, 3, 3, 2, 1]
    assert p.sorted_indices.tolist() == order.tolist()
    assert p.unsorted_indices.tolist() == np.argsort(order).tolist()
    want = np.concatenate([_padded()[order[:n], t] for t, n in enumerate([4, 3, 3, 2, 1])])
    np.testing.assert_array_equal(p.data.detach().numpy(), want)
    y, lengths = R.pad_packed_sequence(p, batch_first=True, padding_value=-1.0, total_length=6)
    assert lengths.tolist() == LENGTHS and str(lengths.dtype) == "tracegrad.int64"
    expect = np.full((4, 6, 3), -1.0, np.float32)
    for b, n in enumerate(LENGTHS):
        expect[b, :n] = _padded()[b, :n]
    np.testing.assert_array_equal(y.detach().numpy(), expect)
    (y * y).sum().backward()   # the gradient reaches only the valid steps
    mask = np.arange(5)[None, :, None] < np.array(LENGTHS)[:, None, None]
    np.testing.assert_array_equal(x.grad.numpy(), np.where(mask, 2 * _padded(), 0.0))


def test_pack_errors():
    x = tg.tensor(_padded())
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        R.pack_padded_sequence(x, LENGTHS, batch_first=True)
    with pytest.raises(RuntimeError, match="greater than 0"):
        R.pack_padded_sequence(x, [3, 0, 1, 1], batch_first=True, enforce_sorted=False)
    p = R.pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    with pytest.raises(ValueError, match="total_length"):
        R.pad_packed_sequence(p, total_length=2)


def test_pack_sequence_and_unpack():
    seqs = [tg.tensor(_padded()[b, :n]) for b, n in enumerate(LENGTHS)]
    p = R.pack_sequence(seqs, enforce_sorted=False)
    for a, b in zip(R.unpack_sequence(p), seqs):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(R.unpad_sequence(tg.tensor(_padded(False)), tg.tensor(LENGTHS)), seqs):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


CONFIGS = [("RNN", {}), ("GRU", {"bidirectional": True}), ("LSTM", {"num_layers": 2}),
           ("LSTM", {"num_layers": 2, "bidirectional": True}), ("GRU", {"num_layers": 2})]


def _module(lib, kind, kw, seed=1):
    m = getattr(lib.nn, kind)(3, 4, batch_first=True, **kw)
    rng = np.random.default_rng(seed)
    with lib.no_grad():
        for p in m.parameters():
            p.copy_(lib.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32) * 0.5))
    return m


@pytest.mark.parametrize("kind,kw", CONFIGS)
def test_packed_equals_each_sequence_alone(kind, kw):
    m = _module(tg, kind, kw)
    x = _padded()
    p = R.pack_padded_sequence(tg.tensor(x), LENGTHS, batch_first=True, enforce_sorted=False)
    with tg.no_grad():
        out, hidden = m(p)
        h_n = hidden[0] if kind == "LSTM" else hidden
        y, lengths = R.pad_packed_sequence(out, batch_first=True)
    assert lengths.tolist() == LENGTHS
    for b, n in enumerate(LENGTHS):
        with tg.no_grad():
            alone, alone_h = m(tg.tensor(x[b:b + 1, :n]))
        alone_h = alone_h[0] if kind == "LSTM" else alone_h
        np.testing.assert_allclose(y.numpy()[b, :n], alone.numpy()[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(y.numpy()[b, n:], 0.0)
        np.testing.assert_allclose(h_n.numpy()[:, b], alone_h.numpy()[:, 0], rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize("kind,kw", CONFIGS)
def test_packed_training_matches_torch(kind, kw):
    torch = pytest.importorskip("torch")
    results = []
    for lib in (tg, torch):
        m = _module(lib, kind, kw)
        emb = lib.tensor(_padded(), requires_grad=True)
        D = 2 if kw.get("bidirectional") else 1
        h0 = lib.tensor(np.full((kw.get("num_layers", 1) * D, 4, 4), 0.1, np.float32))
        hx = (h0, -h0) if kind == "LSTM" else h0
        opt = lib.optim.SGD(m.parameters(), lr=0.1)
        losses = []
        for _ in range(3):
            opt.zero_grad()
            p = R.pack_padded_sequence(emb, lib.tensor(LENGTHS), batch_first=True,
                                       enforce_sorted=False) if lib is tg else \
                torch.nn.utils.rnn.pack_padded_sequence(emb, torch.tensor(LENGTHS),
                                                        batch_first=True, enforce_sorted=False)
            out, hidden = m(p, hx)
            h_n = hidden[0] if kind == "LSTM" else hidden
            loss = (out.data ** 2).mean() + (h_n ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        results.append((losses, [q.detach().numpy() for q in m.parameters()], emb.grad.numpy()))
    (l1, w1, g1), (l2, w2, g2) = results
    np.testing.assert_allclose(l1, l2, rtol=1e-5)
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-6)
