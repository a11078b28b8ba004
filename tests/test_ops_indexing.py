"""Indexing, read and write, against NumPy: ints, slices with steps, None, Ellipsis,
integer arrays/tensors/lists, boolean masks, setitem with broadcasting; gather/scatter,
index_select and friends; gradients through all of them."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.autograd import gradcheck

rng = np.random.default_rng(3)
A = rng.standard_normal((4, 5, 6)).astype(np.float32)

KEYS = [
    1, -1, (1, 2), (1, 2, 3), slice(1, 3), slice(None, None, 2), slice(None, None, -1),
    (slice(3, 0, -2), 1), (Ellipsis, 2), (Ellipsis, slice(1, 4, 2)), (None, 1), (1, None, 2),
    (slice(None), None, Ellipsis, None), np.array([0, 2, 3]), [3, 3, 0],
    (slice(None), [0, 4]), ([0, 1], [2, 3]), ([[0], [1]], [2, 3]), (1, [0, 2], slice(None)),
    ([0, 2], slice(None), [1, 5]), A[:, 0, 0] > 0, (slice(None), A[0, :, 0] > 0),
    A > 0, (A[:, :, 0] > 0, 2), (Ellipsis, [1, 0]), (slice(10, 20),), (slice(-100, 2),),
    (slice(None), slice(4, 1)),
]


def _as_torch_key(key):
    if isinstance(key, tuple):
        return tuple(_as_torch_key(k) for k in key)
    if isinstance(key, np.ndarray):
        return torch.from_numpy(key.copy())
    return key


@pytest.mark.parametrize("key", KEYS, ids=[str(i) for i in range(len(KEYS))])
def test_getitem_matches_numpy(key):
    t = torch.from_numpy(A.copy())
    expected = A[key if not isinstance(key, list) else np.array(key)] if not isinstance(key, tuple) \
        else A[tuple(np.array(k) if isinstance(k, list) else k for k in key)]
    for k in (key, _as_torch_key(key)):
        out = t[k]
        assert tuple(out.shape) == expected.shape
        np.testing.assert_array_equal(out.numpy(), expected)


def test_index_with_int_tensors_and_0d_tensor():
    t = torch.from_numpy(A.copy())
    idx = torch.tensor([2, 0])
    np.testing.assert_array_equal(t[idx].numpy(), A[[2, 0]])
    np.testing.assert_array_equal(t[torch.tensor(1)].numpy(), A[1])
    np.testing.assert_array_equal(t[:, torch.tensor([[1, 2], [3, 4]])].numpy(), A[:, [[1, 2], [3, 4]]])
    mask = torch.tensor([1, 0, 1, 0], dtype=torch.uint8)  # legacy ByteTensor mask
    np.testing.assert_array_equal(t[mask].numpy(), A[[0, 2]])


def test_basic_index_is_a_view():
    t = torch.zeros(3, 4)
    row = t[1]
    row[2] = 5.0
    assert t[1, 2].item() == 5.0
    t[..., 0][1] = 7.0
    assert t[1, 0].item() == 7.0


SET_KEYS = [
    (1, 3.0), ((1, 2), -1.0), ((slice(None), 0), np.arange(4, dtype=np.float32)[:, None]),
    (slice(None, None, 2), np.ones((5, 6), np.float32) * 2), ((Ellipsis, -1), 9.0),
    ([0, 3], np.zeros((5, 6), np.float32)), ((slice(None), [1, 2], 0), np.array([1.0, 2.0], np.float32)),
    (A > 0, 0.0), ((A[:, 0, 0] > 0,), 4.0), ((slice(3, 0, -1), slice(None), 2), np.float32(1.5)),
    ((None, 0, 0), np.arange(6, dtype=np.float32)),
]


@pytest.mark.parametrize("key,value", SET_KEYS, ids=[str(i) for i in range(len(SET_KEYS))])
def test_setitem_matches_numpy(key, value):
    expected = A.copy()
    np_key = tuple(np.array(k) if isinstance(k, list) else k for k in key) if isinstance(key, tuple) \
        else (np.array(key) if isinstance(key, list) else key)
    expected[np_key] = value
    for k, v in ((key, value), (_as_torch_key(key), torch.tensor(value))):
        t = torch.from_numpy(A.copy())
        t[k] = v
        np.testing.assert_array_equal(t.numpy(), expected)


def test_setitem_casts_value_and_bumps_version():
    t = torch.zeros(3, dtype=torch.int64)
    v0 = t._version_number
    t[0] = 2.7
    assert t.tolist() == [2, 0, 0] and t._version_number == v0 + 1
    t[torch.tensor([1, 2])] = torch.tensor([5.0, 6.0])
    assert t.tolist() == [2, 5, 6]


def test_setitem_on_non_leaf_records_gradient():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = torch.tensor(10.0, requires_grad=True)
    y = x * 2
    y[1] = w * 3
    y[torch.tensor([True, False, False])] = 0.0
    assert y.tolist() == [0.0, 30.0, 6.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 2.0]
    assert w.grad.item() == 3.0


@pytest.mark.parametrize("key", [1, (slice(None), 2), (slice(None, None, -2), slice(1, 5, 3)),
                                 (Ellipsis, [0, 0, 5]), ([1, 1, 2], [0, 0, 4]),
                                 (A[:, :, 0] > 0,), (None, 2, None), (torch.tensor([[0, 3]]),)],
                         ids=str)
def test_getitem_gradcheck(key):
    x = torch.from_numpy(A.astype(np.float64)).requires_grad_()
    assert gradcheck(lambda x: x[key] * 1.0, (x,))


def test_setitem_gradcheck():
    x = torch.from_numpy(rng.standard_normal((3, 4))).requires_grad_()
    v = torch.from_numpy(rng.standard_normal((4,))).requires_grad_()

    def fn(x, v):
        y = x * 1.0
        y[1] = v
        y[:, [0, 2]] = v[:2] * 2
        return y
    assert gradcheck(fn, (x, v))


def test_gather_scatter_index_select():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = torch.from_numpy(a)
    idx = torch.tensor([[0, 3], [1, 1], [2, 0]])
    assert t.gather(1, idx).tolist() == np.take_along_axis(a, idx.numpy(), 1).tolist()
    assert torch.gather(t, 0, torch.tensor([[2, 1, 0, 0]])).tolist() == [[8.0, 5.0, 2.0, 3.0]]
    out = torch.zeros(3, 4).scatter(1, idx, torch.ones(3, 2))
    assert out.tolist() == [[1, 0, 0, 1], [0, 1, 0, 0], [1, 0, 1, 0]]
    out = torch.zeros(3, 4).scatter_add(1, idx, torch.ones(3, 2))
    assert out.tolist() == [[1, 0, 0, 1], [0, 2, 0, 0], [1, 0, 1, 0]]
    out = torch.zeros(2, 3).scatter_(0, torch.tensor([[1, 0, 1]]), 5.0)
    assert out.tolist() == [[0, 5, 0], [5, 0, 5]]
    assert t.index_select(1, torch.tensor([3, 0])).tolist() == a[:, [3, 0]].tolist()
    assert torch.index_select(t, 0, torch.tensor(2)).tolist() == a[[2]].tolist()
    assert t.masked_select(t > 8).tolist() == [9.0, 10.0, 11.0]
    assert torch.nonzero(torch.tensor([[0, 1], [1, 0]])).tolist() == [[0, 1], [1, 0]]
    out = torch.zeros(3).index_add(0, torch.tensor([0, 0, 2]), torch.tensor([1.0, 2.0, 3.0]))
    assert out.tolist() == [3.0, 0.0, 3.0]


def test_gather_scatter_gradcheck():
    x = torch.from_numpy(rng.standard_normal((3, 4))).requires_grad_()
    s = torch.from_numpy(rng.standard_normal((3, 2))).requires_grad_()
    idx = torch.tensor([[0, 3], [1, 1], [2, 0]])
    assert gradcheck(lambda x: x.gather(1, idx), (x,))
    assert gradcheck(lambda x, s: x.scatter_add(1, idx, s), (x, s))
    assert gradcheck(lambda x: x.index_select(0, torch.tensor([2, 2, 0])), (x,))
    assert gradcheck(lambda x: x.masked_fill(x > 0, 0.5), (x,))
    uniq = torch.tensor([[0, 3], [1, 2], [2, 0]])
    assert gradcheck(lambda x, s: x.scatter(1, uniq, s), (x, s))
