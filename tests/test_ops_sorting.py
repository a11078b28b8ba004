"""sort, argsort, topk, kthvalue, median, nanmedian, cumprod, cummax, cummin,
logcumsumexp, searchsorted, bucketize, isin, bincount, quantile: values, indices and
gradients against torch on random inputs with ties, NaN, negative dims, keepdim, integer
dtypes and empty tensors; a few gradients against finite differences; under compile they
run eagerly (TraceError with fullgraph=True) and give eager's answer."""
from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

import tracegrad as tg
from tracegrad._errors import ShapeError, TraceError

torch = pytest.importorskip("torch")


def _ties(shape, seed=0, nan=False, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, shape).astype(dtype)   # few distinct values: many ties
    if nan and x.size:
        x.reshape(-1)[rng.choice(x.size, max(1, x.size // 5), replace=False)] = np.nan
    return x


def _same(got, want):
    got = got.numpy() if isinstance(got, tg.Tensor) else np.asarray(got)
    want = want.numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9, equal_nan=True)


def _grads(fn_tg, fn_torch, *arrays, seed=1):
    """Gradients of sum(out * w) for random w, tracegrad against torch."""
    xs = [tg.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = fn_tg(*xs), fn_torch(*ts)
    w = np.random.default_rng(seed).standard_normal(tuple(ref.shape))
    (out * tg.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for x, t in zip(xs, ts):
        got = np.zeros_like(x.numpy()) if x.grad is None else x.grad.numpy()
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int32, np.uint8, np.bool_])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("descending", [False, True])
def test_stable_sort_and_argsort_match_torch(dtype, dim, descending):
    x = _ties((4, 7), seed=dim + 3, nan=dtype in (np.float64, np.float32))
    x = np.abs(x).astype(dtype) if dtype in (np.uint8, np.bool_) else x.astype(dtype)
    got = tg.sort(tg.tensor(x), dim=dim, descending=descending, stable=True)
    want = torch.sort(torch.tensor(x), dim=dim, descending=descending, stable=True)
    _same(got.values, want.values)
    _same(got.indices, want.indices)
    _same(tg.tensor(x).argsort(dim, descending, stable=True),
          torch.argsort(torch.tensor(x), dim=dim, descending=descending, stable=True))
    values, indices = tg.tensor(x).sort(dim)   # unpacks like torch.return_types.sort
    _same(indices, torch.sort(torch.tensor(x), dim=dim, stable=True).indices)


def test_sort_edge_cases_and_errors():
    _same(tg.sort(tg.tensor(2.5)).values, torch.sort(torch.tensor(2.5)).values)
    _same(tg.sort(tg.tensor(2.5)).indices, torch.sort(torch.tensor(2.5)).indices)
    empty = np.zeros((3, 0))
    _same(tg.sort(tg.tensor(empty), 1).indices, torch.sort(torch.tensor(empty), 1).indices)
    _same(tg.msort(tg.tensor(_ties((5, 3)))), torch.msort(torch.tensor(_ties((5, 3)))))
    with pytest.raises(IndexError, match="sort"):
        tg.sort(tg.ones(2, 3), dim=2)


def test_sort_and_topk_gradients_scatter_into_the_chosen_positions():
    x = np.random.default_rng(0).standard_normal((3, 6))
    _grads(lambda a: tg.sort(a, 1, descending=True).values,
           lambda a: torch.sort(a, 1, descending=True).values, x)
    _grads(lambda a: a.topk(2, dim=0).values, lambda a: a.topk(2, dim=0).values, x)
    _grads(lambda a: a.kthvalue(3, -1, True).values, lambda a: a.kthvalue(3, -1, True).values, x)
    _grads(lambda a: a.median(0).values, lambda a: a.median(0).values, x)
    _grads(lambda a: a.median(), lambda a: a.median(), np.array([1.0, 2.0, 2.0, 2.0, 3.0]))


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("dim", [0, -1])
def test_topk_matches_torch_with_ties_and_nan(largest, dim):
    x = _ties((6, 8), seed=4, nan=True)
    got = tg.topk(tg.tensor(x), 3, dim=dim, largest=largest)
    want = torch.topk(torch.tensor(x), 3, dim=dim, largest=largest)
    _same(got.values, want.values)
    # ties may come in any order (torch's too): the indices must point at the values
    picked = np.take_along_axis(x, got.indices.numpy(), axis=dim)
    np.testing.assert_array_equal(picked, got.values.numpy())
    assert got.indices.dtype == tg.int64
    size = x.shape[dim]
    for k in (0, 1, size):   # k = size and 0 take the sorting path, 1 the partition one
        _same(tg.topk(tg.tensor(x), k, dim, largest).values,
              torch.topk(torch.tensor(x), k, dim, largest).values)
    with pytest.raises(ShapeError, match=r"topk\(\): k \(9\) out of range"):
        tg.topk(tg.tensor(x), 9, dim=0)


@pytest.mark.parametrize("keepdim", [False, True])
def test_kthvalue_median_nanmedian_match_torch(keepdim):
    for seed, shape in enumerate([(5, 4), (4, 6), (1, 3)]):
        x = _ties(shape, seed=seed, nan=True)
        tx, rx = tg.tensor(x), torch.tensor(x)
        for dim in (0, 1, -1):
            k = min(2, shape[dim])
            _same(tg.kthvalue(tx, k, dim, keepdim).values, torch.kthvalue(rx, k, dim, keepdim).values)
            for name in ("median", "nanmedian"):
                got = getattr(tg, name)(tx, dim, keepdim)
                want = getattr(torch, name)(rx, dim, keepdim)
                _same(got.values, want.values)
                picked = np.take_along_axis(x, got.indices.numpy() if keepdim else
                                            np.expand_dims(got.indices.numpy(), dim), dim)
                np.testing.assert_array_equal(np.squeeze(picked, dim) if not keepdim else picked,
                                              got.values.numpy())
        _same(tg.median(tx), torch.median(rx))
        _same(tg.nanmedian(tx), torch.nanmedian(rx))
    ints = np.array([[4, 1, 3, 2], [7, 7, 0, 1]])
    _same(tg.median(tg.tensor(ints), 1).values, torch.median(torch.tensor(ints), 1).values)
    _same(tg.median(tg.tensor(ints)), torch.median(torch.tensor(ints)))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumprod_values_and_gradients_with_zeros(dim):
    rng = np.random.default_rng(dim + 7)
    x = rng.standard_normal((4, 6))
    x[rng.random((4, 6)) < 0.25] = 0.0     # single and repeated zeros in a slice
    x[0, :3] = 0.0
    _same(tg.cumprod(tg.tensor(x), dim), torch.cumprod(torch.tensor(x), dim))
    _grads(lambda a: tg.cumprod(a, dim), lambda a: torch.cumprod(a, dim), x)
    ints = _ties((3, 4)).astype(np.int32)
    _same(tg.tensor(ints).cumprod(dim), torch.tensor(ints).cumprod(dim))
    _same(tg.cumprod(tg.tensor(ints), dim, dtype=tg.float32),
          torch.cumprod(torch.tensor(ints), dim, dtype=torch.float32))


def test_cumprod_and_logcumsumexp_gradients_against_finite_differences():
    x = tg.tensor([[0.5, 0.0, 2.0, -1.5], [1.2, -0.7, 0.0, 0.0]], dtype=tg.float64,
                  requires_grad=True)
    assert tg.autograd.gradcheck(lambda a: tg.cumprod(a, 1), (x,))
    y = tg.tensor(np.random.default_rng(2).standard_normal((3, 5)) * 30, requires_grad=True)
    assert tg.autograd.gradcheck(lambda a: tg.logcumsumexp(a, 1), (y,))


@pytest.mark.parametrize("name", ["cummax", "cummin"])
@pytest.mark.parametrize("dim", [0, -1])
def test_cummax_cummin_match_torch(name, dim):
    for x in (_ties((5, 7), seed=1, nan=True), _ties((5, 7), seed=2).astype(np.int64)):
        got = getattr(tg, name)(tg.tensor(x), dim)
        want = getattr(torch, name)(torch.tensor(x), dim)
        _same(got.values, want.values)
        _same(got.indices, want.indices)
    _grads(lambda a: getattr(tg, name)(a, dim).values,
           lambda a: getattr(torch, name)(a, dim).values,
           np.random.default_rng(3).standard_normal((4, 5)))


def test_logcumsumexp_matches_torch_without_overflow():
    x = np.random.default_rng(5).standard_normal((3, 6)) * 400
    x[1, 2] = -np.inf
    for dim in (0, 1, -1):
        _same(tg.logcumsumexp(tg.tensor(x), dim), torch.logcumsumexp(torch.tensor(x), dim))
    y = np.random.default_rng(6).standard_normal((3, 6)) * 20
    _grads(lambda a: a.logcumsumexp(1), lambda a: a.logcumsumexp(1), y)


@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_and_bucketize_match_torch(right):
    seq = np.sort(_ties((3, 6), seed=8), axis=1)
    vals = _ties((3, 4), seed=9)
    _same(tg.searchsorted(tg.tensor(seq), tg.tensor(vals), right=right),
          torch.searchsorted(torch.tensor(seq), torch.tensor(vals), right=right))
    flat = np.array([-1.0, 0.0, 0.0, 2.5])
    side = "right" if right else "left"
    _same(tg.searchsorted(tg.tensor(flat), tg.tensor(vals), side=side, out_int32=True),
          torch.searchsorted(torch.tensor(flat), torch.tensor(vals), side=side, out_int32=True))
    _same(tg.bucketize(tg.tensor(vals), tg.tensor(flat), right=right),
          torch.bucketize(torch.tensor(vals), torch.tensor(flat), right=right))
    order = np.array([2, 0, 3, 1])
    unsorted = flat[np.argsort(order)]
    _same(tg.searchsorted(tg.tensor(unsorted), tg.tensor(vals), sorter=tg.tensor(np.argsort(unsorted))),
          torch.searchsorted(torch.tensor(unsorted), torch.tensor(vals),
                             sorter=torch.tensor(np.argsort(unsorted))))


def test_isin_and_bincount_match_torch():
    a, b = _ties((4, 5), seed=10).astype(np.int64), np.array([0, 2, -3])
    _same(tg.isin(tg.tensor(a), tg.tensor(b)), torch.isin(torch.tensor(a), torch.tensor(b)))
    _same(tg.isin(tg.tensor(a), tg.tensor(b), invert=True),
          torch.isin(torch.tensor(a), torch.tensor(b), invert=True))
    _same(tg.isin(tg.tensor(a), 2), torch.isin(torch.tensor(a), 2))
    c = np.array([0, 3, 3, 1, 7])
    _same(tg.bincount(tg.tensor(c)), torch.bincount(torch.tensor(c)))
    _same(tg.tensor(c).bincount(minlength=10), torch.tensor(c).bincount(minlength=10))
    for w in (np.linspace(0, 1, 5).astype(np.float32), np.arange(5)):
        _same(tg.bincount(tg.tensor(c), tg.tensor(w)), torch.bincount(torch.tensor(c), torch.tensor(w)))
    _same(tg.bincount(tg.tensor(np.zeros(0, np.int64))),
          torch.bincount(torch.tensor(np.zeros(0, np.int64))))
    with pytest.raises(ShapeError, match="bincount"):
        tg.bincount(tg.tensor([1, -1]))


@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_quantile_matches_torch(interpolation):
    x = np.random.default_rng(11).standard_normal((5, 6))
    x[2, 3] = np.nan
    q = np.array([0.0, 0.25, 0.5, 0.9, 1.0])
    for dim, keepdim in ((None, False), (None, True), (0, False), (-1, True), (1, False)):
        for name in ("quantile", "nanquantile"):
            for qq in (q, 0.3):
                got = getattr(tg, name)(tg.tensor(x), tg.tensor(qq) if qq is q else qq, dim,
                                        keepdim, interpolation=interpolation)
                want = getattr(torch, name)(torch.tensor(x), torch.tensor(qq) if qq is q else qq,
                                            dim, keepdim, interpolation=interpolation)
                _same(got, want)


def test_quantile_gradient_against_torch_and_finite_differences():
    x = np.random.default_rng(12).standard_normal((4, 7))
    q = np.array([0.1, 0.5, 0.75])
    _grads(lambda a: tg.quantile(a, tg.tensor(q), dim=1),
           lambda a: torch.quantile(a, torch.tensor(q), dim=1), x)
    t = tg.tensor(x, requires_grad=True)
    assert tg.autograd.gradcheck(lambda a: tg.quantile(a, 0.3, dim=0), (t,))


def test_eager_only_ops_under_compile_give_eagers_answer_or_raise_with_fullgraph():
    def f(x):
        v, i = tg.sort(x * 2, dim=-1, descending=True)
        return v + tg.cumprod(x, 1) + tg.quantile(x, 0.5, dim=1, keepdim=True), i + x.topk(1).indices
    x = tg.tensor(np.random.default_rng(13).standard_normal((3, 5)))
    want = f(x)
    with pytest.warns(RuntimeWarning, match="cannot be traced"):
        got = tg.compile(f)(x)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w.numpy())
    with pytest.raises(TraceError, match="sort"):
        tg.compile(f, fullgraph=True)(x)


@pytest.mark.parametrize("module", ["sorting", "searching", "cumulative", "pointwise",
                                    "rearrange"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(f"tracegrad._ops.{module}"),
                             optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
