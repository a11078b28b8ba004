"""PyTorch accepts NumPy's names for some parameters on every function it parses
(``axis`` for ``dim``, ``keepdims`` for ``keepdim``, ``x``/``a``/``x1`` for ``input``,
``x2`` for ``other``); expected values come from NumPy."""
import numpy as np
import pytest

import tracegrad as tg
from tracegrad._ops.pytorch_args import UnsupportedArgumentError

A = np.arange(12, dtype=np.float32).reshape(3, 4) * 0.5 - 2.0
B = np.linspace(0.5, 3.0, 12, dtype=np.float32).reshape(3, 4)


def t(a):
    return tg.tensor(a)


@pytest.mark.parametrize("call, expected", [
    (lambda: tg.sum(t(A), axis=1), A.sum(axis=1)),
    (lambda: tg.sum(t(A), axis=1, keepdims=True), A.sum(axis=1, keepdims=True)),
    (lambda: tg.sum(t(A), dim=0, keepdims=True), A.sum(axis=0, keepdims=True)),
    (lambda: tg.mean(t(A), axis=0), A.mean(axis=0)),
    (lambda: tg.mean(a=t(A), axis=0), A.mean(axis=0)),
    (lambda: tg.std(t(A), axis=1), A.std(axis=1, ddof=1)),
    (lambda: tg.cat([t(A), t(B)], axis=1), np.concatenate([A, B], axis=1)),
    (lambda: tg.stack([t(A), t(B)], axis=1), np.stack([A, B], axis=1)),
    (lambda: tg.cumsum(t(A), axis=0), np.cumsum(A, axis=0)),
    (lambda: tg.argmax(t(A), axis=1), np.argmax(A, axis=1)),
    (lambda: tg.softmax(t(A), axis=-1),
     np.exp(A) / np.exp(A).sum(axis=-1, keepdims=True)),
    (lambda: tg.atan2(x1=t(A), x2=t(B)), np.arctan2(A, B)),
    (lambda: tg.hypot(t(A), x2=t(B)), np.hypot(A, B)),
    (lambda: tg.acos(x=t(B / 4)), np.arccos(B / 4)),
])
def test_torch_functions_take_numpys_names(call, expected):
    np.testing.assert_allclose(call().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_max_with_axis_returns_values_and_indices():
    values, indices = tg.max(t(A), axis=1, keepdims=True)
    np.testing.assert_allclose(values.numpy(), A.max(axis=1, keepdims=True))
    np.testing.assert_array_equal(indices.numpy(), A.argmax(axis=1)[:, None])


def test_alias_with_out_writes_out():
    out = tg.empty(3, 4)
    tg.cumsum(t(A), axis=1, out=out)
    np.testing.assert_allclose(out.numpy(), np.cumsum(A, axis=1))
    out = tg.empty(6, 4)
    tg.cat([t(A), t(B)], axis=0, out=out)
    np.testing.assert_allclose(out.numpy(), np.concatenate([A, B]))


def test_alias_and_its_parameter_together_is_a_type_error():
    with pytest.raises(TypeError, match="'dim'.*'axis'"):
        tg.sum(t(A), dim=0, axis=1)


def test_alias_gradient_matches_parameter_gradient():
    x = tg.tensor(A, requires_grad=True)
    (tg.sum(x, axis=1, keepdims=True) * t(B[:, :1])).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.broadcast_to(B[:, :1], A.shape))


def test_an_alias_pytorch_refuses_keeps_the_typo_message():
    # torch.sum has no 'other', so 'x2' is a typo there too
    with pytest.raises(UnsupportedArgumentError, match="does not accept it either"):
        tg.sum(t(A), x2=t(B))


def test_a_function_lacking_only_numpys_names_is_wrapped_for_them():
    from tracegrad._ops.pytorch_args import adapt

    def softmax(input, dim, dtype=None):
        return input * 2
    adapted = adapt(softmax, "torch.softmax")
    assert adapted is not softmax
    x = t(A)
    np.testing.assert_allclose(adapted(a=x, axis=0).numpy(), A * 2)
    np.testing.assert_allclose(adapted(x, 0).numpy(), A * 2)


def test_hot_tensor_methods_stay_unwrapped():
    from tracegrad._ops.pytorch_args import KEPT_UNWRAPPED_FOR_SPEED
    for key in KEPT_UNWRAPPED_FOR_SPEED:
        owner, name = key.split(".", 1)
        method = tg.Tensor.__dict__[name] if owner == "Tensor" else getattr(tg, name)
        assert not hasattr(method, "__wrapped_pytorch__"), key
    for name in ("sum", "mean", "max", "argmax", "softmax", "cumsum"):
        assert not hasattr(tg.Tensor.__dict__[name], "__wrapped_pytorch__"), name


