"""logaddexp, logaddexp2, hypot, copysign, xlogy, nan_to_num, nansum, nanmean, aminmax,
diff, roll, rot90, meshgrid, repeat_interleave, take, tensordot, kron, cdist, dist:
values and gradients against torch (special values, int dtypes, negative dims, empty),
finite differences for a few, and compiled (fullgraph: they trace) against eager."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
from tracegrad._errors import ShapeError

torch = pytest.importorskip("torch")

SPECIAL = np.array([0.0, -0.0, 1.0, -2.5, 3.0, np.inf, -np.inf, np.nan, 1e300, -1e-300, 7.0])


def _special(dtype):
    big = 3e38 if dtype == np.float32 else 1e300   # (near float32's largest, not past it)
    return np.where(SPECIAL == 1e300, big, SPECIAL).astype(dtype)


def _same(got, want, rtol=1e-6):
    got = got.numpy() if isinstance(got, tg.Tensor) else np.asarray(got)
    want = want.numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12, equal_nan=True)


def _grads(fn_tg, fn_torch, *arrays, seed=1, rtol=1e-6):
    xs = [tg.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = fn_tg(*xs), fn_torch(*ts)
    w = np.random.default_rng(seed).standard_normal(tuple(ref.shape))
    (out * tg.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for x, t in zip(xs, ts):
        got = np.zeros_like(x.detach().numpy()) if x.grad is None else x.grad.numpy()
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=rtol, atol=1e-9)


def _compiled_matches(fn, *arrays):
    xs = [tg.tensor(a) for a in arrays]
    want = fn(*xs)
    got = tg.compile(fn, fullgraph=True)(*xs)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-12,
                               equal_nan=True)


@pytest.mark.parametrize("name", ["logaddexp", "logaddexp2", "hypot", "copysign", "xlogy"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_ops_match_torch_on_special_values(name, dtype):
    a, b = (v.ravel() for v in np.meshgrid(_special(dtype), _special(dtype)))
    got = getattr(tg, name)(tg.tensor(a), tg.tensor(b))
    want = getattr(torch, name)(torch.tensor(a), torch.tensor(b))
    _same(got, want, rtol=2e-6 if dtype == np.float32 else 1e-12)
    signed = ~np.isnan(want.numpy())
    np.testing.assert_array_equal(np.signbit(got.numpy())[signed], np.signbit(want.numpy())[signed])
    _same(getattr(tg.tensor(a), name)(tg.tensor(b)), want, rtol=2e-6)   # the Tensor method


@pytest.mark.parametrize("name", ["logaddexp", "logaddexp2", "hypot", "copysign", "xlogy"])
def test_binary_ops_gradients_match_torch(name):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((3, 4)), rng.uniform(0.5, 2.0, (3, 4)) * np.sign(rng.standard_normal((3, 4)))
    if name == "xlogy":
        b, a[0, :2] = np.abs(b), 0.0
    _grads(getattr(tg, name), getattr(torch, name), a, b)
    _grads(getattr(tg, name), getattr(torch, name), a, b[:1])   # broadcasting
    _compiled_matches(getattr(tg, name), a, b)


def test_binary_ops_dtypes_and_scalars():
    ints = np.array([1, 2, 3])
    for name in ("hypot", "xlogy", "copysign"):
        if name == "hypot":   # torch has no integer hypot; the float answer is ours
            continue
        _same(getattr(tg, name)(tg.tensor(ints), tg.tensor(ints)),
              getattr(torch, name)(torch.tensor(ints), torch.tensor(ints)))
    _same(tg.xlogy(2, tg.tensor([3.0, 0.0])), torch.xlogy(2, torch.tensor([3.0, 0.0])))
    _same(tg.hypot(tg.tensor([3.0], dtype=tg.float32), tg.tensor([4.0], dtype=tg.float32)),
          torch.hypot(torch.tensor([3.0]), torch.tensor([4.0])))
    big = np.array([3e30, 1e-30], np.float32)   # squares overflow/underflow float32
    _same(tg.hypot(tg.tensor(big), tg.tensor(big)), torch.hypot(torch.tensor(big), torch.tensor(big)))


def test_nan_to_num_matches_torch():
    for dtype in (np.float64, np.float32):
        x = _special(dtype)
        _same(tg.nan_to_num(tg.tensor(x)), torch.nan_to_num(torch.tensor(x)))
        _same(tg.tensor(x).nan_to_num(1.5, posinf=2.0, neginf=-3.0),
              torch.tensor(x).nan_to_num(1.5, posinf=2.0, neginf=-3.0))
    _same(tg.nan_to_num(tg.tensor([1, 2])), torch.nan_to_num(torch.tensor([1, 2])))
    _grads(tg.nan_to_num, torch.nan_to_num, SPECIAL)
    _compiled_matches(lambda t: tg.nan_to_num(t, nan=-1.0), SPECIAL)


@pytest.mark.parametrize("dim,keepdim", [(None, False), (0, False), (-1, True), ((0, 1), False)])
def test_nansum_nanmean_match_torch(dim, keepdim):
    x = np.random.default_rng(4).standard_normal((3, 5))
    x[0, 1] = x[2, :] = np.nan
    for name in ("nansum", "nanmean"):
        if dim is None:
            got, want = getattr(tg, name)(tg.tensor(x)), getattr(torch, name)(torch.tensor(x))
        else:
            got = getattr(tg, name)(tg.tensor(x), dim, keepdim)
            want = getattr(torch, name)(torch.tensor(x), dim, keepdim)
        _same(got, want)
    # (rows with a number: an all-NaN row's gradient is 0 here, NaN in PyTorch)
    _grads(lambda t: tg.nanmean(t, 1), lambda t: torch.nanmean(t, 1), x[:2])
    _compiled_matches(lambda t: tg.nanmean(t, 1), x)
    with pytest.raises(ShapeError, match="nanmean"):
        tg.nanmean(tg.tensor([1, 2]))


def test_aminmax_matches_torch():
    x = np.random.default_rng(5).integers(-5, 5, (3, 4))
    got, want = tg.aminmax(tg.tensor(x)), torch.aminmax(torch.tensor(x))
    _same(got.min, want.min)
    _same(got.max, want.max)
    for dim, keepdim in ((0, False), (-1, True)):
        lo, hi = tg.tensor(x).aminmax(dim=dim, keepdim=keepdim)
        want = torch.tensor(x).aminmax(dim=dim, keepdim=keepdim)
        _same(lo, want.min)
        _same(hi, want.max)
    with pytest.raises(ShapeError, match="aminmax"):
        tg.aminmax(tg.zeros(0))


@pytest.mark.parametrize("n,dim", [(1, -1), (2, 0), (3, 1), (0, -1)])
def test_diff_matches_torch(n, dim):
    x = np.random.default_rng(6).integers(-9, 9, (4, 5))
    _same(tg.diff(tg.tensor(x), n, dim), torch.diff(torch.tensor(x), n, dim))
    pre, app = x[:1] if dim == 0 else x[:, :1], x[:2] if dim == 0 else x[:, :2]
    _same(tg.tensor(x).diff(n, dim, tg.tensor(pre), tg.tensor(app)),
          torch.tensor(x).diff(n, dim, torch.tensor(pre), torch.tensor(app)))
    b = x > 0
    _same(tg.diff(tg.tensor(b), n, dim), torch.diff(torch.tensor(b), n, dim))
    f = x.astype(np.float64)
    _grads(lambda t: tg.diff(t, n, dim), lambda t: torch.diff(t, n, dim), f)
    _compiled_matches(lambda t: tg.diff(t, n, dim), f)
    with pytest.raises(ShapeError, match="diff"):
        tg.diff(tg.tensor(1.0))


@pytest.mark.parametrize("shifts,dims", [(2, None), (-7, None), (1, 0), (-1, -1), ((1, 3), (0, 1)),
                                         (5, 1), (0, 0)])
def test_roll_matches_torch(shifts, dims):
    x = np.arange(12.0).reshape(3, 4)
    _same(tg.roll(tg.tensor(x), shifts, dims), torch.roll(torch.tensor(x), shifts, dims))
    _same(tg.tensor(x).roll(shifts, dims), torch.tensor(x).roll(shifts, dims))
    _grads(lambda t: tg.roll(t, shifts, dims), lambda t: torch.roll(t, shifts, dims), x)
    _compiled_matches(lambda t: tg.roll(t, shifts, dims) * 2, x)
    _same(tg.roll(tg.zeros(0, 3), 1, 0), torch.roll(torch.zeros(0, 3), 1, 0))


@pytest.mark.parametrize("k", [0, 1, 2, 3, -1, 5])
@pytest.mark.parametrize("dims", [(0, 1), (1, 0), (-1, 0), (0, 2)])
def test_rot90_matches_torch(k, dims):
    x = np.arange(24.0).reshape(2, 3, 4)
    _same(tg.rot90(tg.tensor(x), k, dims), torch.rot90(torch.tensor(x), k, dims))
    _grads(lambda t: tg.rot90(t, k, dims), lambda t: torch.rot90(t, k, dims), x)


@pytest.mark.parametrize("indexing", ["ij", "xy"])
def test_meshgrid_matches_torch(indexing):
    a, b, c = np.arange(3.0), np.arange(4.0) * 2, np.array([5.0, 6.0])
    got = tg.meshgrid(tg.tensor(a), tg.tensor(b), tg.tensor(c), indexing=indexing)
    want = torch.meshgrid(torch.tensor(a), torch.tensor(b), torch.tensor(c), indexing=indexing)
    for g, w in zip(got, want):
        _same(g, w)
    got = tg.meshgrid([tg.tensor(a), tg.tensor(b)], indexing=indexing)
    want = torch.meshgrid([torch.tensor(a), torch.tensor(b)], indexing=indexing)
    for g, w in zip(got, want):
        _same(g, w)
    _grads(lambda s, t: sum(g * (i + 1) for i, g in enumerate(tg.meshgrid(s, t, indexing=indexing))),
           lambda s, t: sum(g * (i + 1) for i, g in enumerate(torch.meshgrid(s, t, indexing=indexing))),
           a, b)


def test_repeat_interleave_matches_torch():
    x = np.arange(6.0).reshape(2, 3)
    for repeats, dim in ((2, None), (3, 0), (2, -1), (0, 1)):
        _same(tg.repeat_interleave(tg.tensor(x), repeats, dim),
              torch.repeat_interleave(torch.tensor(x), repeats, dim))
        _grads(lambda t: t.repeat_interleave(repeats, dim),
               lambda t: t.repeat_interleave(repeats, dim), x)
    counts = np.array([1, 0, 2])
    _same(tg.tensor(x).repeat_interleave(tg.tensor(counts), dim=1),
          torch.tensor(x).repeat_interleave(torch.tensor(counts), dim=1))
    _grads(lambda t: t.repeat_interleave(tg.tensor(counts), dim=1),
           lambda t: t.repeat_interleave(torch.tensor(counts), dim=1), x)
    _same(tg.repeat_interleave(tg.tensor([2, 0, 1])), torch.repeat_interleave(torch.tensor([2, 0, 1])))
    _same(tg.repeat_interleave(tg.tensor(7), 3), torch.repeat_interleave(torch.tensor(7), 3))
    _compiled_matches(lambda t: t.repeat_interleave(2, dim=0) + 1, x)
    with pytest.raises(ShapeError, match="repeat_interleave"):
        tg.repeat_interleave(tg.tensor(x), tg.tensor([1, 2]), dim=1)


def test_take_matches_torch():
    x = np.random.default_rng(7).standard_normal((3, 4))
    idx = np.array([[0, -1], [5, 11]])
    _same(tg.take(tg.tensor(x), tg.tensor(idx)), torch.take(torch.tensor(x), torch.tensor(idx)))
    _grads(lambda t: t.take(tg.tensor(idx)), lambda t: t.take(torch.tensor(idx)), x)
    with pytest.raises(IndexError, match="take"):
        tg.take(tg.tensor(x), tg.tensor([12]))


@pytest.mark.parametrize("sa,sb,dims", [((2, 4, 5), (4, 5, 6), 2), ((2, 4, 5), (5, 6), 1),
                                         ((2, 3), (4,), 0), ((3, 4, 5), (4, 3, 6), ([1, 0], [0, 1])),
                                         ((3, 4, 5), (5, 3, 6), ([2], [-3])),
                                         ((3, 4, 5), (5, 3, 2), ([0, 2], [1, 0]))])
def test_tensordot_matches_torch(sa, sb, dims):
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    _same(tg.tensordot(tg.tensor(a), tg.tensor(b), dims),
          torch.tensordot(torch.tensor(a), torch.tensor(b), dims), rtol=1e-10)
    _grads(lambda s, t: tg.tensordot(s, t, dims), lambda s, t: torch.tensordot(s, t, dims), a, b)
    _compiled_matches(lambda s, t: tg.tensordot(s, t, dims), a, b)
    with pytest.raises(ShapeError, match="tensordot"):
        tg.tensordot(tg.tensor(a), tg.tensor(np.ones((7, 7))), 1)


def test_kron_matches_torch():
    rng = np.random.default_rng(9)
    for sa, sb in (((2, 3), (4, 5)), ((3,), (2, 2)), ((2, 1, 3), (2, 2))):
        a, b = rng.standard_normal(sa), rng.standard_normal(sb)
        _same(tg.kron(tg.tensor(a), tg.tensor(b)), torch.kron(torch.tensor(a), torch.tensor(b)))
        _grads(tg.kron, torch.kron, a, b)
    ints = np.arange(4).reshape(2, 2)
    _same(tg.tensor(ints).kron(tg.tensor(ints)), torch.tensor(ints).kron(torch.tensor(ints)))


@pytest.mark.parametrize("p", [2.0, 1.0, 0.0, 3.0, 0.5, float("inf")])
def test_cdist_and_dist_match_torch(p):
    rng = np.random.default_rng(10)
    x1, x2 = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 4, 3))
    x2[0, 1] = x1[0, 2]   # a zero distance: PyTorch's gradient there is 0
    _same(tg.cdist(tg.tensor(x1), tg.tensor(x2), p), torch.cdist(torch.tensor(x1), torch.tensor(x2), p),
          rtol=1e-10)
    _same(tg.dist(tg.tensor(x1[0]), tg.tensor(x1[1]), p),
          torch.dist(torch.tensor(x1[0]), torch.tensor(x1[1]), p), rtol=1e-10)
    if p != 0.0:
        _grads(lambda s, t: tg.cdist(s, t, p), lambda s, t: torch.cdist(s, t, p), x1, x2)
        same_row = x1[1].copy()
        same_row[0] = x1[0, 0]
        _grads(lambda s, t: s.dist(t, p), lambda s, t: s.dist(t, p), x1[0], same_row)
    _compiled_matches(lambda s, t: tg.cdist(s, t, p), x1, x2)


def test_cdist_gradient_against_finite_differences():
    rng = np.random.default_rng(11)
    a = tg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    b = tg.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    assert tg.autograd.gradcheck(lambda s, t: tg.cdist(s, t), (a, b))
    assert tg.autograd.gradcheck(lambda s, t: tg.hypot(s, t[:1]), (a[:, :1].detach().requires_grad_(),
                                                                   b[:, :1].detach().requires_grad_()))
    with pytest.raises(ShapeError, match="cdist"):
        tg.cdist(a, tg.ones(2, 4, dtype=tg.float64))


def test_grad_fn_names_are_pytorchs():
    x = tg.randn(3, 4, requires_grad=True)
    y = tg.randn(3, 4, requires_grad=True)
    for out, name in ((x.sort().values, "SortBackward0"), (x.topk(2).values, "TopkBackward0"),
                      (x.kthvalue(2).values, "KthvalueBackward0"),
                      (x.median(1).values, "MedianBackward1"), (x.cummax(1).values, "CummaxBackward0"),
                      (x.roll(1, 1), "RollBackward0"), (tg.logaddexp(x, y), "LogaddexpBackward0"),
                      (tg.hypot(x, y), "HypotBackward0"), (tg.xlogy(x, y), "XlogyBackward0"),
                      (x.nan_to_num(), "NanToNumBackward0"), (tg.cdist(x, y), "CdistBackward0"),
                      (x.dist(y), "DistBackward0"), (x.take(tg.tensor([1])), "TakeBackward0")):
        assert out.grad_fn.name() == name
