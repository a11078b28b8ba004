"""The autograd engine: backward, accumulation, hooks, retain_grad, retain_graph,
create_graph (higher order), autograd.grad, grad modes, detach."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.autograd import gradcheck, gradgradcheck


def test_simple_backward_and_leaf_flags():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x + 2 * x).sum()
    assert x.is_leaf and not y.is_leaf and y.requires_grad and y.grad_fn is not None
    y.backward()
    assert x.grad.tolist() == [4.0, 6.0, 8.0]
    assert x.grad.grad_fn is None and not x.grad.requires_grad


def test_grad_accumulates_across_backward_calls():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]
    x.grad.zero_()
    (x * 1).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]
    x.grad = None
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_grads_of_two_leaves_never_alias():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad.zero_()
    assert b.grad.tolist() == [1.0, 1.0]
    c = torch.tensor(1.0, requires_grad=True)
    d = torch.ones(3, requires_grad=True)
    (c * d).sum().backward()  # c's gradient comes from a broadcast
    d.grad += 1
    assert c.grad.item() == 3.0 and d.grad.tolist() == [2.0, 2.0, 2.0]
    e = torch.ones(2, requires_grad=True)
    y = e * 1.0
    g = torch.tensor([5.0, 6.0])
    y.backward(g)  # the root gradient is not stored as-is
    e.grad.zero_()
    assert g.tolist() == [5.0, 6.0]


def test_backward_with_gradient_argument_and_broadcasting_undone():
    x = torch.ones(3, 1, requires_grad=True)
    b = torch.ones(4, requires_grad=True)
    y = x * b * 2
    y.backward(torch.ones(3, 4))
    assert x.grad.shape == (3, 1) and x.grad.flatten().tolist() == [8.0] * 3
    assert b.grad.tolist() == [6.0] * 4
    z = torch.ones(2, requires_grad=True)
    (z * 2).backward(gradient=[1.0, 3.0])
    assert z.grad.tolist() == [2.0, 6.0]


def test_retain_graph_allows_second_backward_and_freed_graph_errors():
    x = torch.tensor([2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [8.0]
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_leaf_only_graph_can_backward_twice():
    x = torch.tensor(3.0, requires_grad=True)
    x.backward()
    x.backward()
    assert x.grad.item() == 2.0


def test_retain_grad_and_non_leaf_grad_is_none():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    h.retain_grad()
    k = x * 3
    (h * h + k).sum().backward()
    assert h.retains_grad and h.grad.tolist() == [4.0, 8.0]
    with pytest.warns(UserWarning, match="not a leaf Tensor"):
        assert k.grad is None


def test_register_hook_on_leaf_and_non_leaf():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    h = x * 2
    handle = h.register_hook(lambda g: g * 10)
    h.sum().backward()
    assert x.grad.tolist() == [20.0, 20.0] and seen == [[20.0, 20.0]]
    handle.remove()
    x.grad = None
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        torch.ones(2).register_hook(lambda g: g)


def test_create_graph_higher_order():
    x = torch.tensor([2.0, -1.0], dtype=torch.float64, requires_grad=True)
    y = (x ** 3).sum()
    (g,) = torch.autograd.grad(y, x, create_graph=True)
    assert g.tolist() == [12.0, 3.0] and g.requires_grad
    (g2,) = torch.autograd.grad(g.sum(), x, create_graph=True)
    assert g2.tolist() == [12.0, -6.0]  # d2/dx2 x^3 = 6x
    (g3,) = torch.autograd.grad(g2.sum(), x)
    assert g3.tolist() == [6.0, 6.0]


def test_backward_create_graph_then_backward_again():
    x = torch.tensor(3.0, requires_grad=True)
    y = x ** 3
    y.backward(create_graph=True)
    assert x.grad.item() == 27.0 and x.grad.requires_grad
    gx = x.grad
    x.grad = None
    gx.backward()
    assert x.grad.item() == 18.0


@pytest.mark.parametrize("fn", [
    lambda x: (x ** 3).sum(), lambda x: x.sigmoid() * x.tanh(), lambda x: x.exp().log1p(),
    lambda x: torch.softmax(x, 0), lambda x: (x @ x.t() if x.ndim == 2 else x * x),
    lambda x: x.abs().sqrt(), lambda x: x.max() * x.min(), lambda x: x.norm(),
])
def test_gradgradcheck_composites(fn):
    x = torch.tensor([[0.3, -0.8, 1.1], [0.5, 0.9, -1.3]], dtype=torch.float64, requires_grad=True)
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


def test_autograd_grad_allow_unused_and_multiple_inputs():
    x = torch.tensor(1.0, requires_grad=True)
    y = torch.tensor(2.0, requires_grad=True)
    z = torch.tensor(3.0, requires_grad=True)
    out = x * y
    gx, gy = torch.autograd.grad(out, (x, y), retain_graph=True)
    assert gx.item() == 2.0 and gy.item() == 1.0
    assert x.grad is None  # grad() returns, does not accumulate
    with pytest.raises(RuntimeError, match="allow_unused"):
        torch.autograd.grad(out, (x, z), retain_graph=True)
    gx, gz = torch.autograd.grad(out, (x, z), allow_unused=True, retain_graph=True)
    assert gx.item() == 2.0 and gz is None
    _, gz = torch.autograd.grad(out, [x, z], materialize_grads=True)
    assert gz.item() == 0.0


def test_autograd_grad_of_intermediate_and_grad_outputs():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    y = h * h
    (gh,) = torch.autograd.grad(y, h, grad_outputs=torch.ones(2))
    assert gh.tolist() == [4.0, 8.0]


def test_backward_inputs_argument():
    a = torch.tensor(1.0, requires_grad=True)
    b = torch.tensor(2.0, requires_grad=True)
    (a * b).backward(inputs=[a])
    assert a.grad.item() == 2.0 and b.grad is None


def test_no_grad_enable_grad_set_grad_enabled():
    x = torch.ones(2, requires_grad=True)
    with torch.no_grad():
        y = x * 2
        assert not torch.is_grad_enabled()
        with torch.enable_grad():
            z = x * 2
    assert torch.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and z.requires_grad

    @torch.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad and torch.is_grad_enabled()

    @torch.enable_grad()
    def g(t):
        return t * 2

    with torch.no_grad():
        assert g(x).requires_grad

    with torch.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert torch.is_grad_enabled()
    torch.set_grad_enabled(False)
    try:
        assert not (x * 2).requires_grad
    finally:
        torch.set_grad_enabled(True)

    @torch.set_grad_enabled(False)
    def h(t):
        return t * 2

    assert torch.is_grad_enabled() and not h(x).requires_grad
    with torch.inference_mode():
        assert not (x * 2).requires_grad


def test_no_grad_restores_mode_after_exception():
    with pytest.raises(ValueError):
        with torch.no_grad():
            raise ValueError
    assert torch.is_grad_enabled()


def test_detach_requires_grad_():
    x = torch.ones(2, requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and np.shares_memory(d.numpy(), y.detach().numpy())
    y.detach_()
    assert y.grad_fn is None and not y.requires_grad
    t = torch.ones(2)
    assert t.requires_grad_().requires_grad
    t.requires_grad = False
    assert not t.requires_grad


def test_requires_grad_propagation():
    a = torch.randn(3)
    b = torch.randn(3, requires_grad=True)
    assert not (a + a).requires_grad and (a + b).requires_grad
    assert not (b > 0).requires_grad and not b.argmax().requires_grad
    assert not b.long().requires_grad


def test_grad_fn_names_and_next_functions():
    x = torch.ones(2, requires_grad=True)
    y = (x * 2).sum()
    assert type(y.grad_fn).__name__ in ("Node", "SumBackward") or "Sum" in repr(y.grad_fn)
    assert "Sum" in repr(y.grad_fn)
    (fn, _), = y.grad_fn.next_functions
    assert "Mul" in repr(fn)


def test_deep_graph_backward_is_iterative():
    x = torch.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(3000):  # deeper than Python's recursion limit
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 3000, rel=1e-3)


def test_gradient_of_shared_subexpression():
    x = torch.tensor(2.0, requires_grad=True)
    a = x * x
    y = a + a * a  # a used twice
    y.backward()
    assert x.grad.item() == 2 * 2 + 4 * 8  # d/dx (x^2 + x^4)
