"""nn.functional activations and losses: values against NumPy references, gradients
by gradcheck in float64, reductions incl. PyTorch's legacy size_average/reduce."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn
import tracegrad.nn.functional as F
from tracegrad.autograd import gradcheck
from test_nn_helpers import projected_gradcheck, rand64, t64

rng = np.random.default_rng(0)
X = np.array([-25.0, -4.0, -3.0, -1.5, -0.3, 0.2, 1.0, 2.9, 3.0, 3.5, 7.0, 30.0])
erf = np.vectorize(math.erf)
sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731

ACTIVATIONS = {
    "relu": (F.relu, nn.ReLU(), lambda a: np.maximum(a, 0)),
    "relu6": (F.relu6, nn.ReLU6(), lambda a: np.clip(a, 0, 6)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), nn.LeakyReLU(0.2),
                   lambda a: np.where(a > 0, a, 0.2 * a)),
    "elu": (F.elu, nn.ELU(), lambda a: np.where(a > 0, a, np.expm1(np.minimum(a, 0)))),
    "selu": (F.selu, nn.SELU(), lambda a: 1.0507009873554805 * np.where(
        a > 0, a, 1.6732632423543772 * np.expm1(np.minimum(a, 0)))),
    "gelu": (F.gelu, nn.GELU(), lambda a: 0.5 * a * (1 + erf(a / np.sqrt(2)))),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), nn.GELU("tanh"),
                  lambda a: 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a ** 3)))),
    "silu": (F.silu, nn.SiLU(), lambda a: a * sig(a)),
    "mish": (F.mish, nn.Mish(), lambda a: a * np.tanh(np.logaddexp(0, a))),
    "sigmoid": (F.sigmoid, nn.Sigmoid(), sig),
    "tanh": (F.tanh, nn.Tanh(), np.tanh),
    "softplus": (lambda x: F.softplus(x, beta=2, threshold=5), nn.Softplus(2, 5),
                 lambda a: np.where(2 * a > 5, a, np.logaddexp(0, 2 * a) / 2)),
    "hardtanh": (F.hardtanh, nn.Hardtanh(), lambda a: np.clip(a, -1, 1)),
    "hardsigmoid": (F.hardsigmoid, nn.Hardsigmoid(), lambda a: np.clip(a / 6 + 0.5, 0, 1)),
    "hardswish": (F.hardswish, nn.Hardswish(), lambda a: a * np.clip(a + 3, 0, 6) / 6),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_values_and_module(name):
    fn, module, ref = ACTIVATIONS[name]
    x = torch.tensor(X)
    np.testing.assert_allclose(fn(x).numpy(), ref(X), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(module(x).numpy(), ref(X), rtol=1e-6, atol=1e-9)
    assert np.isfinite(fn(torch.tensor(X.astype(np.float32))).numpy()).all()


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradcheck(name):
    fn = ACTIVATIONS[name][0]
    # away from kinks, where finite differences are ill-defined
    x = t64(np.array([-3.7, -2.2, -1.3, -0.4, 0.3, 1.1, 2.4, 3.6, 6.5]))
    assert gradcheck(fn, (x,))


def test_activation_gradients_finite_at_extremes():
    for name, (fn, _, _) in ACTIVATIONS.items():
        x = t64(np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0]))
        fn(x).sum().backward()
        assert np.isfinite(x.grad.numpy()).all(), name


def test_relu_gradient_at_zero_is_zero_and_hardtanh_ends():
    x = t64([0.0, -1.0, 1.0])
    F.relu(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0]
    x = t64([-1.0, 1.0, 0.5])
    F.hardtanh(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0]


def test_softmax_family_and_default_dims():
    a = rng.standard_normal((3, 4))
    e = np.exp(a - a.max(1, keepdims=True))
    sm = e / e.sum(1, keepdims=True)
    x = torch.tensor(a)
    np.testing.assert_allclose(nn.Softmax(dim=1)(x).numpy(), sm, rtol=1e-12)
    np.testing.assert_allclose(nn.LogSoftmax(dim=1)(x).numpy(), np.log(sm), rtol=1e-12)
    e2 = np.exp(-a - (-a).max(1, keepdims=True))
    np.testing.assert_allclose(nn.Softmin(1)(x).numpy(), e2 / e2.sum(1, keepdims=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(F.softmax(x).numpy(), sm)  # implicit dim=1 for 2-D
    assert gradcheck(lambda t: F.log_softmax(t, -1), (rand64(2, 3),))


def test_inplace_activation_writes_through():
    x = torch.tensor([-1.0, 2.0])
    y = nn.ReLU(inplace=True)(x)
    assert x.tolist() == [0.0, 2.0] and y.tolist() == [0.0, 2.0]
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"


# ---- losses ---------------------------------------------------------------------------
def _red(v, reduction):
    return {"mean": v.mean(), "sum": v.sum(), "none": v}[reduction]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_losses(reduction):
    a, b = rng.standard_normal((3, 4)) * 2, rng.standard_normal((3, 4))
    d = a - b
    ad = np.abs(d)
    refs = {
        "mse": (F.mse_loss, nn.MSELoss, {}, d * d),
        "l1": (F.l1_loss, nn.L1Loss, {}, ad),
        "smooth_l1": (lambda x, y, reduction: F.smooth_l1_loss(x, y, reduction=reduction,
                                                               beta=0.5),
                      lambda reduction: nn.SmoothL1Loss(reduction=reduction, beta=0.5), {},
                      np.where(ad < 0.5, 0.5 * d * d / 0.5, ad - 0.25)),
        "huber": (lambda x, y, reduction: F.huber_loss(x, y, reduction=reduction, delta=1.5),
                  lambda reduction: nn.HuberLoss(reduction=reduction, delta=1.5), {},
                  np.where(ad <= 1.5, 0.5 * d * d, 1.5 * (ad - 0.75))),
    }
    for name, (fn, cls, _, ref) in refs.items():
        x, y = t64(a), t64(b, False)
        expected = _red(ref, reduction)
        np.testing.assert_allclose(fn(x, y, reduction=reduction).detach().numpy(), expected,
                                   rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(cls(reduction=reduction)(x, y).detach().numpy(), expected,
                                   rtol=1e-12, err_msg=name)
        assert projected_gradcheck(lambda t: fn(t, y, reduction=reduction), (x,)), name


def test_smooth_l1_beta_zero_is_l1():
    a, b = t64([1.0, -2.0]), t64([0.5, 0.0], False)
    assert F.smooth_l1_loss(a, b, beta=0.0).item() == pytest.approx(1.25)


@pytest.mark.parametrize("size_average,reduce,expected", [
    (None, None, "mean"), (True, True, "mean"), (False, True, "sum"), (None, False, "none"),
    (False, None, "sum"), (True, False, "none")])
def test_legacy_size_average_reduce(size_average, reduce, expected):
    a, b = rng.standard_normal(5), rng.standard_normal(5)
    ref = _red((a - b) ** 2, expected)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        m = nn.MSELoss(size_average=size_average, reduce=reduce) \
            if (size_average, reduce) != (None, None) else nn.MSELoss(reduce=None, size_average=True)
    if (size_average, reduce) != (None, None):
        assert m.reduction == expected
    with pytest.warns(UserWarning):
        out = F.mse_loss(torch.tensor(a), torch.tensor(b), size_average=size_average,
                         reduce=reduce if (size_average, reduce) != (None, None) else True)
    np.testing.assert_allclose(out.numpy(), ref)
    with pytest.warns(UserWarning):
        ce = nn.CrossEntropyLoss(size_average=size_average, reduce=False if reduce is False else True)
    assert ce.reduction in ("mean", "sum", "none")


def _log_softmax(a, axis=1):
    m = a.max(axis, keepdims=True)
    return a - m - np.log(np.exp(a - m).sum(axis, keepdims=True))


def _ce_ref(logits, target, weight=None, ignore_index=-100, reduction="mean", ls=0.0):
    """A direct NumPy cross entropy over (N, C) logits and (N,) targets."""
    lp = _log_softmax(logits)
    N, C = lp.shape
    w = np.ones(C) if weight is None else weight
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    nll = -lp[np.arange(N), safe] * w[safe] * valid
    smooth = -(lp * w).sum(1) * valid
    wsum = (w[safe] * valid).sum()
    if reduction == "none":
        return (1 - ls) * nll + ls / C * smooth
    if reduction == "sum":
        return (1 - ls) * nll.sum() + ls / C * smooth.sum()
    return (1 - ls) * nll.sum() / wsum + ls / C * smooth.sum() / wsum


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_cross_entropy_class_indices(reduction, weighted, ls):
    logits = rng.standard_normal((6, 4))
    target = np.array([0, 3, 1, -100, 2, 3])
    weight = np.array([0.5, 1.0, 2.0, 1.5]) if weighted else None
    x = t64(logits)
    kw = dict(weight=None if weight is None else torch.tensor(weight), ignore_index=-100,
              reduction=reduction, label_smoothing=ls)
    out = F.cross_entropy(x, torch.tensor(target), **kw)
    np.testing.assert_allclose(out.detach().numpy(),
                               _ce_ref(logits, target, weight, -100, reduction, ls), rtol=1e-10)
    m = nn.CrossEntropyLoss(**kw)
    np.testing.assert_allclose(m(x, torch.tensor(target)).detach().numpy(),
                               out.detach().numpy())
    assert projected_gradcheck(lambda t: F.cross_entropy(t, torch.tensor(target), **kw), (x,))


def test_cross_entropy_k_dim_matches_flattened():
    logits = rng.standard_normal((2, 3, 4, 5))
    target = rng.integers(0, 3, (2, 4, 5))
    flat_logits = logits.transpose(0, 2, 3, 1).reshape(-1, 3)
    for reduction in ("mean", "sum"):
        out = F.cross_entropy(torch.tensor(logits), torch.tensor(target), reduction=reduction,
                              label_smoothing=0.1)
        ref = _ce_ref(flat_logits, target.reshape(-1), reduction=reduction, ls=0.1)
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10)
    none = F.cross_entropy(torch.tensor(logits), torch.tensor(target), reduction="none")
    assert tuple(none.shape) == (2, 4, 5)
    np.testing.assert_allclose(none.numpy().reshape(-1),
                               _ce_ref(flat_logits, target.reshape(-1), reduction="none"))
    x = rand64(2, 3, 2, 2)
    t = torch.tensor(rng.integers(0, 3, (2, 2, 2)))
    assert projected_gradcheck(lambda a: F.cross_entropy(a, t), (x,))


def test_cross_entropy_unbatched_and_probabilities():
    logits = rng.standard_normal(4)
    out = F.cross_entropy(torch.tensor(logits), torch.tensor(2))
    assert out.item() == pytest.approx(-_log_softmax(logits[None])[0, 2])
    logits = rng.standard_normal((3, 4))
    probs = rng.random((3, 4))
    probs /= probs.sum(1, keepdims=True)
    w = np.array([1.0, 2.0, 0.5, 1.0])
    ref = -(_log_softmax(logits) * probs * w).sum(1)
    x = t64(logits)
    out = F.cross_entropy(x, torch.tensor(probs), weight=torch.tensor(w))
    assert out.item() == pytest.approx(ref.mean())
    ls = 0.3
    sm = probs * (1 - ls) + ls / 4
    out = F.cross_entropy(x, torch.tensor(probs), label_smoothing=ls, reduction="sum")
    assert out.item() == pytest.approx(-(_log_softmax(logits) * sm).sum())
    assert projected_gradcheck(lambda a: F.cross_entropy(a, torch.tensor(probs)), (x,))


def test_cross_entropy_out_of_range_target_is_clear():
    with pytest.raises(IndexError, match=r"target 7 is out of bounds.*4 classes"):
        F.cross_entropy(torch.randn(2, 4), torch.tensor([1, 7]))
    with pytest.raises(IndexError, match=r"target -1"):
        nn.NLLLoss()(torch.randn(2, 4), torch.tensor([-1, 0]))
    # ignore_index may lie outside the class range
    F.cross_entropy(torch.randn(2, 4), torch.tensor([1, -100]))


def test_nll_loss_matches_reference():
    lp = _log_softmax(rng.standard_normal((5, 3)))
    target = np.array([2, 0, 1, 1, 0])
    w = np.array([1.0, 0.2, 3.0])
    out = nn.NLLLoss(weight=torch.tensor(w), ignore_index=1)(torch.tensor(lp), torch.tensor(target))
    valid = target != 1
    ref = (-lp[np.arange(5), target] * w[target] * valid).sum() / (w[target] * valid).sum()
    assert out.item() == pytest.approx(ref)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_and_bce_with_logits(reduction):
    z = rng.standard_normal((4, 3)) * 3
    p = sig(z)
    t = (rng.random((4, 3)) > 0.5).astype(np.float64)
    w = rng.random(3) + 0.5
    pw = np.array([0.5, 2.0, 3.0])
    ref = -w * (t * np.log(p) + (1 - t) * np.log(1 - p))
    out = F.binary_cross_entropy(t64(p), torch.tensor(t), weight=torch.tensor(w),
                                 reduction=reduction)
    np.testing.assert_allclose(out.detach().numpy(), _red(ref, reduction), rtol=1e-10)
    ref2 = -w * (pw * t * np.log(p) + (1 - t) * np.log(1 - p))
    m = nn.BCEWithLogitsLoss(weight=torch.tensor(w), pos_weight=torch.tensor(pw),
                             reduction=reduction)
    np.testing.assert_allclose(m(t64(z), torch.tensor(t)).detach().numpy(),
                               _red(ref2, reduction), rtol=1e-9)
    x = t64(p)
    assert projected_gradcheck(lambda a: nn.BCELoss(reduction=reduction)(a, torch.tensor(t)), (x,))
    x = t64(z)
    assert projected_gradcheck(lambda a: m(a, torch.tensor(t)), (x,))


def test_bce_clamps_log_and_logits_are_stable():
    out = F.binary_cross_entropy(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0]),
                                 reduction="none")
    assert out.tolist() == [100.0, 100.0]
    z = t64([-1000.0, 1000.0])
    out = F.binary_cross_entropy_with_logits(z, torch.tensor([1.0, 0.0], dtype=torch.float64),
                                             reduction="none")
    assert out.tolist() == [1000.0, 1000.0]
    out.sum().backward()
    assert z.grad.tolist() == [-1.0, 1.0]
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(torch.tensor([1.5]), torch.tensor([1.0]))


@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(log_target):
    lp = _log_softmax(rng.standard_normal((3, 4)))
    q = rng.random((3, 4))
    q[0, 1] = 0.0
    q /= q.sum(1, keepdims=True)
    if log_target:
        tgt = np.log(q + 1e-3)
        pointwise = np.exp(tgt) * (tgt - lp)
    else:
        tgt = q
        pointwise = np.where(q > 0, q * (np.log(np.where(q > 0, q, 1)) - lp), 0.0)
    m = nn.KLDivLoss(reduction="batchmean", log_target=log_target)
    x = t64(lp)
    assert m(x, torch.tensor(tgt)).item() == pytest.approx(pointwise.sum() / 3)
    np.testing.assert_allclose(F.kl_div(x, torch.tensor(tgt), reduction="none",
                                        log_target=log_target).detach().numpy(), pointwise)
    with pytest.warns(UserWarning):
        F.kl_div(x, torch.tensor(tgt), reduction="mean", log_target=log_target)
    assert projected_gradcheck(lambda a: m(a, torch.tensor(tgt)), (x,))


def test_one_hot_pad_normalize_cosine():
    oh = F.one_hot(torch.tensor([0, 2, 1]), 4)
    assert oh.dtype == torch.int64 and oh.tolist() == [[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0]]
    assert F.one_hot(torch.tensor([1, 3])).shape == (2, 4)
    p = F.pad(torch.ones(1, 2, 2), (1, 0, 0, 2), value=5.0)
    assert tuple(p.shape) == (1, 4, 3) and p[0, 3, 0].item() == 5.0
    a, b = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    np.testing.assert_allclose(F.normalize(torch.tensor(a)).numpy(),
                               a / np.linalg.norm(a, axis=1, keepdims=True))
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(F.cosine_similarity(torch.tensor(a), torch.tensor(b)).numpy(), cos)
    assert gradcheck(lambda x, y: F.cosine_similarity(x, y), (rand64(2, 3), rand64(2, 3, seed=1)))
    assert gradcheck(lambda x: F.normalize(x, dim=-1), (rand64(2, 3),))


def test_scaled_dot_product_attention_matches_numpy():
    q, k, v = (rng.standard_normal((2, 3, 4)) for _ in range(3))
    s = q @ k.transpose(0, 2, 1) / 2.0
    causal = np.tril(np.ones((3, 3), bool))
    s = np.where(causal, s, -np.inf)
    w = np.exp(s - s.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    out = F.scaled_dot_product_attention(torch.tensor(q), torch.tensor(k), torch.tensor(v),
                                         is_causal=True)
    np.testing.assert_allclose(out.numpy(), w @ v, rtol=1e-10)
    out2 = F.scaled_dot_product_attention(torch.tensor(q), torch.tensor(k), torch.tensor(v),
                                          attn_mask=torch.tensor(causal))
    np.testing.assert_allclose(out2.numpy(), w @ v, rtol=1e-10)
    qs, ks, vs = rand64(1, 2, 3), rand64(1, 2, 3, seed=1), rand64(1, 2, 3, seed=2)
    assert projected_gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c),
                               (qs, ks, vs))


def test_dropout_statistics_and_seed_replay():
    x = torch.ones(20000)
    torch.manual_seed(3)
    y = F.dropout(x, 0.3)
    kept = y.numpy() != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.7, rtol=1e-6)
    torch.manual_seed(3)
    assert np.array_equal(F.dropout(x, 0.3).numpy(), y.numpy())
    assert F.dropout(x, 0.3, training=False) is x
    assert F.dropout(x, 1.0).sum().item() == 0
    d = nn.Dropout(0.5)
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)
    xg = t64(np.ones(6))
    torch.manual_seed(1)
    out = F.dropout(xg, 0.5)
    out.sum().backward()
    np.testing.assert_allclose(xg.grad.numpy(), out.detach().numpy())  # grad = mask / (1-p)
