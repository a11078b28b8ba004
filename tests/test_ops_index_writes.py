"""index_copy, index_fill, masked_scatter, put, scatter_reduce (tracegrad/_ops/index_writes.py)
and their in-place forms, against torch: values, dtypes, gradients, compiled == eager."""
import numpy as np
import pytest

import tracegrad as tg
from torch_parity_testing import compare, compiled_matches_eager

torch = pytest.importorskip("torch")
rng = np.random.default_rng(3)
X = rng.standard_normal((4, 3))


@pytest.mark.parametrize("dim", [0, 1, -1, -2])
def test_index_copy_and_fill(dim):
    idx = [2, 0] if dim in (0, -2) else [1, 2]
    src_shape = (2, 3) if dim in (0, -2) else (4, 2)
    src = rng.standard_normal(src_shape)
    compare(lambda m, x, s: x.index_copy(dim, m.tensor(idx), s),
            lambda m, x, s: x.index_copy(dim, m.tensor(idx), s), X, src, grad=(0, 1))
    compare(lambda m, x, s: m.index_copy(x, dim, m.tensor(idx), s),
            lambda m, x, s: m.index_copy(x, dim, m.tensor(idx), s), X, src)
    compare(lambda m, x: x.index_fill(dim, m.tensor([-1, 0]), 2.5),
            lambda m, x: x.index_fill(dim, m.tensor([-1, 0]), 2.5), X, grad=(0,))
    compare(lambda m, x, v: m.index_fill(x, dim, m.tensor([1]), v),
            lambda m, x, v: m.index_fill(x, dim, m.tensor([1]), v), X, np.array(3.0),
            grad=(0, 1))


def test_integer_and_inplace_forms():
    a = np.arange(12).reshape(4, 3)
    compare(lambda m, x: x.clone().index_copy_(0, m.tensor([3]), m.tensor([[7, 8, 9]])),
            lambda m, x: x.clone().index_copy_(0, m.tensor([3]), m.tensor([[7, 8, 9]])), a)
    compare(lambda m, x: x.clone().put_(m.tensor([0, -1]), m.tensor([5, 6])),
            lambda m, x: x.clone().put_(m.tensor([0, -1]), m.tensor([5, 6])), a)
    compare(lambda m, x: x.clone().put_(m.tensor([1, 1]), m.tensor([5, 6]), accumulate=True),
            lambda m, x: x.clone().put_(m.tensor([1, 1]), m.tensor([5, 6]), accumulate=True), a)
    compare(lambda m, x: x.clone().masked_scatter_(x > 5, x * 10),
            lambda m, x: x.clone().masked_scatter_(x > 5, x * 10), a)
    compare(lambda m, x: x.clone().scatter_reduce_(0, m.tensor([[0, 1, 0]]), x[:1] + 1, "prod"),
            lambda m, x: x.clone().scatter_reduce_(0, m.tensor([[0, 1, 0]]), x[:1] + 1, "prod"),
            a)


def test_put_and_masked_scatter_gradients():
    mask = rng.random((4, 3)) < 0.5
    src = rng.standard_normal(12)
    compare(lambda m, x, s: m.masked_scatter(x, m.tensor(mask), s),
            lambda m, x, s: m.masked_scatter(x, m.tensor(mask), s), X, src, grad=(0, 1))
    compare(lambda m, x, s: x.masked_scatter(m.tensor(mask[0]), s),
            lambda m, x, s: x.masked_scatter(m.tensor(mask[0]), s), X, src, grad=(0, 1))
    compare(lambda m, x, s: x.put(m.tensor([[1, -2], [5, 0]]), s[:4].reshape(2, 2)),
            lambda m, x, s: x.put(m.tensor([[1, -2], [5, 0]]), s[:4].reshape(2, 2)), X, src,
            grad=(0, 1))
    compare(lambda m, x, s: m.put(x, m.tensor([1, 1, 3]), s[:3], accumulate=True),
            lambda m, x, s: m.put(x, m.tensor([1, 1, 3]), s[:3], accumulate=True), X, src,
            grad=(0, 1))


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce(reduce, include_self):
    src = np.round(rng.standard_normal((5, 3)), 1)
    src[1, 1] = src[3, 1]   # a tie for amax/amin
    src[2, 2] = 0.0          # a zero for prod
    index = np.array([[0, 1, 2], [3, 1, 0], [0, 1, 2], [0, 1, 0], [2, 2, 2]])
    # (PyTorch's backward needs index and src of one shape)
    for dim, idx, s in ((0, index, src), (-1, index[:4] % 3, src[:4])):
        call = lambda m, x, s: m.scatter_reduce(x, dim, m.tensor(idx), s, reduce,  # noqa: E731
                                                include_self=include_self)
        compare(call, call, np.round(X, 1), s, grad=(0, 1))
    ints = lambda m, x, s: x.scatter_reduce(0, m.tensor(index), s, reduce,  # noqa: E731
                                            include_self=include_self)
    compare(ints, ints, np.arange(12).reshape(4, 3) - 3, np.arange(15).reshape(5, 3) % 7 - 2)


def test_empty_and_0d():
    compare(lambda m, x: x.index_fill(0, m.tensor([], dtype=m.int64), 1.0),
            lambda m, x: x.index_fill(0, m.tensor([], dtype=m.int64), 1.0), X)
    compare(lambda m, x: x.index_fill(0, m.tensor([0]), 1.0),
            lambda m, x: x.index_fill(0, m.tensor([0]), 1.0), np.array(2.0))
    compare(lambda m, x: x.masked_scatter(x > 9, m.zeros(0, dtype=x.dtype)),
            lambda m, x: x.masked_scatter(x > 9, m.zeros(0, dtype=x.dtype)), X)


def test_errors():
    with pytest.raises(IndexError, match="index_copy.*5.*size 4"):
        tg.zeros(4, 3).index_copy(0, tg.tensor([5]), tg.ones(1, 3))
    with pytest.raises(tg.ShapeError, match=r"index_copy.*\(2, 2\).*\(4, 3\)"):
        tg.zeros(4, 3).index_copy(0, tg.tensor([0, 1]), tg.ones(2, 2))
    with pytest.raises(tg.ShapeError, match="masked_scatter.*3 True.*2 elements"):
        tg.zeros(3).masked_scatter(tg.ones(3, dtype=tg.bool), tg.ones(2))
    with pytest.raises(ValueError, match="scatter_reduce.*'max'"):
        tg.zeros(3).scatter_reduce(0, tg.tensor([0]), tg.ones(1), "max")
    with pytest.raises(TypeError, match="put.*float64.*float32"):
        tg.zeros(3).put(tg.tensor([0]), tg.ones(1, dtype=tg.float64))


def test_compiled_equals_eager():
    mask = rng.random((4, 3)) < 0.5

    def f(x, s):
        a = x.index_copy(0, tg.tensor([2, 0]), s[:2])
        b = a.index_fill(1, tg.tensor([-1]), 0.5).masked_scatter(tg.tensor(mask), s.flatten())
        c = b.put(tg.tensor([0, 5]), tg.tensor([1.0, 2.0], dtype=x.dtype), accumulate=True)
        return c.scatter_reduce(0, tg.tensor([[1, 0, 1]]), s[:1], "mean", include_self=False)
    compiled_matches_eager(f, X.astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32))
    compiled_matches_eager(lambda x, s: x.scatter_reduce(0, tg.tensor([[1, 0, 1]]), s, "amax"),
                           X, X[:1], expect_fallback=True)
