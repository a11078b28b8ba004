"""Elementwise composites: ``logaddexp``, ``logaddexp2``, ``hypot``, ``copysign``,
``xlogy``, ``nan_to_num``; and NaN-skipping or paired reductions: ``nansum``,
``nanmean``, ``aminmax``. All are written over existing primitives, so they trace under
``@compile`` and take their gradients from the primitives they use.
"""
from __future__ import annotations

import math as _math
from collections import namedtuple

import numpy as np

from .._dtype import get_default_dtype, to_numpy_dtype
from .._errors import ShapeError, describe
from .._tensor import Tensor
from ..autograd.node import show_as
from .creation import tensor
from .math import (abs, as_tensor_operand, cast, exp, isfinite, isinf, isnan, log, log1p, maximum,  # noqa: A004
                   minimum, promote, sqrt, where)
from .reduce import amax, amin, normalize_axes, sum

__all__ = ["logaddexp", "logaddexp2", "hypot", "copysign", "xlogy", "nan_to_num",
           "nansum", "nanmean", "aminmax"]

aminmax_result = namedtuple("aminmax", ["min", "max"])


def _float_pair(a, b, op: str) -> tuple[Tensor, Tensor]:
    """Both operands as tensors of their promoted dtype, integers and bools as the default
    float (PyTorch's rule for these ops); a Python number takes the tensor's dtype."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise ShapeError(f"{op}(): expected at least one tensor, got {describe(a)} and "
                         f"{describe(b)}")
    a, b = promote(as_tensor_operand(a, op), as_tensor_operand(b, op), op)
    like = a if isinstance(a, Tensor) else b
    dtype = like._data.dtype if like._data.dtype.kind == "f" else get_default_dtype().np
    a, b = (cast(t, dtype) if isinstance(t, Tensor) else tensor(t, dtype=like.dtype if
            like._data.dtype.kind == "f" else get_default_dtype()) for t in (a, b))
    return a, b


def logaddexp(input, other) -> Tensor:  # noqa: A002
    """``log(exp(a) + exp(b))`` without overflow.

    >>> import tracegrad as torch
    >>> torch.logaddexp(torch.tensor([0.0]), torch.tensor([0.0]))
    tensor([0.6931])
    """
    a, b = _float_pair(input, other, "logaddexp")
    return _shown(_log_add(a, b, exp, 1.0), "LogaddexpBackward0", a, b)


def _shown(out: Tensor, name: str, *inputs: Tensor) -> Tensor:
    """PyTorch's node name on the composite's last node (``HypotBackward0``)."""
    show_as(out, name, inputs)
    return out


def logaddexp2(input, other) -> Tensor:  # noqa: A002
    """``log2(2**a + 2**b)`` without overflow."""
    a, b = _float_pair(input, other, "logaddexp2")
    out = _log_add(a, b, lambda t: exp(t * _math.log(2.0)), 1.0 / _math.log(2.0))
    return _shown(out, "Logaddexp2Backward0", a, b)


def _log_add(a: Tensor, b: Tensor, expf, scale: float) -> Tensor:
    # NOTE: max + log1p(exp(-|a - b|)); where both are the same infinity, a - b is NaN,
    # and the answer is that infinity (PyTorch: logaddexp(-inf, -inf) = -inf).
    top = maximum(a, b)
    formula = top + log1p(expf(-abs(a - b))) * scale
    return where(isinf(top) & (a == b), top, formula)


def hypot(input, other) -> Tensor:  # noqa: A002
    """``sqrt(a**2 + b**2)``, scaled by the larger magnitude so squares never overflow."""
    a, b = _float_pair(input, other, "hypot")
    big, small = maximum(abs(a), abs(b)), minimum(abs(a), abs(b))
    ratio = small / where(big == 0, 1, big)
    scaled = big * sqrt(1 + ratio * ratio)
    return _shown(where(isinf(a) | isinf(b), float("inf"), scaled), "HypotBackward0", a, b)


def copysign(input, other) -> Tensor:  # noqa: A002
    """``|a|`` with the sign of ``b`` (of ``-0.0`` too); the result is floating point."""
    a, b = _float_pair(input, other, "copysign")
    # NOTE: 1 / b tells -0.0 (-inf) from 0.0 (+inf), which b < 0 cannot
    negative = (b < 0) | ((b == 0) & ((1 / where(b == 0, b, 1)) < 0))
    return _shown(where(negative, -abs(a), abs(a)), "CopysignBackward0", a, b)


def xlogy(input, other) -> Tensor:  # noqa: A002
    """``x * log(y)``, 0 where ``x == 0`` unless ``y`` is NaN."""
    x, y = _float_pair(input, other, "xlogy")
    zero = (x == 0) & ~isnan(y)
    log_y = log(y)
    # NOTE: where x == 0 the value is +0 but the gradient in x is still log(y), as PyTorch's
    # (0 where log(y) is not finite, where PyTorch says inf or NaN)
    at_zero = x * where(isfinite(log_y), log_y, 0.0) + 0.0
    return _shown(where(zero, at_zero, x * log_y), "XlogyBackward0", x, y)


def nan_to_num(input: Tensor, nan: float = 0.0, posinf: float | None = None,  # noqa: A002
               neginf: float | None = None) -> Tensor:
    """NaN, +inf and -inf replaced by ``nan``, ``posinf`` and ``neginf`` (by default 0 and
    the dtype's largest and lowest finite values)."""
    x = input
    if x._data.dtype.kind != "f":
        return x * 1 if x._data.dtype.kind != "b" else x.clone()
    info = np.finfo(x._data.dtype)
    posinf = float(info.max) if posinf is None else posinf
    neginf = float(info.min) if neginf is None else neginf
    out = where(isnan(x), nan, x)
    out = where(x == float("inf"), posinf, out)
    return _shown(where(x == float("-inf"), neginf, out), "NanToNumBackward0", x)


def nansum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    x = input if dtype is None else cast(input, to_numpy_dtype(dtype))
    if x._data.dtype.kind == "f":
        x = where(isnan(x), 0.0, x)
    return sum(x, dim, keepdim)


def nanmean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """The mean of the non-NaN elements (NaN where a slice has none)."""
    x = input if dtype is None else cast(input, to_numpy_dtype(dtype))
    if x._data.dtype.kind != "f":
        raise ShapeError(f"nanmean(): expected a floating point input, got {describe(x)} "
                         f"(pass dtype= to compute in a float dtype)")
    keep = ~isnan(x)
    count = sum(keep, dim, keepdim)
    return sum(where(keep, x, 0.0), dim, keepdim) / cast(count, x._data.dtype)


def aminmax(input: Tensor, *, dim: int | None = None, keepdim: bool = False) -> aminmax_result:  # noqa: A002
    """(min, max) over all elements or along ``dim``."""
    x = input
    if x._data.size == 0 and (dim is None or x.ndim == 0 or x.shape[dim] == 0):
        raise ShapeError(f"aminmax(): cannot compute on an empty tensor {describe(x)} (or an "
                         f"empty dim {dim}) without an identity")
    if dim is None:
        axes = normalize_axes(None, x.ndim, "aminmax")
        lo, hi = amin(x, axes, keepdim), amax(x, axes, keepdim)
        if not keepdim:
            return aminmax_result(lo.reshape(()), hi.reshape(()))
        return aminmax_result(lo, hi)
    return aminmax_result(amin(x, dim, keepdim), amax(x, dim, keepdim))
