"""``torch.nn.grad``: the gradients of a convolution with respect to its input and its
weight, as functions. Each is the vector-Jacobian product of the (linear) convolution,
taken by autograd with ``create_graph=True``, so it is differentiable again and equals
what ``backward`` computes."""
from __future__ import annotations

from .._ops.creation import zeros
from .._tensor import Tensor
from ..autograd.engine import grad as _grad
from ..autograd.grad_mode import enable_grad
from . import _conv


def _input_grad(conv, input_size, weight, grad_output, stride, padding, dilation, groups):
    with enable_grad():
        x = zeros(*tuple(input_size), dtype=grad_output.dtype, requires_grad=True)
        out = conv(x, weight, None, stride, padding, dilation, groups)
        return _grad(out, x, grad_output, create_graph=True)[0]


def _weight_grad(conv, input, weight_size, grad_output, stride, padding, dilation, groups):
    with enable_grad():
        w = zeros(*tuple(weight_size), dtype=grad_output.dtype, requires_grad=True)
        out = conv(input, w, None, stride, padding, dilation, groups)
        return _grad(out, w, grad_output, create_graph=True)[0]


def conv1d_input(input_size, weight: Tensor, grad_output: Tensor, stride=1, padding=0,
                 dilation=1, groups=1) -> Tensor:
    """The gradient of ``conv1d`` with respect to an input of ``input_size``."""
    return _input_grad(_conv.conv1d, input_size, weight, grad_output, stride, padding,
                       dilation, groups)


def conv1d_weight(input: Tensor, weight_size, grad_output: Tensor, stride=1, padding=0,
                  dilation=1, groups=1) -> Tensor:
    return _weight_grad(_conv.conv1d, input, weight_size, grad_output, stride, padding,
                        dilation, groups)


def conv2d_input(input_size, weight: Tensor, grad_output: Tensor, stride=1, padding=0,
                 dilation=1, groups=1) -> Tensor:
    """The gradient of ``conv2d`` with respect to an input of ``input_size``.

    >>> import tracegrad as torch
    >>> conv2d_input((1, 1, 3, 3), torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2)).tolist()
    [[[[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]]]
    """
    return _input_grad(_conv.conv2d, input_size, weight, grad_output, stride, padding,
                       dilation, groups)


def conv2d_weight(input: Tensor, weight_size, grad_output: Tensor, stride=1, padding=0,
                  dilation=1, groups=1) -> Tensor:
    """The gradient of ``conv2d`` with respect to a weight of ``weight_size``."""
    return _weight_grad(_conv.conv2d, input, weight_size, grad_output, stride, padding,
                        dilation, groups)


def conv3d_input(input_size, weight: Tensor, grad_output: Tensor, stride=1, padding=0,
                 dilation=1, groups=1) -> Tensor:
    return _input_grad(_conv.conv3d, input_size, weight, grad_output, stride, padding,
                       dilation, groups)


def conv3d_weight(input: Tensor, weight_size, grad_output: Tensor, stride=1, padding=0,
                  dilation=1, groups=1) -> Tensor:
    return _weight_grad(_conv.conv3d, input, weight_size, grad_output, stride, padding,
                        dilation, groups)
