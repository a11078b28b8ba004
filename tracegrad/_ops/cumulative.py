"""Running products, extremes and log-sums along a dim: ``cumprod``, ``cummax``,
``cummin``, ``logcumsumexp``; and ``diff``, the inverse of a running sum.

``cumprod`` and ``logcumsumexp`` compute their values with NumPy (NOTE (eager order) in
sorting.py: under compile they run eagerly) and their gradients in tensor code;
``cummax``/``cummin`` take their values with ``gather``; ``diff`` is slices and ``sub``,
so it traces.
"""
from __future__ import annotations

import numpy as np

from .._dtype import to_numpy_dtype
from .._errors import ShapeError, describe
from .._tensor import Tensor, _concrete, _wrap_dim
from ..autograd.function import Function
from ..autograd.node import show_as
from .indexing import gather
from .math import cast, exp, log, logical_xor, where
from .reduce import cumsum, values_indices
from .sorting import on_device_of
from .shape import cat, flip, narrow

__all__ = ["cumprod", "cummax", "cummin", "logcumsumexp", "diff"]


def _axis(x: Tensor, dim: int, op: str) -> int:
    axis = _wrap_dim(int(dim), x.ndim, op)   # (a 0-d tensor takes dim 0 or -1)
    return 0 if x.ndim == 0 else axis


def _reverse_cumsum(x: Tensor, axis: int) -> Tensor:
    return flip(cumsum(flip(x, axis), axis), axis)


class _Cumprod(Function):
    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        out = on_device_of(np.cumprod(_concrete(x._data, "cumprod()"), axis=axis), x)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        # NOTE: PyTorch's formula (cumprod_backward). Before a slice's first zero, x is
        # nonzero and d out_j / d x_k = out_j / x_k; at the first zero z the sum runs over
        # the products with x_z left out (a cumprod with x_z set to 1); after z every
        # product holds x_z = 0, so the gradient is 0.
        x, out = ctx.saved_tensors
        axis = ctx.axis
        zero = x == 0
        zeros_so_far = cumsum(zero, axis)
        before = zeros_so_far == 0
        first = zero & (zeros_so_far == 1)
        safe_x = where(before, x, 1)
        grad_before = _reverse_cumsum(grad * out, axis) / safe_x
        skipped = _Cumprod.apply(where(first, 1, x).detach(), axis)
        grad_first = _reverse_cumsum(grad * skipped, axis)
        return where(before, grad_before, where(first, grad_first, 0)), None


def cumprod(input: Tensor, dim: int, *, dtype=None) -> Tensor:  # noqa: A002
    """Running product along ``dim`` (integers and bools in int64, as PyTorch).

    >>> import tracegrad as torch
    >>> torch.cumprod(torch.tensor([1., 2., 3., 0., 5.]), 0)
    tensor([1., 2., 6., 0., 0.])
    """
    x = input
    if dtype is not None:
        x = cast(x, to_numpy_dtype(dtype))
    elif x._data.dtype.kind in "biu":
        x = cast(x, np.int64)
    axis = _axis(x, dim, "cumprod")
    if x.ndim == 0:
        return x * 1
    if not x.requires_grad:
        return on_device_of(np.cumprod(_concrete(x._data, "cumprod()"), axis=axis), x)
    out = _Cumprod.apply(x, axis)
    show_as(out, "CumprodBackward0", (x,))
    return out


def _cum_extreme(x: Tensor, dim: int, op: str, better) -> values_indices:
    axis = _axis(x, dim, op)
    data = _concrete(x._data, f"{op}()")
    if data.ndim == 0:
        return values_indices(x.clone(), on_device_of(np.zeros((), np.int64), x))
    best = better.accumulate(data, axis=axis)
    # NOTE: the index is the last position that reached the running extreme (ties pick
    # the later element, as PyTorch's >=); NaN sticks, and each new NaN takes the index.
    hit = data == best
    if data.dtype.kind == "f":
        hit |= np.isnan(data)
    shape = [1] * data.ndim
    shape[axis] = data.shape[axis]
    pos = np.where(hit, np.arange(data.shape[axis]).reshape(shape), -1)
    idx = on_device_of(np.maximum.accumulate(pos, axis=axis).astype(np.int64), x)
    values = gather(x, axis, idx)
    show_as(values, op.capitalize() + "Backward0", (x,))
    return values_indices(values, idx)


