"""Gradients PyTorch users get at the edges: ``max(x, dim)`` sends the gradient to the
element its index names (not split between ties), and prod with a zero, ``x ** 0`` at 0
and a norm of zeros have PyTorch's finite gradients where they gave NaN. Expected values
are worked out by hand; torch compared where installed."""
import numpy as np
import pytest

import tracegrad as tg


def _grad(fn, values, dtype=tg.float32):
    x = tg.tensor(values, dtype=dtype, requires_grad=True)
    fn(x).backward()
    return x.grad.tolist()


def test_max_and_min_over_a_dim_route_the_gradient_to_the_returned_index():
    # before: tied maxima shared it ([[0.5, 0.5, 0]] for the first row)
    assert _grad(lambda x: (tg.max(x, 1).values * tg.tensor([1.0, 10.0])).sum(),
                 [[1.0, 1.0, 0.0], [2.0, 5.0, 5.0]]) == [[1.0, 0.0, 0.0], [0.0, 10.0, 0.0]]
    assert _grad(lambda x: x.min(0, keepdim=True)[0].sum(),
                 [[1.0, 1.0, 0.0], [1.0, 5.0, 0.0]]) == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    # max(x) and amax split ties evenly, as PyTorch's do
    assert _grad(lambda x: x.max(), [1.0, 1.0]) == [0.5, 0.5]
    assert _grad(lambda x: x.amax(0), [1.0, 1.0]) == [0.5, 0.5]


def test_max_over_a_dim_keeps_values_and_indices():
    x = tg.tensor([[1.0, float("nan"), 3.0], [4.0, 2.0, 4.0]], requires_grad=True)
    values, indices = tg.max(x, 1)
    assert indices.tolist() == [1, 0]
    assert np.isnan(values[0].item()) and values[1].item() == 4.0
    assert values.grad_fn is not None and indices.dtype is tg.int64


@pytest.mark.parametrize("fn,values,want", [
    (lambda x: x.prod(), [0.0, 2.0, 3.0], [6.0, 0.0, 0.0]),
    (lambda x: (x * tg.tensor([1.0, 0.0, 0.0])).prod(), [0.0, 2.0, 3.0], [0.0, 0.0, 0.0]),
    (lambda x: x.reshape(3, 1).prod(1).sum(), [0.0, 2.0, 3.0], [1.0, 1.0, 1.0]),
    (lambda x: tg.stack([x, x + 1]).prod(0).sum(), [0.0, 2.0, 3.0], [1.0, 5.0, 7.0]),
    (lambda x: x.prod(), [1.0, 2.0, 3.0], [6.0, 3.0, 2.0]),
    (lambda x: (x ** 0).sum(), [0.0, 2.0], [0.0, 0.0]),
    (lambda x: x.pow(tg.tensor([0.0, 2.0])).sum(), [0.0, 2.0], [0.0, 4.0]),
    (lambda x: (x * 0).norm(), [1.0, 2.0], [0.0, 0.0]),
    (lambda x: (x * 0).norm(p=3), [1.0, 2.0], [0.0, 0.0]),
    (lambda x: tg.stack([x * 0, x]).norm(dim=1).sum(), [3.0, 4.0], [0.6, 0.8]),
])
def test_gradients_at_zero_are_finite(fn, values, want):
    # before: NaN where an element (or a whole norm) was zero
    np.testing.assert_allclose(_grad(fn, values), want, rtol=1e-6)


def test_prod_gradient_is_differentiable_again_without_zeros():
    x = tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64, requires_grad=True)
    (g,) = tg.autograd.grad(x.prod(), x, create_graph=True)
    g.sum().backward()
    # d/dx_i of sum_j prod_{k != j} x_k = sum_{j != i} prod_{k != i, j} x_k
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 4.0, 3.0])


def test_gradients_match_torch():
    torch = pytest.importorskip("torch")
    calls = [lambda m, x: (m.max(x, 1).values * m.tensor([1.0, 10.0])).sum(),
             lambda m, x: x.prod(1).sum(), lambda m, x: (x ** 0).sum(),
             lambda m, x: (x * 0).norm(), lambda m, x: x.norm(dim=0).sum()]
    data = [[1.0, 1.0, 0.0], [2.0, 5.0, 5.0]]
    for call in calls:
        xs = [m.tensor(data, requires_grad=True) for m in (tg, torch)]
        for m, x in zip((tg, torch), xs):
            call(m, x).backward()
        np.testing.assert_allclose(xs[0].grad.numpy(), xs[1].grad.numpy(), rtol=1e-6)
