"""Activation functions as composites of tensor ops (no derivative rules of their own).

NOTE (branch-safe forms): ``where(c, a, b)`` passes a zero gradient into the branch it did
not pick, and zero times an infinite local derivative is NaN. So a branch that could
overflow (``exp`` of a large input) is evaluated on a clamped input.

NOTE (NaN passes through): every comparison with NaN is False, so a piecewise activation
tests the condition whose False branch is ``x`` itself (``where(x <= 0, 0, x)``, not
``where(x > 0, x, 0)``): NaN then lands in the identity branch, keeps its value and takes
that branch's gradient, as PyTorch's kernels do (``relu(nan)`` is nan with gradient 1).
Where PyTorch gives NaN a zero gradient instead (hardsigmoid), the NaN value reaches the
output through a detached branch.
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
    """``max(x, 0)``; the gradient at 0 is 0 and NaN stays NaN, as in PyTorch.

    >>> import tracegrad as torch
    >>> relu(torch.tensor([-1.0, 2.0, float("nan")]))
    tensor([ 0.,  2., nan])
    """
    return _inplace(input, M.relu(input), inplace)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return _inplace(input, M.where(input > 0, input, input * negative_slope), inplace)


def _nonpositive(x: Tensor) -> Tensor:
    """``x`` where ``x <= 0``, else 0: the input of a negative branch, held away from NaN
    and +inf so that the zero gradient ``where`` sends it stays zero (branch-safe forms)."""
    return M.where(x <= 0, x, 0.0)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    # PyTorch's gradient at 0 is alpha (the negative branch includes 0).
    neg = M.expm1(_nonpositive(input)) * alpha
    return _inplace(input, M.where(input <= 0, neg, input), inplace)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    neg = M.expm1(_nonpositive(input)) * _SELU_ALPHA
    return _inplace(input, M.where(input <= 0, neg, input) * _SELU_SCALE, inplace)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    neg = M.expm1(_nonpositive(input) / alpha) * alpha
    return _inplace(input, M.where(input <= 0, neg, input), inplace)


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
    # NOTE: PyTorch's hardtanh gradient is zero at the ends (unlike clamp's) and one at
    # NaN, whose value passes through: NaN fails both tests and takes the ``input`` branch.
    out = M.where(input <= min_val, min_val, M.where(input >= max_val, max_val, input))
    return _inplace(input, out, inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    # PyTorch's gradient is 1/6 strictly inside (-3, 3) and 0 elsewhere, NaN included;
    # NaN's value reaches the output through the detached outside branch.
    inside = M.logical_and(input > -3.0, input < 3.0)
    mid = input / 6.0 + 0.5
    outside = M.where(input <= -3.0, 0.0, M.where(input >= 3.0, 1.0, mid.detach()))
    return _inplace(input, M.where(inside, mid, outside), inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    # PyTorch: value x * relu6(x + 3) / 6 (so -inf gives -inf * 0 = nan); gradient 0 up to
    # -3, x/3 + 1/2 on (-3, 3), 1 from 3 on and at NaN. The middle branch is evaluated on
    # an input held inside (-3, 3) so that an infinite input sends no NaN gradient there.
    inside = M.logical_and(input > -3.0, input < 3.0)
    held = M.where(inside, input, 0.0)
    mid = held * (held + 3.0) / 6.0
    out = M.where(input <= -3.0, input * 0.0, M.where(input < 3.0, mid, input))
    return _inplace(input, out, inplace)


def softsign(input: Tensor) -> Tensor:
    return input / (M.abs(input) + 1.0)


def tanhshrink(input: Tensor) -> Tensor:
    return input - M.tanh(input)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``x`` where ``x > threshold``, else ``value``; NaN stays NaN (PyTorch)."""
    out = M.where(input <= threshold, value, input)
    return _inplace(input, out if out.dtype == input.dtype else out.to(input.dtype), inplace)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0 (NaN stays)."""
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    shifted = M.where(input > 0, input - lambd, input + lambd)
    return M.where(M.abs(input) <= lambd, 0.0, shifted)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x`` where ``|x| > lambd``, else 0 (NaN stays)."""
    return M.where(M.abs(input) <= lambd, 0.0, input)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
          training: bool = False, inplace: bool = False) -> Tensor:
    """Leaky ReLU whose negative slope is drawn from ``U(lower, upper)`` per element in
    training, and is ``(lower + upper) / 2`` in evaluation."""
    if lower > upper:
        raise RuntimeError(f"rrelu: lower bound must be less than or equal to upper bound, "
                           f"got lower={lower}, upper={upper}")
    if not training:
        return leaky_relu(input, (lower + upper) / 2.0, inplace)
    from .._ops.creation import rand
    slope = rand(*input.shape, dtype=input.dtype) * (upper - lower) + lower
    return _inplace(input, M.where(input >= 0, input, input * slope), inplace)


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
    if dtype is None:
        R.check_softmax_dtype(input, "softmax")  # before negating: -bool raises otherwise
    return R.softmax(-input, dim, dtype=dtype)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    a, b = input.chunk(2, dim)
    return a * M.sigmoid(b)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    w = weight
    if input.ndim >= 2 and weight.numel() > 1:
        w = weight.reshape((1, -1) + (1,) * (input.ndim - 2))
    return M.where(input > 0, input, input * w)
