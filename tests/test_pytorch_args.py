"""PyTorch's arguments: keyword names, out= with PyTorch's rules, and errors that name the
unsupported argument (tracegrad/_ops/pytorch_args.py)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracegrad as torch
from tracegrad._ops.pytorch_args import UnsupportedArgumentError, adapt
from tracegrad._ops.pytorch_signatures import SIGNATURES


def test_pytorch_keyword_names():
    a = torch.arange(6.0).reshape(2, 3)
    b = torch.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(torch.matmul(input=a, other=b).numpy(), a.numpy() @ b.numpy())
    np.testing.assert_array_equal(torch.add(input=a, other=a, alpha=2).numpy(), 3 * a.numpy())
    np.testing.assert_array_equal(torch.sub(a, other=1).numpy(), a.numpy() - 1)
    np.testing.assert_array_equal(torch.sum(input=a, dim=1, keepdim=True).numpy(),
                                  a.numpy().sum(1, keepdims=True))
    np.testing.assert_array_equal(torch.where(a > 2, input=a, other=-a).numpy(),
                                  np.where(a.numpy() > 2, a.numpy(), -a.numpy()))
    np.testing.assert_array_equal(torch.transpose(input=a, dim0=0, dim1=1).numpy(), a.numpy().T)
    np.testing.assert_array_equal(a.add(other=a).numpy(), 2 * a.numpy())
    np.testing.assert_array_equal(a.narrow(dimension=1, start=0, length=2).numpy(), a.numpy()[:, :2])
    assert torch.pow(input=torch.tensor(2.0), exponent=3).item() == 8.0


@pytest.mark.parametrize("call,expected", [
    (lambda out: torch.add(torch.ones(3), 2, out=out), np.full(3, 3.0)),
    (lambda out: torch.mul(torch.ones(3), torch.full((3,), 4.0), out=out), np.full(3, 4.0)),
    (lambda out: torch.matmul(torch.ones(3, 2), torch.ones(2, 3), out=out), np.full((3, 3), 2.0)),
    (lambda out: torch.cat([torch.ones(1), torch.zeros(2)], out=out), np.array([1.0, 0, 0])),
    (lambda out: torch.exp(torch.zeros(3), out=out), np.ones(3)),
    (lambda out: torch.zeros(2, 3, out=out), np.zeros((2, 3))),
    (lambda out: torch.arange(3, out=out), np.arange(3.0)),
])
def test_out_writes_into_the_given_tensor(call, expected):
    out = torch.empty(*expected.shape)
    storage = out.numpy()
    version = out._version[0]
    result = call(out)
    assert result is out and out.numpy() is storage and out._version[0] > version
    np.testing.assert_allclose(out.numpy(), expected)


def test_out_resizes_with_pytorchs_warning():
    out = torch.empty(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.add(torch.ones(2, 2), 1, out=out)  # empty: resized silently
    assert tuple(out.shape) == (2, 2) and out.tolist() == [[2.0, 2.0], [2.0, 2.0]]
    out = torch.zeros(3)
    with pytest.warns(UserWarning, match=r"An output with one or more elements was resized since "
                                         r"it had shape \[3\]"):
        torch.rand(2, 2, out=out)
    assert tuple(out.shape) == (2, 2)


def test_out_dtype_rules():
    out = torch.zeros(3, dtype=torch.float64)
    torch.add(torch.ones(3), 1, out=out)  # float32 result into float64: allowed
    assert out.dtype == torch.float64 and out.tolist() == [2.0, 2.0, 2.0]
    ints = torch.zeros(3, dtype=torch.int64)
    torch.add(torch.ones(3, dtype=torch.int32), 1, out=ints)
    assert ints.tolist() == [2, 2, 2]
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired "
                                           "output type Long"):
        torch.add(torch.ones(3), 1, out=ints)
    with pytest.raises(TypeError, match="argument 'out' must be Tensor, not list"):
        torch.add(torch.ones(3), 1, out=[0, 0, 0])


def test_out_refuses_autograd():
    x = torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"mul\(\): functions with out=\.\.\. arguments don't "
                                           r"support automatic differentiation"):
        torch.mul(x, 2, out=torch.empty(2))
    with torch.no_grad():
        out = torch.mul(x, 2, out=torch.empty(2))
    assert out.tolist() == [2.0, 2.0] and not out.requires_grad


def test_unsupported_pytorch_argument_names_the_feature():
    with pytest.raises(UnsupportedArgumentError,
                       match=r"tracegrad.rand_like\(\): tracegrad does not support the argument "
                             r"'generator' yet \(PyTorch's torch.rand_like\(input, \*, generator"):
        torch.rand_like(torch.ones(2), generator=torch.Generator())
    with pytest.raises(NotImplementedError, match="does not support the argument"):
        torch.rand_like(torch.ones(2), generator=torch.Generator())


def test_unknown_argument_says_pytorch_does_not_take_it_either():
    with pytest.raises(TypeError, match=r"tracegrad.add\(\): got an unexpected keyword argument "
                                        r"'alhpa'; PyTorch's torch.add\(input, other, \*, alpha, "
                                        r"out\) does not accept it either") as info:
        torch.add(torch.ones(2), 1, alhpa=2)
    assert "Did you mean" not in str(info.value)


def test_too_many_positional_arguments_show_pytorchs_signature():
    with pytest.raises(TypeError, match=r"tracegrad.add\(\): .*3 were given \(PyTorch's "
                                        r"signature: torch.add\(input, other"):
        torch.add(torch.ones(2), 1, 2)


def test_errors_inside_the_function_pass_through_unchanged():
    with pytest.raises(TypeError, match="unsupported operand"):
        torch.add(torch.ones(2), object())


def test_adapt_leaves_functions_that_cover_pytorchs_parameters_alone():
    # NumPy's names PyTorch accepts count among its parameters (test_probe_numpy_aliases)
    def softmax(input, dim, dtype=None, *, x=None, a=None, x1=None, axis=None):
        return input
    assert adapt(softmax, "torch.softmax") is softmax


def test_signature_table_is_generated_and_covers_common_names():
    for name in ("torch.add", "torch.matmul", "torch.sum", "torch.zeros", "torch.cat",
                 "Tensor.add", "Tensor.view"):
        assert name in SIGNATURES, name
    assert SIGNATURES["torch.add"] == [(("input", "other"), ("alpha", "out"))]


def test_internal_functions_stay_reachable():
    assert torch.add.__wrapped_pytorch__(torch.ones(1), torch.ones(1)).item() == 2.0
