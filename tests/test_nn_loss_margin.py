"""Margin and likelihood losses (nn/_loss_margin.py) against PyTorch 2.13: the loss and
the first six input-gradient entries on fixed float64 data, recorded from
torch.nn.functional with the same calls; the module forms call the functional ones."""
import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn
import tracegrad.nn.functional as F

rng = np.random.default_rng(0)
x = rng.standard_normal((4, 5))
y_sign = np.sign(rng.standard_normal((4, 5)))
labels = rng.integers(0, 2, (4, 5)).astype(float)
cls = np.array([0, 3, 4, 1])
a, p, n = (rng.standard_normal((4, 6)) for _ in range(3))
var = rng.random((4, 5)) + 0.05
w = rng.random(5)
T = torch.tensor

CASES = {
    "soft_margin": lambda X: F.soft_margin_loss(X, T(y_sign)),
    "hinge": lambda X: F.hinge_embedding_loss(X, T(y_sign), margin=0.7, reduction="sum"),
    "multilabel": lambda X: F.multilabel_soft_margin_loss(X, T(labels), weight=T(w)),
    "multi_margin": lambda X: F.multi_margin_loss(X, T(cls), margin=0.9),
    "multi_margin_p2_w": lambda X: F.multi_margin_loss(X, T(cls), p=2, weight=T(w),
                                                       reduction="sum"),
    "triplet": lambda X: F.triplet_margin_loss(T(a) + X.sum() * 0.1, T(p), T(n), margin=2.0),
    "triplet_swap_p1": lambda X: F.triplet_margin_loss(T(a) * X.mean(), T(p), T(n), p=1,
                                                       swap=True),
    "gaussian": lambda X: F.gaussian_nll_loss(X, T(y_sign), T(var)),
    "gaussian_full_vec": lambda X: F.gaussian_nll_loss(X, T(y_sign), T(var[:, 0]), full=True,
                                                       reduction="sum"),
}
# name -> (loss, x.grad.ravel()[:6]) printed by torch 2.13
TORCH_2_13 = {
    'soft_margin': (0.79846489, [0.02656956, -0.02664891, 0.03274245, -0.02368995, -0.03154022, -0.02052868]),
    'hinge': (7.09559417, [-1.0, 1.0, -1.0, 1.0, 1.0, 1.0]),
    'multilabel': (0.36016273, [-0.00952472, -0.02424942, 0.00141012, 0.02164544, -0.0131013, -0.00834512]),
    'multi_margin': (1.13782141, [-0.2, 0.05, 0.05, 0.05, 0.05, 0.05]),
    'multi_margin_p2_w': (6.99991507, [-0.58124924, 0.12067908, 0.24629525, 0.15921707, 0.05505783, 0.67966408]),
    'triplet': (1.67807783, [-0.05211842, -0.05211842, -0.05211842, -0.05211842, -0.05211842, -0.05211842]),
    'triplet_swap_p1': (2.13991122, [-0.10599557, -0.10599557, -0.10599557, -0.10599557, -0.10599557, -0.10599557]),
    'gaussian': (1.46480385, [0.18223685, -0.1940691, 0.08743154, -0.16223253, -0.43988197, -0.09434628]),
    'gaussian_full_vec': (62.06276884, [3.64473703, -3.66537599, 5.31113856, -2.89803332, -4.97198257, -1.88692554]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_loss_and_gradient_match_pytorch(name):
    X = torch.tensor(x, requires_grad=True)
    out = CASES[name](X)
    out.backward()
    loss, grads = TORCH_2_13[name]
    assert out.item() == pytest.approx(loss, abs=1e-8)  # recorded to 8 decimals
    np.testing.assert_allclose(X.grad.numpy().ravel()[:6], grads, rtol=1e-7, atol=1e-8)


def test_modules_call_the_functional_forms():
    X = torch.tensor(x)
    pairs = [
        (nn.SoftMarginLoss()(X, T(y_sign)), F.soft_margin_loss(X, T(y_sign))),
        (nn.HingeEmbeddingLoss(0.7, reduction="sum")(X, T(y_sign)),
         F.hinge_embedding_loss(X, T(y_sign), 0.7, reduction="sum")),
        (nn.MultiLabelSoftMarginLoss(weight=T(w))(X, T(labels)),
         F.multilabel_soft_margin_loss(X, T(labels), T(w))),
        (nn.MultiMarginLoss(p=2, margin=0.9)(X, T(cls)), F.multi_margin_loss(X, T(cls), 2, 0.9)),
        (nn.TripletMarginLoss(margin=2.0, swap=True)(T(a), T(p), T(n)),
         F.triplet_margin_loss(T(a), T(p), T(n), 2.0, swap=True)),
        (nn.GaussianNLLLoss(full=True)(X, T(y_sign), T(var)),
         F.gaussian_nll_loss(X, T(y_sign), T(var), full=True)),
    ]
    for module_out, functional_out in pairs:
        assert module_out.item() == functional_out.item()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="var has negative entry"):
        F.gaussian_nll_loss(T(x), T(x), T(-var))
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        nn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        F.soft_margin_loss(T(x), T(y_sign), reduction="avg")
