"""Views and shape ops against NumPy: reshape/view, permute, transpose, squeeze,
expand, flatten, narrow, split/chunk/unbind, cat/stack, repeat/tile, flip, pad, and
matmul's family. Views share memory with their base."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.autograd import gradcheck

rng = np.random.default_rng(2)


def arr(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def test_reshape_view_with_minus_one():
    a = arr(2, 3, 4)
    t = torch.from_numpy(a)
    assert t.view(-1).tolist() == a.reshape(-1).tolist()
    assert tuple(t.view(6, -1).shape) == (6, 4)
    assert tuple(t.reshape(2, -1).shape) == (2, 12)
    assert tuple(t.reshape((4, 3, 2)).shape) == (4, 3, 2)
    assert tuple(t.view(torch.Size([24])).shape) == (24,)
    assert tuple(torch.zeros(0, 3).reshape(-1, 3).shape) == (0, 3)
    assert torch.tensor(5.0).reshape(1, 1).tolist() == [[5.0]]
    assert tuple(t.view_as(torch.zeros(4, 6)).shape) == (4, 6)


def test_permute_transpose_t_T():
    a = arr(2, 3, 4)
    t = torch.from_numpy(a)
    np.testing.assert_array_equal(t.permute(2, 0, 1).numpy(), a.transpose(2, 0, 1))
    np.testing.assert_array_equal(t.permute((1, 2, 0)).numpy(), a.transpose(1, 2, 0))
    np.testing.assert_array_equal(t.transpose(0, 2).numpy(), a.swapaxes(0, 2))
    np.testing.assert_array_equal(t.T.numpy(), a.T)
    m = torch.from_numpy(a[0])
    np.testing.assert_array_equal(m.t().numpy(), a[0].T)
    np.testing.assert_array_equal(torch.movedim(t, 0, -1).numpy(), np.moveaxis(a, 0, -1))
    assert t.transpose(0, 1).is_contiguous() is False


def test_squeeze_unsqueeze():
    t = torch.zeros(1, 3, 1, 2)
    assert tuple(t.squeeze().shape) == (3, 2)
    assert tuple(t.squeeze(0).shape) == (3, 1, 2)
    assert tuple(t.squeeze(1).shape) == (1, 3, 1, 2)  # not size 1: unchanged
    assert tuple(t.squeeze(-2).shape) == (1, 3, 2)
    assert tuple(t.unsqueeze(0).shape) == (1, 1, 3, 1, 2)
    assert tuple(t.unsqueeze(-1).shape) == (1, 3, 1, 2, 1)
    assert tuple(torch.tensor(1.0).unsqueeze(0).shape) == (1,)
    assert tuple(torch.zeros(1).squeeze().shape) == ()


def test_expand_expand_as_broadcast_to():
    t = torch.tensor([[1.0], [2.0]])
    e = t.expand(2, 3)
    assert e.tolist() == [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]
    assert tuple(t.expand(4, -1, 3).shape) == (4, 2, 3)
    assert tuple(t.expand_as(torch.zeros(5, 2, 3)).shape) == (5, 2, 3)
    assert tuple(torch.broadcast_to(t, (2, 2)).shape) == (2, 2)
    assert e.stride() == (1, 0)


def test_flatten_unflatten_ravel():
    t = torch.zeros(2, 3, 4, 5)
    assert tuple(t.flatten().shape) == (120,)
    assert tuple(t.flatten(1).shape) == (2, 60)
    assert tuple(t.flatten(1, 2).shape) == (2, 12, 5)
    assert tuple(t.unflatten(1, (3, 1)).shape) == (2, 3, 1, 4, 5)
    assert tuple(t.unflatten(-1, (-1, 1)).shape) == (2, 3, 4, 5, 1)
    assert tuple(torch.tensor(3.0).flatten().shape) == (1,)
    assert tuple(t.ravel().shape) == (120,)


def test_narrow_split_chunk_unbind():
    a = np.arange(10, dtype=np.float32)
    t = torch.from_numpy(a)
    assert t.narrow(0, 2, 3).tolist() == [2.0, 3.0, 4.0]
    assert t.narrow(0, -3, 2).tolist() == [7.0, 8.0]
    assert [p.tolist() for p in t.split(4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [len(p) for p in t.split([3, 7])] == [3, 7]
    assert [len(p) for p in t.chunk(3)] == [4, 4, 2]
    assert [len(p) for p in torch.chunk(t, 5)] == [2, 2, 2, 2, 2]
    m = torch.from_numpy(np.arange(6.0).reshape(2, 3))
    rows = m.unbind()
    assert len(rows) == 2 and rows[1].tolist() == [3.0, 4.0, 5.0]
    assert [c.tolist() for c in m.unbind(1)] == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    assert [r.tolist() for r in m] == m.tolist()  # iteration unbinds dim 0
    assert [len(p) for p in torch.tensor_split(t, 3)] == [4, 3, 3]


def test_cat_stack():
    a, b = arr(2, 3), arr(1, 3)
    np.testing.assert_array_equal(torch.cat([torch.from_numpy(a), torch.from_numpy(b)]).numpy(),
                                  np.concatenate([a, b]))
    np.testing.assert_array_equal(torch.cat((torch.from_numpy(a), torch.from_numpy(a)), dim=-1).numpy(),
                                  np.concatenate([a, a], -1))
    np.testing.assert_array_equal(torch.stack([torch.from_numpy(a)] * 3, dim=1).numpy(),
                                  np.stack([a] * 3, 1))
    mixed = torch.cat([torch.tensor([1, 2]), torch.tensor([0.5])])
    assert mixed.dtype == torch.float32 and mixed.tolist() == [1.0, 2.0, 0.5]
    assert torch.cat([torch.tensor([]), torch.ones(2, 2)]).shape == (2, 2)  # legacy empty skipped
    assert torch.stack([torch.tensor(1.0), torch.tensor(2.0)]).tolist() == [1.0, 2.0]


def test_repeat_tile_flip():
    a = arr(2, 3)
    t = torch.from_numpy(a)
    np.testing.assert_array_equal(t.repeat(2, 1).numpy(), np.tile(a, (2, 1)))
    np.testing.assert_array_equal(t.repeat(2, 2, 3).numpy(), np.tile(a, (2, 2, 3)))
    np.testing.assert_array_equal(t.tile((2,)).numpy(), np.tile(a, (1, 2)))
    np.testing.assert_array_equal(t.flip(0).numpy(), a[::-1])
    np.testing.assert_array_equal(t.flip((0, 1)).numpy(), a[::-1, ::-1])
    np.testing.assert_array_equal(torch.flip(t, [-1]).numpy(), a[:, ::-1])


def test_pad_modes():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = torch.from_numpy(a)
    np.testing.assert_array_equal(torch.pad(t, (1, 2)).numpy(), np.pad(a, ((0, 0), (1, 2))))
    np.testing.assert_array_equal(torch.pad(t, (1, 0, 0, 1), value=9).numpy(),
                                  np.pad(a, ((0, 1), (1, 0)), constant_values=9))
    for mode, np_mode in (("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")):
        np.testing.assert_array_equal(torch.pad(t, (2, 1), mode=mode).numpy(),
                                      np.pad(a, ((0, 0), (2, 1)), mode=np_mode))
    np.testing.assert_array_equal(torch.pad(t, (-1, 0)).numpy(), a[:, 1:])


def test_views_share_memory_and_write_through():
    base = torch.zeros(3, 4)
    v = base.view(12)
    v[0] = 5.0
    assert base[0, 0].item() == 5.0
    s = base[1:, ::2]
    s += 1
    assert base.tolist()[1] == [1.0, 0.0, 1.0, 0.0]
    base.t()[3, 2] = 7.0
    assert base[2, 3].item() == 7.0
    base.narrow(1, 1, 1).fill_(-1)
    assert base[:, 1].tolist() == [-1.0, -1.0, -1.0]
    base.unsqueeze(0)[0, 0, 0] = 3.0
    assert base[0, 0].item() == 3.0
    base.permute(1, 0).mul_(2)
    assert base[0, 0].item() == 6.0


def test_contiguous_clone():
    t = torch.from_numpy(arr(3, 4)).t()
    c = t.clone()
    c[0, 0] = 100.0
    assert t[0, 0].item() != 100.0
    assert t.contiguous().tolist() == t.tolist()


# ---- matmul family ------------------------------------------------------------------

MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
                 ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)), ((5, 1, 2, 3), (4, 3, 2)),
                 ((3,), (2, 3, 4)), ((2, 0), (0, 3)), ((0, 3), (3, 2))]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES, ids=str)
def test_matmul_matches_numpy(sa, sb):
    a, b = arr(*sa), arr(*sb)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    for out in (torch.matmul(ta, tb), ta @ tb, ta.matmul(tb)):
        assert tuple(out.shape) == np.matmul(a, b).shape
        np.testing.assert_allclose(out.numpy(), np.matmul(a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES[:8], ids=str)
def test_matmul_gradcheck(sa, sb):
    a = torch.from_numpy(rng.standard_normal(sa)).requires_grad_()
    b = torch.from_numpy(rng.standard_normal(sb)).requires_grad_()
    assert gradcheck(torch.matmul, (a, b))


def test_mm_bmm_mv_dot_outer_addmm_einsum():
    a, b, v = arr(2, 3), arr(3, 4), arr(3)
    ta, tb, tv = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(v)
    np.testing.assert_allclose(ta.mm(tb).numpy(), a @ b, rtol=1e-5)
    np.testing.assert_allclose(torch.mv(ta, tv).numpy(), a @ v, rtol=1e-5)
    np.testing.assert_allclose(tv.dot(tv).item(), v @ v, rtol=1e-5)
    np.testing.assert_allclose(torch.outer(tv, tv).numpy(), np.outer(v, v), rtol=1e-6)
    x, y = arr(4, 2, 3), arr(4, 3, 5)
    np.testing.assert_allclose(torch.bmm(torch.from_numpy(x), torch.from_numpy(y)).numpy(),
                               x @ y, rtol=1e-5)
    c = arr(2, 4)
    np.testing.assert_allclose(torch.addmm(torch.from_numpy(c), ta, tb, beta=0.5, alpha=2).numpy(),
                               0.5 * c + 2 * (a @ b), rtol=1e-5)
    np.testing.assert_allclose(torch.einsum("ij,jk->ik", ta, tb).numpy(), a @ b, rtol=1e-5)
    np.testing.assert_allclose(torch.einsum("bij,bjk->bik", torch.from_numpy(x),
                                            torch.from_numpy(y)).numpy(), x @ y, rtol=1e-5)


def test_matmul_of_int_and_float_raises_as_pytorch():
    # PyTorch does not promote in matmul (issue 9): "expected m1 and m2 to have the same dtype"
    with pytest.raises(RuntimeError, match="long int != float"):
        torch.tensor([[1, 2]]) @ torch.tensor([[0.5], [0.25]])


SHAPE_GRAD_FNS = [
    lambda x: x.reshape(6, 4), lambda x: x.permute(2, 0, 1) * 1.5, lambda x: x.transpose(0, 1),
    lambda x: x.unsqueeze(1).squeeze(1), lambda x: x[:, :1].expand(2, 5, 4),
    lambda x: x.flatten(1), lambda x: x.narrow(2, 1, 2), lambda x: torch.cat(x.split([1, 2], 1)[::-1], 1),
    lambda x: torch.stack(x.unbind(1), 0), lambda x: x.repeat(2, 1, 1), lambda x: x.flip(1, 2),
    lambda x: torch.pad(x, (1, 2, 0, 1), value=3.0), lambda x: torch.pad(x, (1, 1), mode="reflect"),
    lambda x: x.chunk(2, 2)[1], lambda x: x.tile((2,)), lambda x: x.T,
]


@pytest.mark.parametrize("i", range(len(SHAPE_GRAD_FNS)))
def test_shape_composites_gradcheck(i):
    x = torch.from_numpy(rng.standard_normal((2, 3, 4))).requires_grad_()
    assert gradcheck(SHAPE_GRAD_FNS[i], (x,))
