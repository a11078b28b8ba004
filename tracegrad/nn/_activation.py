"""Activation functions as composites of tensor ops (no derivative rules of their own).

NOTE (branch-safe forms): ``where(c, a, b)`` passes a zero gradient into the branch it did
not pick, and zero times an infinite local derivative is NaN. So a branch that could
overflow (``exp`` of a large input) is evaluated on a clamped input.
"""
from __future__ import annotations

import math

from .._ops import math as M
from .._ops import reduce as R
from .._tensor import Tensor

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _inplace(x: Tensor, out: Tensor, inplace: bool) -> Tensor:
    if inplace:
        from .._ops.inplace import check_inplace, commit_inplace
        check_inplace(x, "activation(inplace=True)")
        return commit_inplace(x, lambda _old: out)
    return out


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """``max(x, 0)``; the gradient at 0 is 0, as in PyTorch."""
    return _inplace(input, M.where(input > 0, input, 0.0), inplace)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return _inplace(input, M.where(input > 0, input, input * negative_slope), inplace)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    neg = M.expm1(M.minimum(input, 0.0)) * alpha
    return _inplace(input, M.where(input > 0, input, neg), inplace)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    neg = M.expm1(M.minimum(input, 0.0)) * _SELU_ALPHA
    return _inplace(input, M.where(input > 0, input, neg) * _SELU_SCALE, inplace)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    neg = M.expm1(M.minimum(input, 0.0) / alpha) * alpha
    return _inplace(input, M.where(input > 0, input, neg), inplace)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """``x * Phi(x)``: exact through erf, or PyTorch's tanh approximation."""
    if approximate == "none":
        return input * (M.erf(input * _SQRT_HALF) + 1.0) * 0.5
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * _SQRT_2_OVER_PI
        return input * (M.tanh(inner) + 1.0) * 0.5
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return _inplace(input, input * M.sigmoid(input), inplace)


def _softplus_stable(x: Tensor) -> Tensor:
    # NOTE: log(1 + e^x) = max(x, 0) + log1p(e^-|x|): never overflows.
    return M.relu(x) + M.log1p(M.exp(-M.abs(x)))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta x)) / beta``, linear where ``beta x > threshold``."""
    bx = input * beta if beta != 1 else input
    soft = _softplus_stable(bx)
    if beta != 1:
        soft = soft / beta
    return M.where(bx > threshold, input, soft)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    return _inplace(input, input * M.tanh(softplus(input)), inplace)


def sigmoid(input: Tensor) -> Tensor:
    return M.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    return M.tanh(input)


def logsigmoid(input: Tensor) -> Tensor:
    return -_softplus_stable(-input)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    # NOTE: PyTorch's hardtanh gradient is zero at the ends (strict inequalities),
    # unlike clamp's; build it from where so both value and gradient match.
    inside = M.logical_and(input > min_val, input < max_val)
    out = M.where(inside, input, M.where(input <= min_val, min_val, max_val).to(input.dtype))
    return _inplace(input, out, inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    inside = M.logical_and(input > -3.0, input < 3.0)
    out = M.where(inside, input / 6.0 + 0.5, M.where(input <= -3.0, 0.0, 1.0).to(input.dtype))
    return _inplace(input, out, inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    # PyTorch's gradient: 0 below -3, 1 above 3, x/3 + 1/2 between (ends included).
    mid = input * (input + 3.0) / 6.0
    out = M.where(input <= -3.0, 0.0, M.where(input >= 3.0, input, mid))
    return _inplace(input, out, inplace)


def softsign(input: Tensor) -> Tensor:
    return input / (M.abs(input) + 1.0)


def tanhshrink(input: Tensor) -> Tensor:
    return input - M.tanh(input)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    return _inplace(input, M.where(input > threshold, input, value), inplace)


def _softmax_dim(ndim: int) -> int:
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim(input.ndim)
    return R.softmax(input, dim, dtype=dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim(input.ndim)
    return R.log_softmax(input, dim, dtype=dtype)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim(input.ndim)
    return R.softmax(-input, dim, dtype=dtype)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    a, b = input.chunk(2, dim)
    return a * M.sigmoid(b)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    w = weight
    if input.ndim >= 2 and weight.numel() > 1:
        w = weight.reshape((1, -1) + (1,) * (input.ndim - 2))
    return M.where(input > 0, input, input * w)
