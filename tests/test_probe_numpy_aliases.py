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
