"""Reductions over an empty ``dim`` list and over empty tensors, as PyTorch 2.13: an empty
dim list reduces every dim for sum/mean/std/var/nansum/count_nonzero/norm (all/any keep
the tensor), a dim named twice raises, and all/any/logsumexp over an empty dim give their
identities. Expected values are computed with NumPy; torch is compared where installed."""
import numpy as np
import pytest

import tracegrad as tg

DATA = np.array([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]], dtype=np.float32)

FULL = [
    ("sum", lambda x: x.sum(dim=()), DATA.sum()),
    ("mean", lambda x: x.mean(dim=()), DATA.mean()),
    ("std", lambda x: x.std(dim=()), DATA.std(ddof=1)),
    ("var", lambda x: x.var(dim=[]), DATA.var(ddof=1)),
    ("nansum", lambda x: x.nansum(dim=()), DATA.sum()),
    ("count_nonzero", lambda x: x.count_nonzero(dim=()), 6),
    ("norm", lambda x: x.norm(dim=()), np.sqrt((DATA ** 2).sum())),
    ("sum over dims 1.. of a 1-d tensor", lambda x: x[0].sum(dim=tuple(range(1, 1))),
     DATA[0].sum()),
]


@pytest.mark.parametrize("name,fn,want", FULL, ids=[f[0] for f in FULL])
def test_an_empty_dim_list_reduces_every_dim(name, fn, want):
    # before: dim=() reduced nothing (sum gave x back; std and var gave NaN everywhere)
    got = fn(tg.tensor(DATA))
    assert got.shape == ()
    np.testing.assert_allclose(got.item(), want, rtol=1e-6)


def test_all_and_any_with_an_empty_dim_list_keep_the_tensor():
    x = tg.tensor([[1.0, 0.0], [2.0, 3.0]])
    assert x.all(dim=()).tolist() == [[True, False], [True, True]]
    assert x.any(dim=()).dtype is tg.bool


def test_a_dim_named_twice_raises():
    x = tg.tensor(DATA)
    for call in (lambda: x.sum((0, 0)), lambda: x.sum((0, -2)), lambda: x.mean([1, -1])):
        with pytest.raises(RuntimeError, match="appears multiple times"):
            call()


def test_all_any_and_logsumexp_over_an_empty_dim():
    # before: all/any raised "cannot reduce over an empty dimension", and so did logsumexp
    empty = tg.zeros(0, 3)
    assert empty.all(0).tolist() == [True, True, True]
    assert empty.any(0, keepdim=True).tolist() == [[False, False, False]]
    assert empty.any(1).shape == (0,) and empty.any(1).dtype is tg.bool
    out = tg.zeros(2, 0).logsumexp(1)
    assert out.tolist() == [-np.inf, -np.inf]
    assert tg.zeros(2, 0).logsumexp(1, keepdim=True).shape == (2, 1)


def test_reductions_match_torch():
    torch = pytest.importorskip("torch")
    calls = [lambda m, x: x.sum(dim=()), lambda m, x: x.mean(dim=()),
             lambda m, x: x.std(dim=()), lambda m, x: x.var(dim=[]),
             lambda m, x: x.count_nonzero(dim=()), lambda m, x: x.all(dim=()),
             lambda m, x: m.zeros(0, 3).all(0), lambda m, x: m.zeros(0, 3).any(1),
             lambda m, x: m.zeros(2, 0).logsumexp(1)]
    for call in calls:
        want = call(torch, torch.tensor(DATA))
        got = call(tg, tg.tensor(DATA))
        assert tuple(got.shape) == tuple(want.shape)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
        assert str(got.dtype).split(".")[1] == str(want.dtype).split(".")[1]
