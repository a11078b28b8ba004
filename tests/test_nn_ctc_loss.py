"""F.ctc_loss and nn.CTCLoss against PyTorch 2.13: padded and concatenated targets,
every reduction, another blank, unequal input lengths, an impossible alignment (inf, or
0 with zero_infinity) and the gradient of the logits; compiled against eager."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn as nn
import tracegrad.nn.functional as F

T = pytest.importorskip("torch")
rng = np.random.default_rng(0)
X = rng.standard_normal((12, 4, 6))
TARGETS = np.array([[1, 2, 2, 3], [4, 4, 5, 1], [2, 1, 5, 3], [5, 5, 5, 5]])
IN_LEN = np.array([12, 10, 12, 3])
TG_LEN = np.array([4, 2, 3, 2])


def _both(targets, in_len, tg_len, x=X, **kw):
    tx, gx = T.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
    a = T.nn.functional.ctc_loss(T.log_softmax(tx, -1), T.tensor(targets), T.tensor(in_len),
                                 T.tensor(tg_len), **kw)
    b = F.ctc_loss(F.log_softmax(gx, -1), tg.tensor(targets), tg.tensor(in_len),
                   tg.tensor(tg_len), **kw)
    np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-12)
    u = rng.standard_normal(tuple(a.shape))
    if a.ndim:   # no gradient flows from an infinite loss
        u = np.where(np.isfinite(a.detach().numpy()), u, 0.0)
    a.backward(T.tensor(u))
    b.backward(tg.tensor(u))
    # NOTE: torch fills an infinite loss's frames with NaN gradients (even when weighted
    # by 0); tracegrad gives them 0, what zero_infinity=True gives in both
    ref = np.nan_to_num(tx.grad.numpy(), nan=0.0)
    np.testing.assert_allclose(gx.grad.numpy(), ref, rtol=1e-9, atol=1e-13)
    return b


@pytest.mark.parametrize("kw", [{}, {"reduction": "sum"}, {"reduction": "none"}])
def test_padded_and_concatenated_targets_match_pytorch(kw):
    _both(TARGETS, IN_LEN, TG_LEN, **kw)
    flat = np.concatenate([TARGETS[n, :TG_LEN[n]] for n in range(4)])
    _both(flat, IN_LEN, TG_LEN, **kw)


def test_blank_index_unbatched_and_impossible_alignments():
    _both(np.where(TARGETS == 3, 0, TARGETS), IN_LEN, TG_LEN, blank=3)
    _both(TARGETS[0], IN_LEN[:1], TG_LEN[:1], x=X[:, 0], reduction="none")
    # [5, 5] needs 3 frames (5, blank, 5): with 2 it is impossible
    impossible = np.array([12, 10, 12, 2])
    loss = _both(TARGETS, impossible, TG_LEN, reduction="none")
    assert np.isinf(loss.detach().numpy()[3])
    loss = _both(TARGETS, impossible, TG_LEN, reduction="none", zero_infinity=True)
    assert loss.detach().numpy()[3] == 0


def test_module_and_compile():
    m_t, m_g = T.nn.CTCLoss(blank=0, zero_infinity=True), nn.CTCLoss(blank=0,
                                                                     zero_infinity=True)
    assert repr(m_g) == repr(m_t)
    x = tg.tensor(X)
    args = (tg.tensor(TARGETS), tg.tensor(IN_LEN), tg.tensor(TG_LEN))
    eager = m_g(F.log_softmax(x, -1), *args)
    np.testing.assert_allclose(eager.item(), m_t(T.log_softmax(T.tensor(X), -1), T.tensor(
        TARGETS), T.tensor(IN_LEN), T.tensor(TG_LEN)).item(), rtol=1e-12)
    step = tg.compile(lambda x: m_g(F.log_softmax(x, -1), *args))
    np.testing.assert_allclose(step(x).item(), eager.item(), rtol=1e-12)
    with pytest.raises(ValueError, match="ctc_loss: blank must be in label range"):
        F.ctc_loss(F.log_softmax(x, -1), *args, blank=6)
