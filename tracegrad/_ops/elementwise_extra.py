"""More of PyTorch's elementwise functions, each a composite of traceable ops (so each
compiles and differentiates like its parts): ``isclose``, ``nansum``, ``fmax``/``fmin``,
``logit``, ``sinc``, ``ldexp``, ``float_power``, ``heaviside``, ``logaddexp2``.

The ones with no composite (special functions, integer number theory, bit-level float
ops) are in ``special_eager.py``."""
from __future__ import annotations

import math as _math

import numpy as np

from .math import _describe as describe
from .._tensor import Tensor
from . import math as M
from . import division as D
from . import reduce
from .creation import tensor


def _same_dtype(op: str, a: Tensor, b: Tensor) -> None:
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.dtype != b.dtype:
        raise TypeError(f"{op}: input and other must have the same dtype, got "
                        f"{describe(a)} and {describe(b)}")


def _both_tensors(a, b):
    """After ``promote``: a Python number beside a tensor as a 0-d tensor of its dtype."""
    if not isinstance(a, Tensor):
        a = tensor(a, dtype=b.dtype)
    if not isinstance(b, Tensor):
        b = tensor(b, dtype=a.dtype)
    return a, b


def isclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    """``|input - other| <= atol + rtol * |other|``, elementwise; equal infinities are close.

    >>> import tracegrad as torch
    >>> torch.isclose(torch.tensor([1.0, float("inf")]), torch.tensor([1.0 + 1e-7, float("inf")]))
    tensor([True, True])
    """
    input, other = _both_tensors(M.as_tensor_operand(input, "isclose"),
                                 M.as_tensor_operand(other, "isclose"))
    _same_dtype("isclose", input, other)
    if rtol < 0 or atol < 0:
        raise ValueError(f"isclose: rtol and atol must be non-negative, got rtol={rtol}, "
                         f"atol={atol}")
    close = M.eq(input, other)
    if equal_nan:
        close = M.logical_or(close, M.logical_and(M.isnan(input), M.isnan(other)))
    kind = np.dtype(input._data.dtype).kind if isinstance(input, Tensor) else "f"
    if kind == "b":
        return close
    if kind != "f":  # integers: PyTorch compares in the default float dtype
        input, other = M._to_float(input), M._to_float(other)
    actual = M.abs(M.sub(input, other))
    allowed = M.add(M.abs(M.mul(other, rtol)), atol)
    return M.no_grad_result(M.logical_or(close, M.logical_and(M.isfinite(actual),
                                                              M.le(actual, allowed))))


def nansum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """``sum`` with NaNs counted as zero (their gradient is zero too)."""
    if np.dtype(input._data.dtype).kind == "f":
        input = M.where(M.isnan(input), 0.0, input)
    return reduce.sum(input, dim, keepdim, dtype=dtype)


def _nan_ignoring(op: str, input, other, pick_input):
    """``fmax``/``fmin``: the input where ``pick_input`` (or other is NaN), else other. The
    gradient goes where the value came from, ties to ``input``, as in PyTorch."""
    a, b = _both_tensors(*M.promote(input, other, op))
    if np.dtype(a._data.dtype).kind != "f":
        return M.where(pick_input(a, b), a, b)
    return M.where(M.logical_or(pick_input(a, b), M.isnan(b)), a, b)


def fmax(input, other) -> Tensor:
    """The larger of each pair, ignoring NaN unless both are NaN.

    >>> import tracegrad as torch
    >>> torch.fmax(torch.tensor([1.0, float("nan")]), torch.tensor([float("nan"), 2.0]))
    tensor([1., 2.])
    """
    return _nan_ignoring("fmax", input, other, M.ge)


def fmin(input, other) -> Tensor:
    return _nan_ignoring("fmin", input, other, M.le)


def logit(input: Tensor, eps: float | None = None) -> Tensor:
    """``log(p / (1 - p))``, with ``p`` clamped to ``[eps, 1 - eps]`` when eps is given."""
    p = M._to_float(M.as_tensor_operand(input, "logit"))
    if eps is not None:
        p = M.clamp(p, eps, 1.0 - eps)
    return M.log(D.div(p, M.sub(1.0, p)))


def sinc(input: Tensor) -> Tensor:
    """``sin(pi x) / (pi x)``, 1 at 0 (with gradient 0 there, not NaN)."""
    x = M._to_float(M.as_tensor_operand(input, "sinc"))
    zero = M.eq(x, 0)
    # NOTE: the quotient is taken of a tensor without zeros, so its gradient has no NaN
    px = M.mul(M.where(zero, 1.0, x), _math.pi)
    return M.where(zero, 1.0, D.div(M.sin(px), px))


