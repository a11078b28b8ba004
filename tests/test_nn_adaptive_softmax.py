"""AdaptiveLogSoftmaxWithLoss against PyTorch 2.13 (weights copied): per-row target
log-probabilities, the loss and every parameter's gradient, log_prob, predict, the
state_dict keys and repr; compiled loss against eager."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn as nn
from tracegrad.nn.modules.adaptive import AdaptiveLogSoftmaxWithLoss

T = pytest.importorskip("torch")
rng = np.random.default_rng(0)


def _pair(head_bias=False):
    ref = T.nn.AdaptiveLogSoftmaxWithLoss(16, 20, [4, 9, 15], div_value=2.0,
                                          head_bias=head_bias).double()
    mine = AdaptiveLogSoftmaxWithLoss(16, 20, [4, 9, 15], div_value=2.0, head_bias=head_bias,
                                      dtype=tg.float64)
    assert list(mine.state_dict()) == list(ref.state_dict())
    mine.load_state_dict({k: tg.tensor(v.detach().numpy()) for k, v in
                          ref.state_dict().items()})
    return ref, mine


@pytest.mark.parametrize("head_bias", [False, True])
def test_output_loss_and_gradients_match_pytorch(head_bias):
    ref, mine = _pair(head_bias)
    assert repr(mine) == repr(ref)
    x = rng.standard_normal((12, 16))
    target = np.array([0, 3, 4, 8, 9, 14, 15, 19, 2, 10, 10, 17])
    tx, gx = T.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
    a, b = ref(tx, T.tensor(target)), mine(gx, tg.tensor(target))
    np.testing.assert_allclose(b.output.detach().numpy(), a.output.detach().numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(b.loss.item(), a.loss.item(), rtol=1e-12)
    a.loss.backward()
    b.loss.backward()
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-14)
    for (n1, p), (n2, q) in zip(ref.named_parameters(), mine.named_parameters()):
        assert n1 == n2
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(mine.log_prob(tg.tensor(x)).detach().numpy(),
                               ref.log_prob(T.tensor(x)).detach().numpy(), rtol=1e-12)
    assert mine.predict(tg.tensor(x)).tolist() == ref.predict(T.tensor(x)).tolist()
    one = mine(gx[0], tg.tensor(target[0]))
    assert one.output.ndim == 0
    np.testing.assert_allclose(one.output.item(), a.output[0].item(), rtol=1e-12)


def test_errors_and_compile():
    with pytest.raises(ValueError, match="cutoffs should be a sequence of unique"):
        AdaptiveLogSoftmaxWithLoss(8, 10, [5, 3])
    _, mine = _pair()
    with pytest.raises(RuntimeError, match=r"Target values should be in \[0, 19\]"):
        mine(tg.zeros(2, 16, dtype=tg.float64), tg.tensor([1, 20]))
    x = tg.tensor(rng.standard_normal((6, 16)))
    target = tg.tensor([0, 5, 11, 19, 3, 7])
    eager = mine(x, target).loss
    # the targets choose rows on the host: a compiled step closes over them
    compiled = tg.compile(lambda x: mine(x, target).loss)(x)
    np.testing.assert_allclose(compiled.item(), eager.item(), rtol=1e-12)
    assert nn.AdaptiveLogSoftmaxWithLoss is AdaptiveLogSoftmaxWithLoss
    assert compiled.requires_grad
