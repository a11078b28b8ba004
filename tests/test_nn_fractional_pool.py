"""FractionalMaxPool2d/3d against PyTorch 2.13 given the same ``_random_samples``:
windows, values, indices and input gradients equal exactly (float32 and float64, whose
interval arithmetic PyTorch does in the input's dtype); reprs, buffers, errors."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn as nn
import tracegrad.nn.functional as F

T = pytest.importorskip("torch")
rng = np.random.default_rng(0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n, shape, k, kw", [
    (2, (2, 3, 9, 11), (2, 3), dict(output_size=(4, 5))),
    (2, (3, 10, 10), 3, dict(output_ratio=(0.5, 0.6))),
    (2, (2, 3, 9, 11), 2, dict(output_size=(8, 10))),
    (3, (2, 2, 7, 8, 9), 2, dict(output_size=(3, 4, 5))),
])
def test_matches_pytorch_given_samples(dtype, n, shape, k, kw):
    x = rng.standard_normal(shape).astype(dtype)
    planes = (shape[0] if len(shape) == n + 2 else 1, shape[-n - 1], n)
    samples = rng.random(planes).astype(dtype)
    tx, gx = T.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
    a, ai = getattr(T.nn.functional, f"fractional_max_pool{n}d")(
        tx, k, return_indices=True, _random_samples=T.tensor(samples), **kw)
    b, bi = getattr(F, f"fractional_max_pool{n}d")(
        gx, k, return_indices=True, _random_samples=tg.tensor(samples), **kw)
    np.testing.assert_array_equal(b.detach().numpy(), a.detach().numpy())
    np.testing.assert_array_equal(bi.numpy(), ai.numpy())
    u = rng.standard_normal(tuple(a.shape)).astype(dtype)
    a.backward(T.tensor(u))
    b.backward(tg.tensor(u))
    np.testing.assert_array_equal(gx.grad.numpy(), tx.grad.numpy())


def test_module_repr_buffers_errors_and_random_windows():
    for cls in ("FractionalMaxPool2d", "FractionalMaxPool3d"):
        m_t = getattr(T.nn, cls)(3, output_ratio=0.5)
        m_g = getattr(nn, cls)(3, output_ratio=0.5)
        assert repr(m_g) == repr(m_t) == f"{cls}()"
        assert list(m_g.state_dict()) == list(m_t.state_dict()) == []
    with pytest.raises(ValueError, match="requires specifying either an output size"):
        nn.FractionalMaxPool2d(2)
    with pytest.raises(ValueError, match="output_ratio must be between 0 and 1"):
        nn.FractionalMaxPool2d(2, output_ratio=1.5)
    with pytest.raises(tg.ShapeError, match="fractional_max_pool2d.*too large"):
        F.fractional_max_pool2d(tg.zeros(1, 1, 4, 4), 3, output_size=3)
    out, idx = nn.FractionalMaxPool2d(2, output_size=(5, 5), return_indices=True)(
        tg.tensor(rng.standard_normal((2, 3, 10, 10))))
    assert tuple(out.shape) == tuple(idx.shape) == (2, 3, 5, 5)
