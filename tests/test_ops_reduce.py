"""Reductions against NumPy: dim as int/tuple/None, keepdim, 0-d and empty inputs,
values+indices for max/min, and hypothesis properties over shapes and dims."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tracegrad as torch
from tracegrad.autograd import gradcheck

rng = np.random.default_rng(1)


def arr(*shape):
    return rng.standard_normal(shape).astype(np.float32)


REDUCTIONS = {
    "sum": np.sum, "mean": np.mean, "prod": np.prod, "amax": np.amax, "amin": np.amin,
    "logsumexp": lambda a, axis=None, keepdims=False: np.log(np.sum(np.exp(a), axis=axis, keepdims=keepdims)),
}


@st.composite
def array_and_dims(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4))
    a = draw(hnp.arrays(np.float32, shape, elements=st.floats(-3, 3, width=32)))
    ndim = len(shape)
    if ndim == 0:
        dim = None
    else:
        dim = draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                             st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim,
                                      unique=True).map(tuple)))
    keepdim = draw(st.booleans())
    return a, dim, keepdim


@settings(max_examples=60, deadline=None)
@given(array_and_dims(), st.sampled_from(sorted(REDUCTIONS)))
def test_reductions_property(case, name):
    a, dim, keepdim = case
    t = torch.from_numpy(a)
    axis = dim if dim is None or isinstance(dim, tuple) else (dim,)
    kwargs = {} if dim is None and name not in ("amax", "amin") else {"dim": dim}
    if dim is None and name in ("amax", "amin"):
        kwargs = {}
    out = getattr(torch, name)(t, keepdim=keepdim, **kwargs) if kwargs or keepdim else getattr(torch, name)(t)
    expected = REDUCTIONS[name](a.astype(np.float64), axis=axis, keepdims=keepdim) \
        if (kwargs or keepdim) else REDUCTIONS[name](a.astype(np.float64))
    # float32 results: a prod of many 3s overflows to inf there as in PyTorch
    with np.errstate(over="ignore"):
        expected = np.asarray(expected).astype(np.float32)
    assert tuple(out.shape) == expected.shape, (name, a.shape, dim, keepdim)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(array_and_dims())
def test_var_std_property(case):
    a, dim, keepdim = case
    t = torch.from_numpy(a)
    axis = dim if dim is None or isinstance(dim, tuple) else (dim,)
    n = a.size if axis is None else int(np.prod([a.shape[i] for i in axis]))
    for unbiased in (True, False):
        ddof = 1 if unbiased else 0
        if n - ddof <= 0:
            continue
        out = torch.var(t, dim, unbiased=unbiased, keepdim=keepdim)
        np.testing.assert_allclose(out.numpy(), np.var(a.astype(np.float64), axis=axis, ddof=ddof,
                                                        keepdims=keepdim), rtol=1e-4, atol=1e-5)
        out = t.std(dim=dim, unbiased=unbiased, keepdim=keepdim)
        np.testing.assert_allclose(out.numpy(), np.std(a.astype(np.float64), axis=axis, ddof=ddof,
                                                        keepdims=keepdim), rtol=1e-4, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(array_and_dims())
def test_sum_gradient_shape_property(case):
    a, dim, keepdim = case
    x = torch.from_numpy(a.astype(np.float64)).requires_grad_()
    y = x.sum(dim=dim, keepdim=keepdim) if dim is not None else x.sum()
    (y * 2).sum().backward()
    assert tuple(x.grad.shape) == a.shape
    assert np.all(x.grad.numpy() == 2.0)


def test_max_min_with_dim_return_values_and_indices():
    a = np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]], np.float32)
    t = torch.from_numpy(a)
    values, indices = t.max(dim=1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    assert indices.dtype == torch.int64
    res = torch.min(t, 0, keepdim=True)
    assert res.values.tolist() == [[1.0, 0.0, 2.0]] and res.indices.tolist() == [[0, 1, 0]]
    assert t.max().item() == 7.0 and torch.min(t).item() == 0.0
    assert torch.max(t, torch.full((2, 3), 4.0)).tolist() == [[4.0, 5.0, 4.0], [7.0, 4.0, 4.0]]


def test_argmax_argmin():
    a = arr(3, 4)
    t = torch.from_numpy(a)
    assert t.argmax().item() == int(np.argmax(a))
    assert t.argmax(dim=1).tolist() == np.argmax(a, axis=1).tolist()
    assert t.argmin(0, keepdim=True).tolist() == np.argmin(a, axis=0)[None].tolist()
    assert torch.tensor(3.0).argmax().item() == 0


def test_reductions_on_0d_and_empty():
    s = torch.tensor(2.5)
    assert s.sum().item() == 2.5 and s.mean().item() == 2.5 and s.max().item() == 2.5
    assert s.sum(0).item() == 2.5 and s.sum(dim=-1, keepdim=True).shape == ()
    e = torch.zeros(0, 3)
    assert e.sum().item() == 0.0
    assert e.sum(0).tolist() == [0.0, 0.0, 0.0]
    assert e.prod().item() == 1.0
    assert tuple(e.sum(1).shape) == (0,)
    assert np.isnan(e.mean().item())
    assert torch.tensor([], dtype=torch.bool).all().item() is True
    assert torch.tensor([], dtype=torch.bool).any().item() is False


def test_all_any_count_nonzero():
    t = torch.tensor([[True, False], [True, True]])
    assert t.all().item() is False and t.any().item() is True
    assert t.all(dim=1).tolist() == [False, True]
    assert torch.tensor([0, 2, 3]).all().item() is False
    assert torch.count_nonzero(torch.tensor([[0, 1], [2, 0]]), dim=0).tolist() == [1, 1]


def test_cumsum_and_norm():
    a = arr(3, 4)
    t = torch.from_numpy(a)
    np.testing.assert_allclose(t.cumsum(1).numpy(), np.cumsum(a, 1), rtol=1e-6)
    np.testing.assert_allclose(torch.cumsum(t, dim=-2).numpy(), np.cumsum(a, 0), rtol=1e-6)
    np.testing.assert_allclose(t.norm().item(), np.linalg.norm(a), rtol=1e-5)
    np.testing.assert_allclose(t.norm(p=1, dim=1).numpy(), np.abs(a).sum(1), rtol=1e-5)
    np.testing.assert_allclose(t.norm(dim=0, keepdim=True).numpy(),
                               np.linalg.norm(a, axis=0, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(t.norm(p=float("inf")).item(), np.abs(a).max(), rtol=1e-6)
    np.testing.assert_allclose(t.norm(p=3).item(), (np.abs(a) ** 3).sum() ** (1 / 3), rtol=1e-5)


def test_mean_of_int_raises_clear_error():
    with pytest.raises(RuntimeError, match="mean.*Long|mean.*int64"):
        torch.tensor([1, 2]).mean()
    assert torch.tensor([1, 2]).mean(dtype=torch.float32).item() == 1.5


def test_softmax_log_softmax():
    a = arr(3, 5) * 10
    t = torch.from_numpy(a)
    e = np.exp(a - a.max(1, keepdims=True))
    np.testing.assert_allclose(torch.softmax(t, dim=1).numpy(), e / e.sum(1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(t.log_softmax(1).numpy(), np.log(e / e.sum(1, keepdims=True)),
                               rtol=1e-4, atol=1e-5)
    big = torch.tensor([1000.0, 1000.0])
    assert torch.softmax(big, 0).tolist() == [0.5, 0.5]
    assert torch.logsumexp(big, 0).item() == pytest.approx(1000 + np.log(2))


def test_logsumexp_of_all_minus_inf():
    t = torch.tensor([-float("inf"), -float("inf")])
    assert torch.logsumexp(t, 0).item() == -float("inf")


REDUCE_GRAD_FNS = [
    lambda x: x.sum(), lambda x: x.sum((0, 2)), lambda x: x.mean(1, keepdim=True),
    lambda x: x.prod(1), lambda x: x.amax(1), lambda x: x.max(dim=2).values,
    lambda x: x.min(), lambda x: x.var(1), lambda x: x.std(dim=(0, 1), unbiased=False),
    lambda x: x.logsumexp(2), lambda x: x.norm(), lambda x: x.norm(p=1, dim=0),
    lambda x: torch.softmax(x, dim=1), lambda x: torch.log_softmax(x, dim=-1),
    lambda x: x.cumsum(1),
]


@pytest.mark.parametrize("i", range(len(REDUCE_GRAD_FNS)))
def test_reduction_composites_gradcheck(i):
    x = torch.from_numpy(rng.uniform(0.5, 1.5, (2, 3, 4)) * np.sign(rng.standard_normal((2, 3, 4))))
    x.requires_grad_()
    assert gradcheck(REDUCE_GRAD_FNS[i], (x,))


def test_max_gradient_splits_ties():
    x = torch.tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.5]
