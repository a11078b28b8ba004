"""Module backward hooks (register_full_backward_hook / _pre_hook, the deprecated
register_backward_hook, the global register_module_*_hook): values against finite
differences, replacement, handles, None entries, several inputs and outputs, in-place
writes refused as PyTorch refuses them."""
import numpy as np
import pytest

import tracegrad as torch
from tracegrad import nn


def finite_difference(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f(x) / dx, central differences in float64."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += eps
        down[i] -= eps
        grad[i] = (f(up) - f(down)) / (2 * eps)
    return grad


class TwoInOut(nn.Module):
    """Two inputs, two outputs and a non-tensor output."""

    def forward(self, a, b):
        return a * b, a + b.exp(), "label"


def recorder(calls):
    def hook(module, grad_input, grad_output):
        calls.append((module, grad_input, grad_output))
    return hook


def test_linear_grad_input_and_grad_output_match_finite_differences():
    torch.manual_seed(0)
    layer = nn.Linear(3, 2).double()
    calls = []
    layer.register_full_backward_hook(recorder(calls))
    x0 = np.random.default_rng(0).normal(size=(4, 3))
    x = torch.tensor(x0, requires_grad=True)
    weights = np.arange(8.0).reshape(4, 2)
    (layer(x) * torch.tensor(weights)).sum().backward()
    (module, grad_input, grad_output), = calls
    assert module is layer
    w = layer.weight.detach().numpy()
    b = layer.bias.detach().numpy()
    expected = finite_difference(lambda v: ((v @ w.T + b) * weights).sum(), x0)
    np.testing.assert_allclose(grad_input[0].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(grad_output[0].numpy(), weights)
    np.testing.assert_allclose(x.grad.numpy(), expected, atol=1e-6)


def test_hook_returning_grad_input_replaces_it():
    layer = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    x = torch.randn(2, 3, requires_grad=True)
    layer(x).sum().backward()
    plain, x.grad = x.grad.clone(), None
    handle = layer.register_full_backward_hook(lambda m, gi, go: (gi[0] * 3,))
    layer(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * plain.numpy(), rtol=1e-6)
    handle.remove()
    x.grad = None
    layer(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), plain.numpy(), rtol=1e-6)


def test_pre_hook_replaces_grad_output_before_the_module_backward():
    layer = nn.Linear(3, 2)
    seen = []
    layer.register_full_backward_pre_hook(lambda m, go: (go[0] * 0 + 1,))
    layer.register_full_backward_hook(lambda m, gi, go: seen.append(go[0]))
    x = torch.randn(5, 3, requires_grad=True)
    (layer(x) * 7).sum().backward()
    np.testing.assert_allclose(seen[0].numpy(), np.ones((5, 2)))
    np.testing.assert_allclose(layer.bias.grad.numpy(), [5.0, 5.0])  # 1 per row, not 7
    np.testing.assert_allclose(x.grad.numpy(),
                               np.ones((5, 2)) @ layer.weight.detach().numpy(), rtol=1e-6)


def test_removable_handle_stops_the_hook():
    layer = nn.Linear(2, 2)
    calls = []
    handle = layer.register_full_backward_hook(recorder(calls))
    pre_calls = []
    with layer.register_full_backward_pre_hook(lambda m, go: pre_calls.append(go)):
        layer(torch.randn(1, 2, requires_grad=True)).sum().backward()
    handle.remove()
    layer(torch.randn(1, 2, requires_grad=True)).sum().backward()
    assert len(calls) == 1 and len(pre_calls) == 1


def test_prepend_runs_first():
    layer = nn.Linear(2, 2)
    order = []
    layer.register_full_backward_hook(lambda m, gi, go: order.append("second"))
    layer.register_full_backward_hook(lambda m, gi, go: order.append("first"), prepend=True)
    layer(torch.randn(1, 2, requires_grad=True)).sum().backward()
    assert order == ["first", "second"]


def test_input_without_grad_gives_none_and_hook_runs_at_grad_output():
    layer = nn.Linear(3, 2)
    calls = []
    layer.register_full_backward_hook(recorder(calls))
    with pytest.warns(UserWarning, match="Full backward hook is firing when gradients are "
                                         "computed with respect to module outputs"):
        layer(torch.randn(4, 3)).sum().backward()
    (_, grad_input, grad_output), = calls
    assert grad_input == (None,)
    np.testing.assert_allclose(grad_output[0].numpy(), np.ones((4, 2)))
    layer.register_full_backward_hook(lambda m, gi, go: (torch.ones(4, 3),))
    with pytest.raises(RuntimeError, match="no input requires gradient should always return "
                                           "None"), pytest.warns(UserWarning):
        layer(torch.randn(4, 3)).sum().backward()


def test_two_inputs_two_outputs_unused_output_and_non_tensor_positions():
    module = TwoInOut()
    calls, pre_calls = [], []
    module.register_full_backward_hook(recorder(calls))
    module.register_full_backward_pre_hook(lambda m, go: pre_calls.append(go))
    a0, b0 = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    a = torch.tensor(a0, requires_grad=True)
    b = torch.tensor(b0)
    prod, _, label = module(a, b)
    assert label == "label"
    prod.sum().backward()
    (_, grad_input, grad_output), = calls
    assert len(grad_output) == 3 and grad_output[1] is None and grad_output[2] is None
    np.testing.assert_allclose(grad_output[0].numpy(), [1.0, 1.0])
    np.testing.assert_allclose(grad_input[0].numpy(),
                               finite_difference(lambda v: (v * b0).sum(), a0), atol=1e-6)
    np.testing.assert_allclose(grad_input[1].numpy(), [0.0, 0.0])  # b: no grad, zeros
    assert len(pre_calls) == 1


def test_two_inputs_both_requiring_grad_both_outputs_used():
    module = TwoInOut()
    calls = []
    module.register_full_backward_hook(recorder(calls))
    a0, b0 = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    a = torch.tensor(a0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    prod, total, _ = module(a, b)
    (prod * 2 + total * 3).sum().backward()
    (_, grad_input, _), = calls
    loss = lambda va, vb: (va * vb * 2 + (va + np.exp(vb)) * 3).sum()  # noqa: E731
    np.testing.assert_allclose(grad_input[0].numpy(),
                               finite_difference(lambda v: loss(v, b0), a0), atol=1e-5)
    np.testing.assert_allclose(grad_input[1].numpy(),
                               finite_difference(lambda v: loss(a0, v), b0), atol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), grad_input[1].numpy())


def test_wrong_number_of_gradients_is_a_clear_error():
    layer = nn.Linear(3, 3)
    layer.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
    x = torch.randn(1, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="Backward hook returned an invalid number of "
                                           "grad_input, got 2, but expected 1"):
        layer(x).sum().backward()
    layer = nn.Linear(3, 3)
    layer.register_full_backward_pre_hook(lambda m, go: (go[0], 1))
    with pytest.raises(RuntimeError, match="Backward pre hook returned an invalid number of "
                                           "grad_output, got 2, but expected 1"):
        layer(x).sum().backward()


def test_in_place_write_into_hooked_input_or_output_is_refused():
    relu = nn.ReLU(inplace=True)
    relu.register_full_backward_hook(lambda m, gi, go: None)
    x = torch.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="Output 0 of BackwardHookFunction is a view and "
                                           "is being modified inplace"):
        relu(x * 1)
    layer = nn.Linear(3, 3)
    layer.register_full_backward_hook(lambda m, gi, go: None)
    y = layer(x)
    with pytest.raises(RuntimeError, match="cloning the output of the custom Function"):
        y += 1
    module = TwoInOut()
    module.register_full_backward_hook(lambda m, gi, go: None)
    _, total, _ = module(x, x)
    with pytest.raises(RuntimeError, match="Output 1 of BackwardHookFunction"):
        total.mul_(2)
    with pytest.raises(RuntimeError, match="Output 0 of BackwardHookFunction"):
        layer(x)[0].add_(1)  # a view of the output
    (layer(x).clone().add_(1)).sum().backward()  # a clone is the documented fix
    y = layer(x)
    with torch.no_grad():
        y.add_(1)  # allowed without grad mode, as in PyTorch