@pytest.mark.parametrize("call, expected", [
    (lambda: t(A).sum(axis=1, keepdims=True), A.sum(axis=1, keepdims=True)),
    (lambda: t(A).sum(1, keepdims=True), A.sum(axis=1, keepdims=True)),
    (lambda: t(A).mean(axis=0), A.mean(axis=0)),
    (lambda: t(A).prod(axis=0), A.prod(axis=0)),
    (lambda: t(A).max(axis=1).values, A.max(axis=1)),
    (lambda: t(A).min(axis=1, keepdims=True).indices, A.argmin(axis=1)[:, None]),
    (lambda: t(A).amax(axis=0), A.max(axis=0)),
    (lambda: t(A).amin(axis=(0, 1)), A.min()),
    (lambda: t(A).argmax(axis=1), A.argmax(axis=1)),
    (lambda: t(A).argmin(axis=0, keepdims=True), A.argmin(axis=0)[None]),
    (lambda: t(A).std(axis=1), A.std(axis=1, ddof=1)),
    (lambda: t(A).var(axis=0, keepdims=True), A.var(axis=0, ddof=1, keepdims=True)),
    (lambda: t(A).logsumexp(axis=1), np.log(np.exp(A).sum(axis=1))),
    (lambda: t(A).softmax(axis=0), np.exp(A) / np.exp(A).sum(axis=0)),
    (lambda: t(A).log_softmax(axis=0), A - np.log(np.exp(A).sum(axis=0))),
    (lambda: t(A).cumsum(axis=1), np.cumsum(A, axis=1)),
    (lambda: (t(A) > 0).all(axis=1), (A > 0).all(axis=1)),
    (lambda: (t(A) > 0).any(axis=0, keepdims=True), (A > 0).any(axis=0, keepdims=True)),
    (lambda: t(A).count_nonzero(axis=0), np.count_nonzero(A, axis=0)),
    (lambda: t(A[:1]).squeeze(axis=0), A[0]),
    (lambda: t(A).unsqueeze(axis=1), A[:, None]),
    (lambda: t(A).unbind(axis=1)[2], A[:, 2]),
    (lambda: t(A).chunk(2, axis=1)[1], A[:, 2:]),
    (lambda: t(A).cummax(axis=1).values, np.maximum.accumulate(A, axis=1)),
    (lambda: t(A).cumprod(axis=0), np.cumprod(A, axis=0)),
    (lambda: t(A).sort(axis=0).values, np.sort(A, axis=0)),
    (lambda: t(A).argsort(axis=1), np.argsort(A, axis=1, kind="stable")),
    (lambda: t(A).nansum(axis=1), np.nansum(A, axis=1)),
    (lambda: t(A).diff(axis=0), np.diff(A, axis=0)),
    (lambda: t(A).hypot(x2=t(B)), np.hypot(A, B)),
    (lambda: t(A).atan2(x2=t(B)), np.arctan2(A, B)),
    (lambda: t(B).xlogy(x2=t(A + 3)), B * np.log(A + 3)),
    (lambda: t(A).mul_(x2=t(B)), A * B),
    (lambda: tg.corrcoef(x=t(A)), np.corrcoef(A)),
    (lambda: tg.trace(a=t(A)), np.trace(A)),
    (lambda: tg.rot90(x=t(A)), np.rot90(A)),
    (lambda: tg.fliplr(x1=t(A)), np.fliplr(A)),
    (lambda: tg.diff(t(A), axis=1), np.diff(A, axis=1)),
    (lambda: tg.isclose(x1=t(A), x2=t(A + 1e-9)), np.isclose(A, A + 1e-9)),
])
def test_tensor_methods_and_functions_take_numpys_names(call, expected):
    np.testing.assert_allclose(call().numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("call", [
    lambda: t(A).sum(1, axis=0),
    lambda: t(A).sum(keepdim=True, keepdims=True),
    lambda: t(A).unsqueeze(0, axis=0),
    lambda: t(A).cumsum(),
])
def test_a_name_given_twice_or_missing_is_a_type_error(call):
    with pytest.raises(TypeError, match="'dim'|'keepdim'"):
        call()


def test_numpy_names_match_torch():
    torch = pytest.importorskip("torch")
    for name, kwargs in [("sum", {"axis": 1, "keepdims": True}), ("std", {"axis": 0}),
                         ("cumsum", {"axis": 1}), ("squeeze", {"axis": 0}),
                         ("logsumexp", {"axis": 1}), ("argsort", {"axis": 1})]:
        a = A[:1] if name == "squeeze" else A
        want = getattr(torch.tensor(a), name)(**kwargs).numpy()
        got = getattr(t(a), name)(**kwargs).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)
    want = torch.cat([torch.tensor(A), torch.tensor(B)], axis=1).numpy()
    np.testing.assert_allclose(tg.cat([t(A), t(B)], axis=1).numpy(), want)