def cummax(input: Tensor, dim: int) -> values_indices:  # noqa: A002
    """Running maximum along ``dim`` and where it was reached."""
    return _cum_extreme(input, dim, "cummax", np.maximum)


def cummin(input: Tensor, dim: int) -> values_indices:  # noqa: A002
    return _cum_extreme(input, dim, "cummin", np.minimum)


def _logcumsumexp_np(data: np.ndarray, axis: int) -> np.ndarray:
    if not data.shape[axis]:
        return data.copy()
    with np.errstate(invalid="ignore"):   # (NaN in, NaN out, as PyTorch: no warning)
        return np.logaddexp.accumulate(data, axis=axis)


class _Logcumsumexp(Function):
    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        out = on_device_of(_logcumsumexp_np(_concrete(x._data, "logcumsumexp()"), axis), x)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        # NOTE: dx_k = sum_{j>=k} g_j exp(x_k - out_j), summed in log space (a reversed
        # logcumsumexp) for the positive and the negative part of g apart, so nothing
        # overflows: PyTorch's logcumsumexp_backward.
        x, out = ctx.saved_tensors
        axis = ctx.axis
        ninf = float("-inf")

        def part(g):
            logs = where(g > 0, log(where(g > 0, g, 1)) - out, ninf)
            return exp(x + flip(_Logcumsumexp.apply(flip(logs, axis).detach(), axis), axis))
        return part(grad) - part(-grad), None


def logcumsumexp(input: Tensor, dim: int) -> Tensor:  # noqa: A002
    """``log(cumsum(exp(x)))`` along ``dim``, without overflow."""
    x = input
    if x._data.dtype.kind != "f":
        raise ShapeError(f"logcumsumexp(): expected a floating point input, got {describe(x)}")
    axis = _axis(x, dim, "logcumsumexp")
    if x.ndim == 0:
        return x * 1
    out = _Logcumsumexp.apply(x, axis)
    show_as(out, "LogcumsumexpBackward0", (x,))
    return out


def diff(input: Tensor, n: int = 1, dim: int = -1, prepend: Tensor | None = None,  # noqa: A002
         append: Tensor | None = None) -> Tensor:
    """The ``n``-th forward difference along ``dim`` (bools: ``!=``, as PyTorch).

    >>> import tracegrad as torch
    >>> torch.diff(torch.tensor([1, 3, 6, 10]))
    tensor([2, 3, 4])
    """
    x = input
    if x.ndim == 0:
        raise ShapeError("diff(): expects input to be at least one-dimensional (got a 0-d "
                         f"tensor {describe(x)})")
    if int(n) < 0:
        raise ShapeError(f"diff(): order must be non-negative but got {n}")
    axis = _wrap_dim(int(dim), x.ndim, "diff")
    if int(n) == 0:   # PyTorch: the input as it is, prepend and append ignored
        return x
    parts = [p for p in (prepend, x, append) if p is not None]
    if len(parts) > 1:
        parts = [_along(p, x, axis) for p in parts]
        x = cat(parts, axis)
    for _ in range(int(n)):
        length = x.shape[axis]
        if length == 0:
            break
        hi, lo = narrow(x, axis, 1, length - 1), narrow(x, axis, 0, length - 1)
        x = logical_xor(hi, lo) if x._data.dtype.kind == "b" else hi - lo
    return x


def _along(p, x: Tensor, axis: int) -> Tensor:
    if not isinstance(p, Tensor) or p.ndim != x.ndim:
        raise ShapeError(f"diff(): prepend and append must be tensors with as many dims as "
                         f"the input {describe(x)}, got {describe(p)}")
    return p
