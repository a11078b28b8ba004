"""Public parameters that users pass as in PyTorch and that were once silently ignored, and
warnings users read: each checked against PyTorch's behaviour (written the way a user's
program is, ``import tracegrad as torch``)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn.functional as F


def test_normalize_writes_out_and_returns_it():
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    out = torch.empty(3, 4)
    result = F.normalize(torch.tensor(x), dim=1, out=out)
    assert result is out
    expected = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)


def test_normalize_out_refused_under_autograd():
    x = torch.randn(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match="normalize.*out="):
        F.normalize(x, out=torch.empty(3, 4))


def test_load_state_dict_assign_takes_the_tensors_themselves():
    model = torch.nn.Linear(3, 2)
    state = {k: v.double() + 1 for k, v in model.state_dict().items()}
    model.load_state_dict(state, assign=True)
    assert isinstance(model.weight, torch.nn.Parameter)
    assert model.weight.dtype == torch.float64          # PyTorch: the state dict's dtype
    assert model.weight.requires_grad
    assert model.weight.data_ptr() == state["weight"].data_ptr()   # no copy
    np.testing.assert_array_equal(model.bias.detach().numpy(), state["bias"].numpy())


def test_load_state_dict_assign_keeps_requires_grad_and_sets_buffers():
    bn = torch.nn.BatchNorm1d(3)
    bn.weight.requires_grad_(False)
    state = {k: v.clone() for k, v in bn.state_dict().items()}
    bn.load_state_dict(state, assign=True)
    assert bn.running_mean is state["running_mean"]
    assert not bn.weight.requires_grad


def test_load_state_dict_without_assign_copies():
    model = torch.nn.Linear(3, 2)
    weight = model.weight
    model.load_state_dict({k: v + 1 for k, v in model.state_dict().items()})
    assert model.weight is weight


class _Raises(torch.nn.Module):
    def forward(self, x):
        raise ValueError("boom")


def test_forward_hook_always_call_runs_when_forward_raises():
    module, seen = _Raises(), []
    module.register_forward_hook(lambda m, a, out: seen.append(("always", out)),
                                 always_call=True)
    module.register_forward_hook(lambda m, a, out: seen.append(("normal", out)))
    with pytest.raises(ValueError, match="boom"):
        module(torch.ones(1))
    assert seen == [("always", None)]   # PyTorch: output None, the other hook skipped


def test_forward_hook_always_call_runs_once_on_success_and_after_a_failing_hook():
    module, seen = torch.nn.Identity(), []

    def failing(m, a, out):
        raise KeyError("hook")
    module.register_forward_hook(lambda m, a, out: seen.append("always"), always_call=True)
    module(torch.ones(1))
    assert seen == ["always"]
    module.register_forward_hook(failing, prepend=True)
    with pytest.raises(KeyError):
        module(torch.ones(1))
    assert seen == ["always", "always"]


def test_forward_hook_always_call_error_becomes_a_warning():
    module = _Raises()

    def bad(m, a, out):
        raise RuntimeError("hook failed")
    module.register_forward_hook(bad, always_call=True)
    with pytest.warns(UserWarning, match="hook failed"), pytest.raises(ValueError, match="boom"):
        module(torch.ones(1))


def test_forward_hook_always_call_removed_by_its_handle():
    module, seen = _Raises(), []
    handle = module.register_forward_hook(lambda m, a, out: seen.append(1), always_call=True)
    handle.remove()
    assert not module._forward_hooks_always_called
    with pytest.raises(ValueError):
        module(torch.ones(1))
    assert seen == []


def test_prod_overflow_is_silent_like_pytorch():
    x = torch.full((100,), 1e10)
    # the filters as tracegrad installs them (entering catch_warnings resets the
    # once-per-location registry, so a warning seen earlier would show again)
    with warnings.catch_warnings(record=True) as record:
        assert torch.isinf(x.prod())
        assert torch.isinf(torch.prod(x.reshape(10, 10), 1)).all()
    assert [str(w.message) for w in record] == []


def test_max_pool_indices_in_a_compiled_function_names_the_op_and_the_line():
    def pool(x):
        y, idx = F.max_pool2d(x, 2, return_indices=True)
        return y * 2, idx
    x = torch.randn(1, 2, 4, 4)
    with pytest.warns(RuntimeWarning) as record:
        y, idx = torch.compile(pool)(x)
    message = str(record[0].message)
    assert "max_pool2d(return_indices=True)" in message
    assert "test_user_compat.py" in message and "F.max_pool2d" in message
    assert record[0].filename == __file__   # the warning points at the user's call
    expected_y, expected_idx = pool(x)
    np.testing.assert_array_equal(y.numpy(), expected_y.numpy())
    np.testing.assert_array_equal(idx.numpy(), expected_idx.numpy())
    with pytest.raises(RuntimeError, match=r"max_pool2d\(return_indices=True\)"):
        torch.compile(pool, fullgraph=True)(x)


def test_max_pool_indices_in_a_compiled_module_names_the_module():
    pool = torch.nn.MaxPool2d(2, return_indices=True)
    with pytest.warns(RuntimeWarning, match=r"MaxPool2d.*max_pool2d\(return_indices=True\)"):
        torch.compile(pool)(torch.randn(1, 2, 4, 4))


def test_numpy_warnings_stay_silent_under_a_users_error_filter():
    # pytest's ``filterwarnings = error`` or warnings.simplefilter("error") in a user's
    # program: PyTorch computes inf/nan silently, and so must every eager op
    torch_ref = pytest.importorskip("torch")
    x = torch.zeros(3, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = [x / 0, torch.log(x), torch.full((100,), 1e10).prod(), x.sqrt(),
                   F.softmax(torch.tensor([[-np.inf, -np.inf]]), 1)]
        results[3].sum().backward()
    xt = torch_ref.zeros(3, requires_grad=True)
    expected = [xt / 0, torch_ref.log(xt), torch_ref.full((100,), 1e10).prod(), xt.sqrt(),
                torch_ref.softmax(torch_ref.tensor([[-np.inf, -np.inf]]), 1)]
    expected[3].sum().backward()
    for got, want in zip(results + [x.grad], expected + [xt.grad]):
        np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
