"""tril/triu (and in place), cross, diag, diag_embed, trace, unique, unique_consecutive:
values against NumPy, gradients against finite differences."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.autograd import gradcheck

rng = np.random.default_rng(3)


@pytest.mark.parametrize("k", [-2, -1, 0, 1, 3])
@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (2, 4, 4)])
def test_tril_triu_match_numpy(k, shape):
    a = rng.standard_normal(shape)
    x = torch.from_numpy(a)
    np.testing.assert_array_equal(torch.tril(x, k).numpy(), np.tril(a, k))
    np.testing.assert_array_equal(x.triu(diagonal=k).numpy(), np.triu(a, k))
    y = x.clone()
    assert y.tril_(k) is y
    np.testing.assert_array_equal(y.numpy(), np.tril(a, k))
    y = x.clone()
    y.triu_(k)
    np.testing.assert_array_equal(y.numpy(), np.triu(a, k))


def test_tril_keeps_integer_and_bool_dtypes_and_gradient():
    assert torch.tril(torch.ones(3, 3, dtype=torch.int64)).dtype == torch.int64
    assert torch.triu(torch.ones(3, 3, dtype=torch.bool)).tolist() == np.triu(np.ones((3, 3), bool)).tolist()
    x = torch.from_numpy(rng.standard_normal((3, 4))).requires_grad_()
    assert gradcheck(lambda t: torch.tril(t, 1) * t, (x,))
    with pytest.raises(RuntimeError, match="tril: input tensor must have at least 2 dimensions"):
        torch.tril(torch.ones(3))


def test_tril_in_place_records_history():
    x = torch.rand(3, 3, requires_grad=True)
    y = x * 2
    y.tril_()
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.tril(np.full((3, 3), 2.0)))


def test_cross_matches_numpy_and_broadcasts():
    a = rng.standard_normal((4, 3))
    b = rng.standard_normal((1, 3))
    np.testing.assert_allclose(torch.cross(torch.from_numpy(a), torch.from_numpy(b), dim=1).numpy(),
                               np.cross(a, b), rtol=1e-12)
    np.testing.assert_allclose(torch.from_numpy(a).cross(torch.from_numpy(b + 0 * a)).numpy(),
                               np.cross(a, b), rtol=1e-12)  # default: the first dim of size 3
    c = rng.standard_normal((3, 2))
    np.testing.assert_allclose(torch.cross(torch.from_numpy(c), torch.from_numpy(c[::-1].copy()), 0).numpy(),
                               np.cross(c, c[::-1], axis=0), rtol=1e-12)
    ta = torch.from_numpy(a).requires_grad_()
    tb = torch.from_numpy(rng.standard_normal((4, 3))).requires_grad_()
    assert gradcheck(lambda p, q: torch.linalg.cross(p, q), (ta, tb))
    with pytest.raises(RuntimeError, match="linalg.cross: inputs dimension -1 must have length 3. "
                                           "Got 4 and 4"):
        torch.linalg.cross(torch.ones(4), torch.ones(4))


@pytest.mark.parametrize("k", [-1, 0, 2])
def test_diag_diag_embed_trace(k):
    v = rng.standard_normal(3)
    np.testing.assert_array_equal(torch.diag(torch.from_numpy(v), k).numpy(), np.diag(v, k))
    m = rng.standard_normal((4, 5))
    np.testing.assert_array_equal(torch.diag(torch.from_numpy(m), k).numpy(), np.diag(m, k))
    batch = rng.standard_normal((2, 3))
    out = torch.diag_embed(torch.from_numpy(batch), k).numpy()
    np.testing.assert_array_equal(out, np.stack([np.diag(r, k) for r in batch]))
    assert torch.trace(torch.from_numpy(m)).item() == pytest.approx(np.trace(m))
    x = torch.from_numpy(v).requires_grad_()
    assert gradcheck(lambda t: torch.diag_embed(t, k) * 3, (x,))


def test_unique_flat():
    a = np.array([[3, 1, 2], [3, 7, 1]])
    values, inverse, counts = torch.unique(torch.from_numpy(a), return_inverse=True,
                                           return_counts=True)
    rv, ri, rc = np.unique(a, return_inverse=True, return_counts=True)
    assert values.tolist() == rv.tolist() and counts.tolist() == rc.tolist()
    assert inverse.tolist() == ri.reshape(a.shape).tolist() and inverse.dtype == torch.int64
    assert torch.unique(torch.from_numpy(a)).tolist() == [1, 2, 3, 7]
    assert torch.tensor([2.0, 1.0, 2.0]).unique(sorted=False).tolist() == [1.0, 2.0]


def test_unique_dim():
    a = np.array([[1, 2], [0, 5], [1, 2]])
    values, inverse, counts = torch.unique(torch.from_numpy(a), dim=0, return_inverse=True,
                                           return_counts=True)
    assert values.tolist() == [[0, 5], [1, 2]]
    assert inverse.tolist() == [1, 0, 1] and counts.tolist() == [1, 2]
    assert torch.unique(torch.from_numpy(a), dim=-1).tolist() == np.unique(a, axis=1).tolist()


def test_unique_consecutive():
    a = torch.tensor([1, 1, 2, 2, 3, 1, 1, 2])
    out, inverse, counts = torch.unique_consecutive(a, return_inverse=True, return_counts=True)
    assert out.tolist() == [1, 2, 3, 1, 2]
    assert inverse.tolist() == [0, 0, 1, 1, 2, 3, 3, 4]
    assert counts.tolist() == [2, 2, 1, 2, 1]
    m = torch.tensor([[1, 1, 2], [1, 1, 3]])
    assert torch.unique_consecutive(m, dim=1).tolist() == [[1, 2], [1, 3]]
