"""F.affine_grid and F.grid_sample against PyTorch 2.13: 2-D and 3-D, bilinear and
nearest, zeros/border/reflection padding, both align_corners; values and the gradients
of the input, the grid and theta; compiled against eager; errors naming the op."""
import itertools

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn.functional as F

T = pytest.importorskip("torch")
rng = np.random.default_rng(0)


@pytest.mark.parametrize("n, mode, padding_mode, align", list(itertools.product(
    (2, 3), ("bilinear", "nearest"), ("zeros", "border", "reflection"), (False, True))))
def test_grid_sample_matches_pytorch(n, mode, padding_mode, align):
    shape, gshape = ((2, 3, 5, 6), (2, 4, 3, 2)) if n == 2 else ((2, 2, 4, 5, 3),
                                                                   (2, 3, 2, 4, 3))
    x = rng.standard_normal(shape)
    g = rng.uniform(-1.6, 1.6, gshape)   # points outside exercise the padding modes
    tx, gx = T.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
    tgrid, ggrid = T.tensor(g, requires_grad=True), tg.tensor(g, requires_grad=True)
    a = T.nn.functional.grid_sample(tx, tgrid, mode, padding_mode, align)
    b = F.grid_sample(gx, ggrid, mode, padding_mode, align)
    np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    u = rng.standard_normal(tuple(a.shape))
    a.backward(T.tensor(u))
    b.backward(tg.tensor(u))
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    # nearest: torch returns a zero grid gradient, tracegrad none (no path to the grid)
    grid_grad = ggrid.grad.numpy() if ggrid.grad is not None else np.zeros_like(g)
    np.testing.assert_allclose(grid_grad, tgrid.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("size, theta_shape", [((2, 3, 4, 5), (2, 2, 3)),
                                               ((2, 3, 3, 4, 5), (2, 3, 4))])
@pytest.mark.parametrize("align", [False, True])
def test_affine_grid_matches_pytorch(size, theta_shape, align):
    t = rng.standard_normal(theta_shape)
    tt, gt = T.tensor(t, requires_grad=True), tg.tensor(t, requires_grad=True)
    a = T.nn.functional.affine_grid(tt, size, align)
    b = F.affine_grid(gt, size, align)
    np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-12,
                               atol=1e-14)
    u = rng.standard_normal(tuple(a.shape))
    a.backward(T.tensor(u))
    b.backward(tg.tensor(u))
    np.testing.assert_allclose(gt.grad.numpy(), tt.grad.numpy(), rtol=1e-12)


def test_spatial_transformer_compiled_equals_eager():
    x = tg.tensor(rng.standard_normal((2, 3, 6, 7)))
    theta = tg.tensor(rng.standard_normal((2, 2, 3)) * 0.5, requires_grad=True)

    def step(x):
        grid = F.affine_grid(theta, (2, 3, 5, 5), align_corners=False)
        return F.grid_sample(x, grid, padding_mode="reflection").square().sum()
    eager = step(x)
    np.testing.assert_allclose(tg.compile(step)(x).item(), eager.item(), rtol=1e-10)


def test_errors_name_the_op():
    x = tg.zeros(1, 2, 3, 3)
    with pytest.raises(ValueError, match="grid_sample: expected mode"):
        F.grid_sample(x, tg.zeros(1, 2, 2, 2), mode="bicubic_spline")
    with pytest.raises(ValueError, match="grid_sample: expected padding_mode"):
        F.grid_sample(x, tg.zeros(1, 2, 2, 2), padding_mode="wrap")
    with pytest.raises(tg.ShapeError, match=r"grid_sample: expected grid of shape"):
        F.grid_sample(x, tg.zeros(1, 2, 2, 3))
    with pytest.raises(tg.ShapeError, match="affine_grid: Expected a batch of 2D affine "
                                            "matrices of shape Nx2x3"):
        F.affine_grid(tg.zeros(1, 3, 3), (1, 2, 3, 3))