def test_no_grad_call_runs_no_hook():
    layer = nn.Linear(2, 2)
    calls = []
    layer.register_full_backward_hook(recorder(calls))
    with torch.no_grad():
        out = layer(torch.randn(1, 2))
    out.add_(1)  # no hook identity was inserted: writing is fine
    assert calls == []


def test_legacy_backward_hook_warns_and_excludes_full_hooks():
    layer = nn.Linear(2, 2)
    calls = []
    with pytest.warns(FutureWarning, match="runs this deprecated hook as a full backward hook"):
        layer.register_backward_hook(recorder(calls))
    with pytest.raises(RuntimeError, match="Cannot use both regular backward hooks and full "
                                           "backward hooks on a single Module"):
        layer.register_full_backward_hook(recorder(calls))
    x = torch.randn(1, 2, requires_grad=True)
    layer(x).sum().backward()
    np.testing.assert_allclose(calls[0][1][0].numpy(), x.grad.numpy())
    full = nn.Linear(2, 2)
    full.register_full_backward_hook(recorder(calls))
    with pytest.raises(RuntimeError, match="Cannot use both"):
        full.register_backward_hook(recorder(calls))


def test_global_hooks_run_for_every_module_and_before_module_hooks():
    from tracegrad.nn.modules import module as module_py
    order = []
    handles = [
        module_py.register_module_forward_pre_hook(lambda m, a: order.append("gpre")),
        module_py.register_module_forward_hook(lambda m, a, o: order.append("gfwd")),
        module_py.register_module_full_backward_pre_hook(lambda m, go: order.append("gbpre")),
        module_py.register_module_full_backward_hook(lambda m, gi, go: order.append("gbwd")),
    ]
    layer = nn.Linear(2, 2)
    layer.register_forward_hook(lambda m, a, o: order.append("fwd"))
    layer.register_full_backward_hook(lambda m, gi, go: order.append("bwd"))
    try:
        layer(torch.randn(1, 2, requires_grad=True)).sum().backward()
    finally:
        for h in handles:
            h.remove()
    assert order == ["gpre", "gfwd", "fwd", "gbpre", "gbwd", "bwd"]
    order.clear()
    nn.Linear(2, 2)(torch.randn(1, 2, requires_grad=True)).sum().backward()
    assert order == []


