"""vdot, addmv, addr, addbmm, cov, corrcoef (tracegrad/_ops/products.py), the inner and
baddbmm methods, and multinomial/bernoulli's checks and methods (_ops/sampling.py)."""
import numpy as np
import pytest

import tracegrad as tg
from torch_parity_testing import compare, compiled_matches_eager

torch = pytest.importorskip("torch")
rng = np.random.default_rng(4)
M3, V3, V4 = rng.standard_normal((3, 4)), rng.standard_normal(3), rng.standard_normal(4)


@pytest.mark.parametrize("kw", [{}, {"beta": 0.5, "alpha": 2.0}, {"beta": 0}])
def test_add_products(kw):
    compare(lambda m, i, a, v: m.addmv(i, a, v, **kw), lambda m, i, a, v: m.addmv(i, a, v, **kw),
            V3, M3, V4, grad=(0, 1, 2) if kw.get("beta") != 0 else (1, 2))
    compare(lambda m, i, a, b: i.addr(a, b, **kw), lambda m, i, a, b: i.addr(a, b, **kw),
            M3, V3, V4, grad=(0, 1, 2) if kw.get("beta") != 0 else (1, 2))
    b1, b2 = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 5, 4))
    compare(lambda m, i, a, b: m.addbmm(i, a, b, **kw), lambda m, i, a, b: m.addbmm(i, a, b, **kw),
            M3, b1, b2, grad=(1, 2))
    compare(lambda m, i, a, b: i.baddbmm(a, b, **kw), lambda m, i, a, b: i.baddbmm(a, b, **kw),
            rng.standard_normal((2, 3, 4)), b1, b2, grad=(1, 2))


@pytest.mark.filterwarnings("ignore:torch.chain_matmul is deprecated")
def test_chain_matmul_and_legacy_new():
    a, b, c = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    compare(lambda m, x, y, z: m.chain_matmul(x, y, z), lambda m, x, y, z: m.chain_matmul(x, y, z),
            a, b, c, grad=(0, 1, 2))
    assert not hasattr(tg.Tensor, "chain_matmul")
    x = tg.ones(2, dtype=tg.float64)
    assert x.new().shape == (0,) and x.new(2, 3).shape == (2, 3) and x.new(2).dtype == tg.float64
    assert x.new(tg.Size([2, 1])).shape == (2, 1) and x.new([1, 2]).tolist() == [1.0, 2.0]
    assert x.new((1, 2)).dtype == tg.float64


def test_beta_zero_ignores_nan_input():
    compare(lambda m, i, a, v: m.addmv(i, a, v, beta=0), lambda m, i, a, v: m.addmv(i, a, v, beta=0),
            np.full(3, np.nan), M3, V4)


def test_vdot_inner_and_int():
    compare(lambda m, a, b: m.vdot(a, b), lambda m, a, b: m.vdot(a, b), V4, V4 * 2, grad=(0, 1))
    compare(lambda m, a, b: a.inner(b), lambda m, a, b: a.inner(b), M3, V4, grad=(0, 1))
    compare(lambda m, a, b: a.vdot(b), lambda m, a, b: a.vdot(b), np.arange(3), np.arange(3))
    with pytest.raises(tg.ShapeError, match=r"vdot.*\(3, 4\)"):
        tg.vdot(tg.tensor(M3), tg.tensor(V4))


@pytest.mark.parametrize("kw", [{}, {"correction": 0}, {"correction": 2}, "fweights",
                                "aweights", "both"])
def test_cov(kw):
    fw = np.array([1, 2, 1, 3])
    aw = rng.uniform(0.5, 2.0, 4)
    ours_kw = {"fweights": {"fweights": fw}, "aweights": {"aweights": aw},
               "both": {"fweights": fw, "aweights": aw}}.get(kw, kw) if isinstance(kw, str) \
        else kw

    def call(m, x):
        k = {n: m.tensor(v) for n, v in ours_kw.items() if not isinstance(v, int)}
        k.update({n: v for n, v in ours_kw.items() if isinstance(v, int)})
        return m.cov(x, **k)
    compare(call, call, M3, grad=(0,))
    compare(lambda m, x: m.cov(x), lambda m, x: m.cov(x), V4, grad=(0,))
    compare(lambda m, x: m.cov(x), lambda m, x: m.cov(x), M3[:1])
    compare(lambda m, x: x.cov(), lambda m, x: x.cov(), np.arange(12).reshape(3, 4))


def test_corrcoef():
    compare(lambda m, x: m.corrcoef(x), lambda m, x: m.corrcoef(x), M3, grad=(0,))
    compare(lambda m, x: x.corrcoef(), lambda m, x: x.corrcoef(), V4)
    compare(lambda m, x: x.corrcoef(), lambda m, x: x.corrcoef(), M3[:1])


def test_compiled_equals_eager():
    compiled_matches_eager(lambda i, a, v: tg.addmv(i, a, v, beta=0.5) + tg.cov(a).sum(1)
                           + tg.corrcoef(a).sum(0) + tg.addr(a, i, v).sum(1), V3, M3, V4,
                           rtol=1e-5, atol=1e-6)


def test_multinomial_checks_and_seeds():
    p = tg.tensor([[0.1, 0.0, 0.9], [0.5, 0.5, 0.0]])
    tg.manual_seed(7)
    a = p.multinomial(2)
    tg.manual_seed(7)
    b = tg.multinomial(p, 2)
    assert a.dtype == tg.int64 and tuple(a.shape) == (2, 2) and a.tolist() == b.tolist()
    assert 1 not in a[0].tolist() and 2 not in a[1].tolist()   # zero-probability categories
    assert sorted(a[1].tolist()) == [0, 1]                       # without replacement
    draws = tg.multinomial(tg.tensor([0.0, 1.0]), 5, replacement=True)
    assert draws.tolist() == [1] * 5
    with pytest.raises(ValueError, match=r"multinomial.*without replacement"):
        tg.multinomial(p, 3)
    with pytest.raises(ValueError, match=r"multinomial.*< 0"):
        tg.multinomial(tg.tensor([0.5, -0.1]), 1)
    with pytest.raises(ValueError, match=r"multinomial.*sum to <= 0"):
        tg.multinomial(tg.tensor([0.0, 0.0]), 1)


def test_bernoulli_method_and_p():
    x = tg.full((2000,), 0.3, dtype=tg.float64)
    g = tg.Generator().manual_seed(3)
    a = x.bernoulli(generator=g)
    assert a.dtype == tg.float64 and set(np.unique(a.numpy())) <= {0.0, 1.0}
    assert abs(a.mean().item() - 0.3) < 0.05
    assert tg.bernoulli(x, 0.0).sum().item() == 0 and x.bernoulli(1.0).sum().item() == 2000
    with pytest.raises(ValueError, match=r"bernoulli.*\[0, 1\]"):
        tg.bernoulli(tg.tensor([2.0]))
