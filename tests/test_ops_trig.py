"""Inverse trigonometric and hyperbolic functions: values against NumPy (ends of the range
included), gradients against finite differences, compiled against eager."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.autograd import gradcheck

# name -> (NumPy reference, an interior range for gradients)
FUNCS = {
    "asin": (np.arcsin, (-0.95, 0.95)), "acos": (np.arccos, (-0.95, 0.95)),
    "atan": (np.arctan, (-5, 5)), "sinh": (np.sinh, (-3, 3)), "cosh": (np.cosh, (-3, 3)),
    "asinh": (np.arcsinh, (-5, 5)), "acosh": (np.arccosh, (1.1, 5)),
    "atanh": (np.arctanh, (-0.95, 0.95)),
}
EDGES = np.array([-1.0, -0.0, 0.0, 1.0, 1e-6, -1e-6, 0.5, 2.0, 1e3, -1e3, 1e20, -1e20,
                  np.inf, -np.inf, np.nan])


@pytest.mark.parametrize("name", sorted(FUNCS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_match_numpy(name, dtype):
    ref, _ = FUNCS[name]
    x = EDGES.astype(dtype)
    with np.errstate(all="ignore"):
        expected = ref(x)
    out = getattr(torch, name)(torch.from_numpy(x))
    assert out.dtype == torch.from_numpy(x).dtype
    rtol = 2e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(out.numpy(), expected, rtol=rtol, atol=0)
    # the method and NumPy's alias
    np.testing.assert_allclose(getattr(torch.from_numpy(x), name)().numpy(), expected, rtol=rtol)
    alias = "arc" + name[1:] if name.startswith("a") else name
    if hasattr(torch, alias):
        np.testing.assert_allclose(getattr(torch, alias)(torch.from_numpy(x)).numpy(), expected,
                                   rtol=rtol)


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_integer_input_gives_float(name):
    out = getattr(torch, name)(torch.tensor([1, 2]))
    assert out.dtype == torch.float32
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(out.numpy(), FUNCS[name][0](np.array([1.0, 2.0])), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_gradient_matches_finite_differences(name):
    lo, hi = FUNCS[name][1]
    x = torch.from_numpy(np.random.default_rng(0).uniform(lo, hi, (3, 4))).requires_grad_()
    assert gradcheck(getattr(torch, name), (x,), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("name", ["asinh", "sinh", "atan", "atanh", "asin"])
def test_gradient_at_zero_is_one(name):
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    getattr(torch, name)(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1.0)


def test_asinh_gradient_is_finite_for_huge_inputs():
    x = torch.tensor([-1e15, 1e15, -1e5], dtype=torch.float32, requires_grad=True)
    torch.asinh(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1 / np.sqrt(x.detach().numpy().astype(np.float64) ** 2 + 1),
                               rtol=1e-6)


def test_atan2_values_and_broadcasting():
    y = np.array([[1.0, -1.0, 0.0, 0.0, -0.0, 2.0, np.nan]])
    x = np.array([[-1.0], [1.0], [0.0], [-0.0]])
    out = torch.atan2(torch.from_numpy(y), torch.from_numpy(x))
    np.testing.assert_allclose(out.numpy(), np.arctan2(y, x), rtol=1e-15)
    assert torch.atan2(torch.tensor([1, -1]), torch.tensor([0, 0])).dtype == torch.float32
    np.testing.assert_allclose(torch.tensor([3.0]).atan2(torch.tensor([4.0])).numpy(),
                               np.arctan2(3.0, 4.0), rtol=1e-6)


def test_atan2_gradient_both_operands_with_broadcast():
    rng = np.random.default_rng(1)
    y = torch.from_numpy(rng.uniform(-2, 2, (3, 1))).requires_grad_()
    x = torch.from_numpy(rng.uniform(-2, 2, (1, 4))).requires_grad_()
    assert gradcheck(torch.atan2, (y, x))


def _all_funcs(x, y):
    out = torch.atan2(x, y) + torch.atan(x * 3) + torch.asinh(x * 30)
    out = out + torch.asin(x.clamp(-1, 1)) + torch.acos(x.clamp(-1, 1))
    out = out + torch.sinh(x) + torch.cosh(y) + torch.acosh(y.abs() + 1) + torch.atanh(x * 0.9)
    return out


@pytest.mark.parametrize("dtype,tol", [(np.float32, 2e-5), (np.float64, 1e-12)])
def test_compiled_equals_eager(dtype, tol):
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, 4096).astype(dtype)
    y = rng.standard_normal(4096).astype(dtype)
    x[:4] = [0.0, 1.0, -1.0, 0.0]
    y[:4] = [0.0, 0.0, 0.0, -1.0]
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    compiled = torch.compile(_all_funcs, fullgraph=True)
    np.testing.assert_allclose(compiled(tx, ty).numpy(), _all_funcs(tx, ty).numpy(),
                               rtol=tol, atol=tol)


def test_compiled_atan_over_the_whole_range_matches_numpy():
    x = np.concatenate([np.linspace(-50, 50, 10001), [np.inf, -np.inf, 1e30, -1e-30]])
    out = torch.compile(torch.atan, fullgraph=True)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, np.arctan(x), rtol=2e-16 * 4, atol=0)


def test_compiled_gradient_equals_eager():
    def loss(x):
        return (torch.atan2(x, x * x + 1) * torch.asinh(x)).sum()

    data = np.random.default_rng(3).uniform(-3, 3, (7, 5))
    x1 = torch.from_numpy(data.copy()).requires_grad_()
    loss(x1).backward()
    x2 = torch.from_numpy(data.copy()).requires_grad_()
    torch.compile(loss, fullgraph=True)(x2).backward()
    np.testing.assert_allclose(x2.grad.numpy(), x1.grad.numpy(), rtol=1e-12)