def ldexp(input, other) -> Tensor:
    """``input * 2 ** other``, always a float result."""
    x = M._to_float(M.as_tensor_operand(input, "ldexp"))
    other = M.as_tensor_operand(other, "ldexp")
    if not isinstance(other, Tensor):
        return M.mul(x, 2.0 ** other)
    # NOTE: 2 ** other in floats: PyTorch's gradient of ldexp(x, int tensor) comes out 0
    # where other < 0 (its 2 ** -2 is an integer power, 0); the value and this gradient
    # are 2 ** other.
    return M.mul(x, M.pow(2.0, M._to_float(other)))


def float_power(input, exponent) -> Tensor:
    """``pow`` in float64, whatever the operands' dtypes."""
    def f64(v):
        v = M.as_tensor_operand(v, "float_power")
        return M.cast(v, np.float64) if isinstance(v, Tensor) else float(v)
    return M.pow(f64(input), f64(exponent))


def heaviside(input: Tensor, values) -> Tensor:
    """0 where input < 0, ``values`` where input == 0, 1 where input > 0. PyTorch has no
    gradient for it; neither does this."""
    values = M.as_tensor_operand(values, "heaviside")
    if isinstance(values, Tensor):
        _same_dtype_heaviside(input, values)
    step = M.cast(M.gt(input, 0), input._data.dtype)
    return M.no_grad_result(M.where(M.eq(input, 0), values, step).detach())


def _same_dtype_heaviside(input: Tensor, values: Tensor) -> None:
    if input.dtype != values.dtype:
        raise TypeError(f"heaviside: input and values must have the same dtype, got "
                        f"{describe(input)} and {describe(values)}")


def logaddexp2(input, other) -> Tensor:
    """``log2(2 ** input + 2 ** other)`` without overflow."""
    a, b = M.promote(input, other, "logaddexp2")
    a, b = M._to_float(a), M._to_float(b)
    hi = M.maximum(a, b)
    tail = M.log1p(M.exp2(M.neg(M.abs(M.sub(a, b)))))
    # NOTE: equal operands give a + 1 directly: -inf with -inf would make inf - inf = NaN
    # and the gradient splits evenly between them, as PyTorch's
    tie = M.add(M.mul(M.add(a, b), 0.5), 1.0)
    return M.where(M.eq(a, b), tie, M.add(hi, M.mul(tail, 1.0 / _math.log(2.0))))


def _shift_operands(op: str, input, other):
    a, b = M.promote(input, other, op)
    for v in (a, b):
        kind = v._data.dtype.kind if isinstance(v, Tensor) else ("f" if isinstance(v, float) else "i")
        if kind not in "iu":   # (bool tensors too: PyTorch's shifts take integers only)
            raise NotImplementedError(f'"{op}_cpu" not implemented for operands '
                                      f"{describe(input)} and {describe(other)}")
    return a, b


def bitwise_left_shift(input, other) -> Tensor:
    """``input << other`` for integers: ``input * 2**other`` (bits shifted out are lost).

    >>> import tracegrad as torch
    >>> (torch.tensor([1, -3]) << 2).tolist()
    [4, -12]
    """
    a, b = _shift_operands("lshift", input, other)
    return M.mul(a, M.pow(2, b) if isinstance(b, Tensor) else 2 ** b)


def bitwise_right_shift(input, other) -> Tensor:
    """``input >> other`` for integers: an arithmetic shift, ``floor(input / 2**other)``.

    >>> import tracegrad as torch
    >>> (torch.tensor([5, -5]) >> 1).tolist()
    [2, -3]
    """
    a, b = _shift_operands("rshift", input, other)
    return D.floor_divide(a, M.pow(2, b) if isinstance(b, Tensor) else 2 ** b)


METHOD_FORMS = {"__lshift__": bitwise_left_shift, "__rshift__": bitwise_right_shift,
                "__rlshift__": lambda x, other: bitwise_left_shift(other, x),
                "__rrshift__": lambda x, other: bitwise_right_shift(other, x)}


__all__ = ["isclose", "nansum", "fmax", "fmin", "logit", "sinc", "ldexp", "float_power",
           "heaviside", "logaddexp2", "bitwise_left_shift", "bitwise_right_shift"]
