"""torch.nn.grad's conv{1,2,3}d_input / _weight against PyTorch 2.13 (strided, padded,
grouped), their own differentiability, and torch.nn.common_types' names."""
import numpy as np
import pytest

import tracegrad as tg

T = pytest.importorskip("torch")
rng = np.random.default_rng(0)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_conv_gradients_match_pytorch(n):
    xs, ws = (2, 4) + (7,) * n, (6, 2) + (3,) * n
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    kw = dict(stride=2, padding=1, dilation=1, groups=2)
    out = getattr(T.nn.functional, f"conv{n}d")(T.tensor(x), T.tensor(w), **kw)
    go = rng.standard_normal(tuple(out.shape))
    a = getattr(T.nn.grad, f"conv{n}d_input")(xs, T.tensor(w), T.tensor(go), **kw)
    b = getattr(tg.nn.grad, f"conv{n}d_input")(xs, tg.tensor(w), tg.tensor(go), **kw)
    np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-12, atol=1e-13)
    a = getattr(T.nn.grad, f"conv{n}d_weight")(T.tensor(x), ws, T.tensor(go), **kw)
    b = getattr(tg.nn.grad, f"conv{n}d_weight")(tg.tensor(x), ws, tg.tensor(go), **kw)
    np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-12, atol=1e-13)


def test_input_gradient_is_differentiable_and_common_types_exist():
    w = tg.tensor(rng.standard_normal((3, 2, 2, 2)), requires_grad=True)
    go = tg.tensor(rng.standard_normal((1, 3, 3, 3)))
    gi = tg.nn.grad.conv2d_input((1, 2, 4, 4), w, go)
    gi.square().sum().backward()
    tw = T.tensor(w.detach().numpy(), requires_grad=True)
    T.nn.grad.conv2d_input((1, 2, 4, 4), tw, T.tensor(go.numpy())).square().sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)
    from tracegrad.nn.common_types import _size_2_t, _size_any_t   # noqa: F401
