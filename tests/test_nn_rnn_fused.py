"""The recurrent layers' fused paths (nn/modules/_rnn_fused.py): once a signature is warm,
a float32 CPU sequence runs as one compiled call (or one per step); outputs and every
gradient equal the eager ops' up to float32 reassociation, and anything the fused paths
cannot do (float64, an outer trace, a failing compile) runs the eager ops without a
warning."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn
from tracegrad.nn.modules import _rnn_fused


@pytest.fixture(params=["sequence", "step"])
def fused(request, monkeypatch):
    """Fuse from the first call at one grain, with an empty signature table around."""
    if request.param == "sequence":
        monkeypatch.setattr(_rnn_fused, "SEQUENCE_WARMUP", 0)
    else:
        monkeypatch.setattr(_rnn_fused, "SEQUENCE_WARMUP", 10**9)
        monkeypatch.setattr(_rnn_fused, "WARMUP", 0)
    old = _rnn_fused.set_enabled(True)
    _rnn_fused.clear()
    yield _rnn_fused._State
    _rnn_fused.clear()
    _rnn_fused.set_enabled(old)


def _run(model, x, hx, enabled):
    _rnn_fused.set_enabled(enabled)
    model.zero_grad()
    x = x.detach().requires_grad_()
    out, hidden = model(x, hx)
    hn = hidden[0] if isinstance(hidden, tuple) else hidden
    # weights every output position and the final state differently
    loss = (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum() + (hn * hn).sum()
    loss.backward()
    grads = [p.grad.numpy().copy() for p in model.parameters()] + [x.grad.numpy().copy()]
    return out.detach().numpy(), hn.detach().numpy(), grads


CASES = [(nn.LSTM, {}), (nn.LSTM, {"num_layers": 2, "bidirectional": True}),
         (nn.GRU, {}), (nn.GRU, {"bias": False}), (nn.RNN, {}),
         (nn.RNN, {"nonlinearity": "relu"})]


@pytest.mark.parametrize("cls,kw", CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_fused_step_matches_eager_values_and_gradients(fused, cls, kw):
    torch.manual_seed(0)
    model = cls(3, 5, **kw)
    x = torch.randn(6, 2, 3)
    D = 2 if model.bidirectional else 1
    h0 = torch.randn(model.num_layers * D, 2, 5)
    hx = (h0, torch.randn(model.num_layers * D, 2, 5)) if cls is nn.LSTM else h0
    eager = _run(model, x, hx, enabled=False)
    assert not fused.compiled
    compiled = _run(model, x, hx, enabled=True)
    assert fused.compiled and all(fn is not None and fn.misses >= 1
                                  for fn in fused.compiled.values())
    for e, c in zip(eager[:2] + tuple(eager[2]), compiled[:2] + tuple(compiled[2])):
        np.testing.assert_allclose(c, e, rtol=2e-5, atol=2e-6)


def test_a_training_loop_fuses_after_warm_up_and_learns_the_same(monkeypatch):
    _rnn_fused.clear()
    monkeypatch.setattr(_rnn_fused, "WARMUP", 8)  # steps: from the 2nd sequence
    monkeypatch.setattr(_rnn_fused, "SEQUENCE_WARMUP", 3)  # sequences: from the 4th
    results = []
    for enabled in (False, True):
        _rnn_fused.set_enabled(enabled)
        torch.manual_seed(1)
        model = nn.LSTM(2, 4, batch_first=True)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        x, y = torch.randn(3, 5, 2), torch.randn(3, 4)
        for _ in range(6):
            opt.zero_grad()
            loss = (model(x)[0][:, -1] - y).pow(2).mean()
            loss.backward()
            opt.step()
        results.append([p.detach().numpy().copy() for p in model.parameters()])
    grains = {key[0] if isinstance(key[0], str) else "sequence": fn
              for key, fn in _rnn_fused._State.compiled.items()}
    assert grains["LSTM"].hits >= 3 and grains["sequence"].hits >= 1  # both replayed
    for e, c in zip(*results):
        np.testing.assert_allclose(c, e, rtol=1e-4, atol=1e-6)
    _rnn_fused.clear()


def test_one_short_call_stays_eager():
    _rnn_fused.clear()
    nn.LSTM(3, 4)(torch.randn(5, 1, 3))
    assert not _rnn_fused._State.compiled


def test_float64_and_no_grad_and_outer_trace(fused):
    m = nn.GRU(3, 4).double()
    m(torch.randn(4, 2, 3, dtype=torch.float64))
    assert not fused.compiled  # float64 keeps NumPy's exact transcendentals

    m = nn.GRU(3, 4)
    x = torch.randn(4, 2, 3)
    with torch.no_grad():
        out = m(x)[0]
    assert len(fused.compiled) >= 1 and not out.requires_grad
    _rnn_fused.set_enabled(False)
    with torch.no_grad():
        ref = m(x)[0]
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=2e-5, atol=2e-6)

    _rnn_fused.set_enabled(True)
    _rnn_fused.clear()
    outer = torch.compile(lambda x: m(x)[0].sum())
    np.testing.assert_allclose(outer(x).item(), ref.sum().item(), rtol=1e-5)
    assert not fused.compiled  # the outer trace saw the plain ops


def test_a_failing_compile_runs_eagerly_without_a_warning(fused, monkeypatch):
    def broken(xw, h, w_hh):
        raise RuntimeError("no kernel today")
    monkeypatch.setitem(_rnn_fused._STEPS, "RNN_TANH", broken)
    m = nn.RNN(3, 4)
    x = torch.randn(5, 2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = m(x)[0]
        out2 = m(x)[0]
    assert list(fused.compiled.values()) and all(v is None for v in fused.compiled.values())
    _rnn_fused.set_enabled(False)
    ref = m(x)[0]
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(out2.detach().numpy(), ref.detach().numpy(), rtol=1e-6)