def test_global_forward_hook_with_kwargs_replaces_output():
    from tracegrad.nn.modules.module import register_module_forward_hook
    with register_module_forward_hook(lambda m, a, kw, o: o * 0, with_kwargs=True):
        out = nn.Linear(2, 2)(torch.ones(1, 2))
    np.testing.assert_allclose(out.detach().numpy(), np.zeros((1, 2)))


def test_custom_function_non_differentiable_input_returned_as_is():
    # the hook identity relies on it: a marked input returned unchanged needs no grad
    class Pass(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.mark_non_differentiable(b)
            return a, b

        @staticmethod
        def backward(ctx, ga, gb):
            return ga, gb

    a = torch.ones(2, requires_grad=True)
    b = torch.ones(2, requires_grad=True)
    x, y = Pass.apply(a, b)
    assert x.requires_grad and not y.requires_grad


def test_module_called_twice_before_backward_runs_its_hook_per_call():
    torch.manual_seed(0)
    layer = nn.Linear(3, 3)
    sums = []
    layer.register_full_backward_hook(lambda m, gi, go: sums.append(gi[0].sum().item()))
    x = torch.randn(2, 3, requires_grad=True)
    (layer(x).sum() + 2 * layer(x).sum()).backward()
    one = layer.weight.detach().numpy().sum(0).sum() * 2  # d(sum(layer(x)))/dx, summed
    np.testing.assert_allclose(sorted(sums), sorted([one, 2 * one]), rtol=1e-5)
