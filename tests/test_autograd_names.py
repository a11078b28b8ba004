"""Autograd graph introspection reads as PyTorch's: node names (``grad_fn.name()`` is a
method), ``next_functions`` with ``AccumulateGrad`` for leaves, and reflected operators
that list the tensor operand first. Expected names are PyTorch 2.x's."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch


def _names(node):
    return tuple(None if fn is None else fn.name() for fn, _ in node.next_functions)


@pytest.mark.parametrize("make,name", [
    (lambda x, y: x + y, "AddBackward0"),
    (lambda x, y: x - y, "SubBackward0"),
    (lambda x, y: x * y, "MulBackward0"),
    (lambda x, y: x / y, "DivBackward0"),
    (lambda x, y: x ** 2, "PowBackward0"),
    (lambda x, y: x ** y, "PowBackward1"),
    (lambda x, y: -x, "NegBackward0"),
    (lambda x, y: x.exp(), "ExpBackward0"),
    (lambda x, y: x.sin(), "SinBackward0"),
    (lambda x, y: x.tanh(), "TanhBackward0"),
    (lambda x, y: x.sigmoid(), "SigmoidBackward0"),
    (lambda x, y: x.sum(), "SumBackward0"),
    (lambda x, y: x.sum(0), "SumBackward1"),
    (lambda x, y: x.mean(), "MeanBackward0"),
    (lambda x, y: x.mean(1), "MeanBackward1"),
    (lambda x, y: x.relu(), "ReluBackward0"),
    (lambda x, y: x.softmax(-1), "SoftmaxBackward0"),
    (lambda x, y: x.log_softmax(-1), "LogSoftmaxBackward0"),
    (lambda x, y: x @ y.t(), "MmBackward0"),
    (lambda x, y: x.permute(1, 0), "PermuteBackward0"),
    (lambda x, y: x.view(6), "ViewBackward0"),
    (lambda x, y: x.double(), "ToCopyBackward0"),
    (lambda x, y: x.reciprocal(), "ReciprocalBackward0"),
    (lambda x, y: torch.cat([x, y]), "CatBackward0"),
])
def test_node_names_match_pytorch(make, name):
    x = torch.rand(2, 3, requires_grad=True)
    y = torch.rand(2, 3, requires_grad=True)
    out = make(x, y)
    assert out.grad_fn.name() == name
    assert repr(out.grad_fn).startswith(f"<{name} object at 0x")
    assert f"grad_fn=<{name}>" in repr(out)


def test_leaves_show_accumulate_grad_and_constants_show_none():
    x = torch.rand(3, requires_grad=True)
    y = x * 2
    (acc, k), (none, j) = y.grad_fn.next_functions
    assert acc.name() == "torch::autograd::AccumulateGrad" and acc.variable is x and k == 0
    assert "AccumulateGrad" in repr(acc) and acc.next_functions == ()
    assert none is None and j == 0


@pytest.mark.parametrize("op", [lambda c, b: c * b, lambda c, b: c + b])
def test_reflected_operators_list_the_tensor_first(op):
    b = torch.rand(3, requires_grad=True).sin()
    y = op(2, b)
    assert _names(y.grad_fn) == ("SinBackward0", None)
    np.testing.assert_allclose(y.detach().numpy(), op(2, b.detach().numpy()))


def test_reflected_operators_keep_python_scalar_types():
    b = torch.tensor([1, 2])
    assert (2 * b).dtype == torch.int64 and (2.5 * b).dtype == torch.float32
    assert (1 + b).tolist() == [2, 3]


def test_composites_read_as_one_node():
    x = torch.rand(2, 3, requires_grad=True)
    h = x.sin()
    assert _names(h.mean().grad_fn) == ("SinBackward0",)
    assert _names(h.relu().grad_fn) == ("SinBackward0",)
    assert _names(x.softmax(0).grad_fn) == ("torch::autograd::AccumulateGrad",)
    # the graph the engine walks is unchanged: gradients still flow through the parts
    x.sin().mean().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.cos(x.detach().numpy()) / 6, rtol=1e-6)


def test_walking_a_graph_back_to_its_leaves():
    w = torch.rand(3, 2, requires_grad=True)
    x = torch.rand(4, 3)
    loss = (x @ w).relu().mean()
    seen, stack = [], [loss.grad_fn]
    while stack:
        fn = stack.pop()
        seen.append(fn.name())
        stack.extend(f for f, _ in fn.next_functions if f is not None)
    assert seen == ["MeanBackward0", "ReluBackward0", "MmBackward0",
                    "torch::autograd::AccumulateGrad"]
