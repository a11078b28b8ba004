"""Pooling added for PyTorch 2.13 parity, against torch: max_pool*_with_indices and
MaxUnpool1d/2d/3d, 3-D max/avg/adaptive-avg pools, AdaptiveMaxPool1d, LPPool1d/2d/3d and
Fold (values, indices, input gradients; module reprs); compiled against eager."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn as nn
import tracegrad.nn.functional as F

T = pytest.importorskip("torch")
TF = T.nn.functional
rng = np.random.default_rng(0)


def _check(fn_t, fn_g, shape, *extra):
    """``fn(x, *extra)`` in both libraries: outputs (a tensor or a tuple whose integer
    members must match exactly) and the gradient of the first output."""
    x = rng.standard_normal(shape)
    tx, gx = T.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
    a = fn_t(tx, *[T.tensor(e) for e in extra])
    b = fn_g(gx, *[tg.tensor(e) for e in extra])
    a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
    for u, v in zip(a, b):
        np.testing.assert_allclose(v.detach().numpy(), u.detach().numpy(), rtol=1e-12,
                                   atol=1e-14)
    g = rng.standard_normal(tuple(a[0].shape))
    a[0].backward(T.tensor(g))
    b[0].backward(tg.tensor(g))
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-14)
    return b


@pytest.mark.parametrize("n, shape, kw", [
    (1, (2, 3, 9), dict(kernel_size=3, stride=2, padding=1)),
    (2, (2, 3, 7, 6), dict(kernel_size=(3, 2), stride=2, padding=(1, 0), ceil_mode=True)),
    (2, (3, 6, 6), dict(kernel_size=2)),
    (3, (1, 2, 5, 4, 6), dict(kernel_size=2, stride=(2, 1, 2))),
    (3, (1, 2, 5, 6, 6), dict(kernel_size=2, stride=(2, 1, 2), dilation=(1, 2, 1))),
])
def test_max_pool_with_indices_and_unpool(n, shape, kw):
    pool_t = getattr(TF, f"max_pool{n}d_with_indices")
    pool_g = getattr(F, f"max_pool{n}d_with_indices")
    _check(lambda x: pool_t(x, **kw), lambda x: pool_g(x, **kw), shape)
    if "dilation" in kw:   # no unpooling size fits a dilated pool
        return
    x = rng.standard_normal(shape)
    tv, ti = pool_t(T.tensor(x), **kw)
    unpool_kw = {k: kw[k] for k in ("kernel_size", "stride", "padding") if k in kw}
    out_size = tuple(shape[-n:])
    # the default output size assumes no ceil_mode
    sizes = (out_size,) if "ceil_mode" in kw else (None, out_size)
    for size in sizes:
        _check(lambda v, i: getattr(TF, f"max_unpool{n}d")(v, i, output_size=size,
                                                           **unpool_kw),
               lambda v, i: getattr(F, f"max_unpool{n}d")(v, i, output_size=size,
                                                          **unpool_kw),
               tuple(tv.shape), ti.numpy())
    m_t = getattr(T.nn, f"MaxPool{n}d")(return_indices=True, **kw)
    m_g = getattr(nn, f"MaxPool{n}d")(return_indices=True, **kw)
    assert repr(m_g) == repr(m_t)
    u_t = getattr(T.nn, f"MaxUnpool{n}d")(**unpool_kw)
    u_g = getattr(nn, f"MaxUnpool{n}d")(**unpool_kw)
    assert repr(u_g) == repr(u_t)
    v, i = m_g(tg.tensor(x))
    np.testing.assert_allclose(u_g(v, i, out_size).numpy(),
                               u_t(tv, ti, out_size).numpy(), rtol=1e-12)


def test_unpool_checks_name_the_op():
    v, i = F.max_pool2d_with_indices(tg.randn(1, 1, 4, 4), 2)
    with pytest.raises(ValueError, match="max_unpool2d: invalid output_size"):
        F.max_unpool2d(v, i, 2, output_size=(9, 9))
    with pytest.raises(tg.ShapeError, match="max_unpool2d: expected indices"):
        F.max_unpool2d(v, i[..., :1], 2)


@pytest.mark.parametrize("name, args, kw, shape", [
    ("AvgPool3d", (2,), dict(stride=1, padding=1, count_include_pad=False), (2, 2, 3, 4, 5)),
    ("AvgPool3d", ((2, 3, 2),), dict(ceil_mode=True, stride=2), (1, 2, 5, 5, 5)),
    ("AvgPool3d", (2,), dict(divisor_override=3), (1, 2, 4, 4, 4)),
    ("MaxPool3d", (3,), dict(stride=2, padding=1), (2, 2, 5, 5, 5)),
    ("AdaptiveAvgPool3d", ((2, 3, None),), {}, (2, 2, 5, 7, 4)),
    ("AdaptiveMaxPool1d", (3,), {}, (2, 3, 8)),
    ("AdaptiveMaxPool1d", (4,), dict(return_indices=True), (3, 7)),
    ("AdaptiveMaxPool2d", ((2, 3),), dict(return_indices=True), (2, 3, 5, 7)),
    ("LPPool1d", (2, 3), dict(stride=2), (2, 3, 9)),
    ("LPPool2d", (3.0, 2), {}, (2, 3, 6, 6)),
    ("LPPool2d", (1.5, (2, 3)), dict(stride=1, ceil_mode=True), (2, 3, 5, 6)),
    ("LPPool3d", (2, 2), {}, (1, 2, 4, 4, 4)),
    ("Fold", ((5, 6), (2, 3)), dict(padding=1, stride=(2, 1), dilation=(1, 2)),
     (2, 3 * 6, 12)),
    ("Fold", (4, 2), {}, (3 * 4, 9)),
])
def test_module_matches_pytorch(name, args, kw, shape):
    m_t, m_g = getattr(T.nn, name)(*args, **kw), getattr(nn, name)(*args, **kw)
    assert repr(m_g) == repr(m_t)
    if name.startswith("LP"):   # powers of negative numbers: pool |x| + 0.1
        _check(lambda x: m_t(x.abs() + 0.1), lambda x: m_g(x.abs() + 0.1), shape)
    else:
        _check(m_t, m_g, shape)


def test_fold_inverts_unfold_counts_and_compiles():
    x = tg.tensor(rng.standard_normal((2, 3, 6, 5)))
    cols = F.unfold(x, (2, 3), padding=1)
    counts = F.fold(F.unfold(tg.ones(2, 3, 6, 5), (2, 3), padding=1), (6, 5), (2, 3),
                    padding=1)
    np.testing.assert_allclose((F.fold(cols, (6, 5), (2, 3), padding=1) / counts).numpy(),
                               x.numpy(), rtol=1e-12)
    with pytest.raises(tg.ShapeError, match="fold: Given output_size"):
        F.fold(cols, (7, 5), (2, 3), padding=1)

    def step(c):
        return F.fold(c, (6, 5), (2, 3), padding=1).sin().sum()
    np.testing.assert_allclose(tg.compile(step)(cols).item(), step(cols).item(), rtol=1e-12)


def test_unpool_compiled_equals_eager():
    x = tg.tensor(rng.standard_normal((2, 3, 6, 6)))
    v, i = F.max_pool2d_with_indices(x, 2)

    def step(v):
        return F.max_unpool2d(v, i, 2).cos().sum()
    np.testing.assert_allclose(tg.compile(step)(v).item(), step(v).item(), rtol=1e-12)


@pytest.mark.parametrize("out", [(2, 3, 4), (5, 7, 6), (3, None, 2), 1])
def test_adaptive_max_pool3d_values_indices_and_gradient(out):
    x = rng.standard_normal((2, 3, 5, 7, 6))
    m_t, m_g = T.nn.AdaptiveMaxPool3d(out, True), nn.AdaptiveMaxPool3d(out, True)
    assert repr(m_g) == repr(m_t)
    _check(m_t, m_g, x.shape)
    _check(lambda t: TF.adaptive_max_pool3d_with_indices(t, out),
           lambda t: F.adaptive_max_pool3d_with_indices(t, out), x.shape[1:])


def test_deprecated_aliases_and_constants():
    x = rng.standard_normal((1, 2, 3, 4))
    with pytest.warns(UserWarning, match="upsample_bilinear` is deprecated"):
        mine = F.upsample_bilinear(tg.tensor(x), scale_factor=2)
    ref = T.nn.functional.interpolate(T.tensor(x), scale_factor=2, mode="bilinear",
                                      align_corners=True)
    np.testing.assert_allclose(mine.numpy(), ref.numpy(), rtol=1e-12)
    assert F.GRID_SAMPLE_INTERPOLATION_MODES == TF.GRID_SAMPLE_INTERPOLATION_MODES
    assert F.GRID_SAMPLE_PADDING_MODES == TF.GRID_SAMPLE_PADDING_MODES
    logp = rng.standard_normal((2, 3, 4, 5))
    target = rng.integers(0, 3, (2, 4, 5))
    with pytest.warns(FutureWarning, match="NLLLoss2d` has been deprecated"):
        mine, ref = nn.NLLLoss2d(), T.nn.NLLLoss2d()
    np.testing.assert_allclose(mine(tg.tensor(logp), tg.tensor(target)).item(),
                               ref(T.tensor(logp), T.tensor(target)).item(), rtol=1e-12)
