"""Reductions with ``dim`` (int, tuple or None) and ``keepdim``; composites (mean, var,
std, logsumexp, norm, softmax and log_softmax) are written over SUM/MAX primitives."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .._dispatch import apply
from .._dtype import get_default_dtype, to_numpy_dtype
from .._primitives import PRIMITIVES as P
from .._primitives.reduce import reduced_shape
from .._tensor import Tensor, _wrap_dim
from ..autograd.grad_mode import state as _grad_state
from ..autograd.node import show_as
from ..codegen.ops import Op
from .dtype_names import scalar_type_name
from .._numpy_aliases import NOT_GIVEN, from_numpy_names
from .creation import tensor
from .math import cast, exp, log, maximum, minimum, no_grad_result, sqrt, where

values_indices = namedtuple("values_indices", ["values", "indices"])


def normalize_axes(dim, ndim: int, op: str) -> tuple[int, ...]:
    """``dim`` (None, an int or a sequence) as sorted non-negative axes. An empty sequence
    means every dim, as in PyTorch (``x.sum(dim=())`` is ``x.sum()``: a 1-d ``x.sum(
    dim=tuple(range(1, x.ndim)))`` reduces it whole); it used to reduce nothing."""
    if dim is None or isinstance(dim, (tuple, list)) and len(dim) == 0:
        return tuple(range(ndim))
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    axes = [_wrap_dim(int(d), ndim, op) for d in dims]
    if len(set(axes)) != len(axes):
        repeated = next(a for a in axes if axes.count(a) > 1)
        raise RuntimeError(f"{op}: dim {repeated} appears multiple times in the list of dims "
                           f"{tuple(dims)} (tensor of {ndim} dims)")
    if ndim == 0:
        return ()
    return tuple(sorted(axes))


def _reduce(op: Op, x: Tensor, dim, keepdim: bool, name: str) -> Tensor:
    axes = normalize_axes(dim, x._data.ndim, name)
    if not axes and x._data.ndim > 0 and dim is not None and not isinstance(dim, (tuple, list)):
        return x
    return apply(P[op], (x,), {"axes": axes, "keepdim": bool(keepdim)})


def sum(x: Tensor, dim=None, keepdim: bool = False, *, dtype=None,
        axis=NOT_GIVEN, keepdims=NOT_GIVEN) -> Tensor:
    if axis is not NOT_GIVEN or keepdims is not NOT_GIVEN:
        dim, keepdim = from_numpy_names("sum", dim, keepdim, axis, keepdims)
    if dtype is not None:
        x = cast(x, to_numpy_dtype(dtype))
    elif x._data.dtype.kind in "biu":
        x = cast(x, np.int64)  # PyTorch sums integers and bools in int64
    return _reduce(Op.SUM, x, dim, keepdim, "sum")


def _count(x: Tensor, axes) -> int:
    n = 1
    for a in axes:
        n *= x._data.shape[a]
    return n


def mean(x: Tensor, dim=None, keepdim: bool = False, *, dtype=None,
         axis=NOT_GIVEN, keepdims=NOT_GIVEN) -> Tensor:
    if axis is not NOT_GIVEN or keepdims is not NOT_GIVEN:
        dim, keepdim = from_numpy_names("mean", dim, keepdim, axis, keepdims)
    if dtype is not None:
        x = cast(x, to_numpy_dtype(dtype))
    if x._data.dtype.kind != "f":
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either "
                           f"a floating point or complex dtype. Got: {x.dtype}")
    axes = normalize_axes(dim, x._data.ndim, "mean")
    n = _count(x, axes)
    total = apply(P[Op.SUM], (x,), {"axes": axes, "keepdim": bool(keepdim)})
    # 1 / n, not 1.0 / n: float / int reads a compile guard trace's symbolic size as a
    # plain int, int / int lets it say 1/s0 (NOTE in compiler/symint.py); the same value
    out = total * (1 / n) if n else total / 0.0
    show_as(out, "MeanBackward0" if dim is None else "MeanBackward1", (x,))
    return out


def prod(x: Tensor, dim=None, keepdim: bool = False, *, dtype=None,
         axis=NOT_GIVEN, keepdims=NOT_GIVEN) -> Tensor:
    if axis is not NOT_GIVEN or keepdims is not NOT_GIVEN:
        dim, keepdim = from_numpy_names("prod", dim, keepdim, axis, keepdims)
    if dtype is not None:
        x = cast(x, to_numpy_dtype(dtype))
    elif x._data.dtype.kind in "biu":
        x = cast(x, np.int64)
    return _reduce(Op.PROD, x, dim, keepdim, "prod")


def amax(x: Tensor, dim=(), keepdim: bool = False, *, axis=NOT_GIVEN, keepdims=NOT_GIVEN) -> Tensor:
    if axis is not NOT_GIVEN or keepdims is not NOT_GIVEN:
        dim, keepdim = from_numpy_names("amax", dim, keepdim, axis, keepdims, ())
    return _reduce(Op.MAX, x, None if dim == () else dim, keepdim, "amax")


def amin(x: Tensor, dim=(), keepdim: bool = False, *, axis=NOT_GIVEN, keepdims=NOT_GIVEN) -> Tensor:
    if axis is not NOT_GIVEN or keepdims is not NOT_GIVEN:
        dim, keepdim = from_numpy_names("amin", dim, keepdim, axis, keepdims, ())
    return _reduce(Op.MIN, x, None if dim == () else dim, keepdim, "amin")


def _arg(op: Op, x: Tensor, dim, keepdim, name):
    axis = None if dim is None else _wrap_dim(dim, x._data.ndim, name)
    if x._data.ndim == 0:
        axis = None
    return no_grad_result(apply(P[op], (x,), {"axis": axis, "keepdim": bool(keepdim)}))


def _no_bool_arg(x: Tensor, name: str) -> None:
    if x._data.dtype.kind == "b":
        raise RuntimeError(f"{name}(): does not support bool input (shape {tuple(x.shape)})")


def argmax(x: Tensor, dim=None, keepdim: bool = False, *,
           axis=NOT_GIVEN, keepdims=NOT_GIVEN) -> Tensor:
    if axis is not NOT_GIVEN or keepdims is not NOT_GIVEN:
        dim, keepdim = from_numpy_names("argmax", dim, keepdim, axis, keepdims)
    _no_bool_arg(x, "argmax")
    return _arg(Op.ARGMAX, x, dim, keepdim, "argmax")


def argmin(x: Tensor, dim=None, keepdim: bool = False, *,
           axis=NOT_GIVEN, keepdims=NOT_GIVEN) -> Tensor:
    if axis is not NOT_GIVEN or keepdims is not NOT_GIVEN:
        dim, keepdim = from_numpy_names("argmin", dim, keepdim, axis, keepdims)
    _no_bool_arg(x, "argmin")
    return _arg(Op.ARGMIN, x, dim, keepdim, "argmin")


def _max_min(op, arg_op, x, dim, keepdim, other, name):
    if isinstance(dim, Tensor) and other is None:
        other, dim = dim, None
    if other is not None:
        return (maximum if op is Op.MAX else minimum)(x, other)
    if dim is None:
        return _reduce(op, x, None, False, name)
    if x._requires_grad and _grad_state.enabled and x._data.ndim > 0:
        # NOTE: the values read at the indices, so the gradient goes to the one element the
        # index names, as PyTorch's max(x, dim) backward; MAX's own rule splits it between
        # tied elements (right for max(x) and amax, which PyTorch splits too)
        d = _wrap_dim(dim, x._data.ndim, name)
        at = _arg(arg_op, x, d, True, name)
        values = apply(P[Op.GATHER], (x, at), {"dim": d})
        if not keepdim:
            values, at = values.squeeze(d), at.squeeze(d)
        return values_indices(values, at)
    values = _reduce(op, x, dim, keepdim, name)
    indices = _arg(arg_op, x, dim, keepdim, name)
    return values_indices(values, indices)


def max(x: Tensor, dim=None, keepdim: bool = False, *, other=None,
        axis=NOT_GIVEN, keepdims=NOT_GIVEN):
    """``max(x)`` is the largest element; ``max(x, dim)`` is (values, indices)."""
    if axis is not NOT_GIVEN or keepdims is not NOT_GIVEN:
        dim, keepdim = from_numpy_names("max", dim, keepdim, axis, keepdims)
    return _max_min(Op.MAX, Op.ARGMAX, x, dim, keepdim, other, "max")


def min(x: Tensor, dim=None, keepdim: bool = False, *, other=None,
        axis=NOT_GIVEN, keepdims=NOT_GIVEN):
    if axis is not NOT_GIVEN or keepdims is not NOT_GIVEN:
        dim, keepdim = from_numpy_names("min", dim, keepdim, axis, keepdims)
    return _max_min(Op.MIN, Op.ARGMIN, x, dim, keepdim, other, "min")


def var(x: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction=None, axis=NOT_GIVEN, keepdims=NOT_GIVEN) -> Tensor:
    if axis is not NOT_GIVEN or keepdims is not NOT_GIVEN:
        dim, keepdim = from_numpy_names("var", dim, keepdim, axis, keepdims)
    if isinstance(unbiased, (int, tuple, list)) and not isinstance(unbiased, bool):
        dim, unbiased = unbiased, None  # var(x, dim) positional
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    axes = normalize_axes(dim, x._data.ndim, "var")
    n = _count(x, axes)
    centered = x - mean(x, axes, keepdim=True)
    ss = apply(P[Op.SUM], (centered * centered,), {"axes": axes, "keepdim": bool(keepdim)})
    denom = n - correction
    # times 1 / denom, as mean: a compile guard trace's symbolic size then says 1/(s0 - 1)
    # (float() of it is an escape, NOTE in compiler/symint.py); within an ulp of ss / denom
    return ss * (1 / denom) if denom > 0 else ss / 0.0


def std(x: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction=None, axis=NOT_GIVEN, keepdims=NOT_GIVEN) -> Tensor:
    if axis is not NOT_GIVEN or keepdims is not NOT_GIVEN:
        dim, keepdim = from_numpy_names("std", dim, keepdim, axis, keepdims)
    return sqrt(var(x, dim, unbiased, keepdim, correction=correction))


def var_mean(x, dim=None, unbiased=None, keepdim=False, *, correction=None,
             axis=NOT_GIVEN, keepdims=NOT_GIVEN):
    if axis is not NOT_GIVEN or keepdims is not NOT_GIVEN:
        dim, keepdim = from_numpy_names("var_mean", dim, keepdim, axis, keepdims)
    return var(x, dim, unbiased, keepdim, correction=correction), mean(x, dim, keepdim)


def std_mean(x, dim=None, unbiased=None, keepdim=False, *, correction=None,
             axis=NOT_GIVEN, keepdims=NOT_GIVEN):
    if axis is not NOT_GIVEN or keepdims is not NOT_GIVEN:
        dim, keepdim = from_numpy_names("std_mean", dim, keepdim, axis, keepdims)
    return std(x, dim, unbiased, keepdim, correction=correction), mean(x, dim, keepdim)


def logsumexp(x: Tensor, dim=None, keepdim: bool = False, *,
              axis=NOT_GIVEN, keepdims=NOT_GIVEN) -> Tensor:
    if axis is not NOT_GIVEN or keepdims is not NOT_GIVEN:
        dim, keepdim = from_numpy_names("logsumexp", dim, keepdim, axis, keepdims)
    axes = normalize_axes(dim, x._data.ndim, "logsumexp")
    if x._data.dtype.kind != "f":   # PyTorch's: integers and bools in the default float
        x = cast(x, get_default_dtype().np)
    if x._data.size == 0:   # log(0) = -inf over an empty dim, as PyTorch (amax has none)
        return log(sum(exp(x), axes, keepdim))
    # NOTE: subtract the (detached) max so exp never overflows; it cancels exactly.
    m = amax(x, axes, keepdim=True).detach()
    m = where(m.abs() == float("inf"), 0.0, m)
    s = log(sum(exp(x - m), axes, keepdim=True)) + m
    return s if keepdim else s.reshape(tuple(d for i, d in enumerate(x.shape) if i not in axes))


def check_softmax_dtype(x: Tensor, name: str) -> None:
    if x._data.dtype.kind != "f":
        # NOTE: NotImplementedError subclasses RuntimeError, as PyTorch's error does.
        raise NotImplementedError(f'"{name}" not implemented for '
                                  f"'{scalar_type_name(x._data.dtype)}' (input of shape "
                                  f"{tuple(x.shape)}; pass dtype= to compute in a float dtype)")


def softmax(x: Tensor, dim: int = -1, dtype=None, *, axis=NOT_GIVEN) -> Tensor:
    if axis is not NOT_GIVEN:
        dim, _ = from_numpy_names("softmax", dim, False, axis, NOT_GIVEN, -1)
    if dtype is not None:
        x = cast(x, to_numpy_dtype(dtype))
    check_softmax_dtype(x, "softmax")
    if 0 in tuple(x.shape):   # nothing to normalise (amax over an empty dim raised)
        return x * 1.0
    e = exp(x - amax(x, dim, keepdim=True).detach())
    out = e / sum(e, dim, keepdim=True)
    show_as(out, "SoftmaxBackward0", (x,))
    return out


def log_softmax(x: Tensor, dim: int = -1, dtype=None, *, axis=NOT_GIVEN) -> Tensor:
    if axis is not NOT_GIVEN:
        dim, _ = from_numpy_names("log_softmax", dim, False, axis, NOT_GIVEN, -1)
    if dtype is not None:
        x = cast(x, to_numpy_dtype(dtype))
    check_softmax_dtype(x, "log_softmax")
    if 0 in tuple(x.shape):   # nothing to normalise (amax over an empty dim raised)
        return x * 1.0
    shifted = x - amax(x, dim, keepdim=True).detach()
    out = shifted - log(sum(exp(shifted), dim, keepdim=True))
    show_as(out, "LogSoftmaxBackward0", (x,))
    return out


def norm(x: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    if dtype is not None:
        x = cast(x, to_numpy_dtype(dtype))
    if p in ("fro", 2, 2.0, None):
        return _root_with_zero_gradient_at_zero(sum(x * x, dim, keepdim), sqrt)
    if p == float("inf"):
        return amax(x.abs(), () if dim is None else dim, keepdim)
    if p == float("-inf"):
        return amin(x.abs(), () if dim is None else dim, keepdim)
    if p in (1, 1.0):
        return sum(x.abs(), dim, keepdim)
    if p == 0:
        return sum((x != 0).to(x.dtype), dim, keepdim)
    return _root_with_zero_gradient_at_zero(sum(x.abs() ** p, dim, keepdim),
                                            lambda s: s ** (1.0 / p))


def _root_with_zero_gradient_at_zero(s: Tensor, root) -> Tensor:
    """``root(s)`` (s >= 0) whose gradient is 0 where s is 0, PyTorch's subgradient for a
    norm of zeros; the root's own derivative there is infinite, and times the 0 that
    d s / d x is there it gave NaN (``torch.norm(zeros * x).backward()``)."""
    if not (s._requires_grad and _grad_state.enabled):
        return root(s)
    zero = s == 0
    return where(zero, 0.0, root(where(zero, 1.0, s)))


def _empty_reduced(x: Tensor, dim, keepdim: bool, identity, name: str) -> Tensor:
    """``x`` (with no elements) reduced over ``dim``: ``identity`` in the result's shape."""
    axes = normalize_axes(dim, x._data.ndim, name)
    return tensor(np.full(reduced_shape(tuple(x.shape), axes, keepdim), identity,
                          dtype=x._data.dtype))


def all(x: Tensor, dim=None, keepdim: bool = False, *,
        axis=NOT_GIVEN, keepdims=NOT_GIVEN) -> Tensor:
    if axis is not NOT_GIVEN or keepdims is not NOT_GIVEN:
        dim, keepdim = from_numpy_names("all", dim, keepdim, axis, keepdims)
    b = cast(x, np.bool_)
    if b._data.size == 0 and dim is None:
        return tensor(True)
    if isinstance(dim, (tuple, list)) and not dim:
        return b   # PyTorch's all(dim=()) reduces nothing (sum(dim=()) reduces everything)
    if b._data.size == 0:   # (the MIN primitive has no identity for an empty dim)
        return _empty_reduced(b, dim, keepdim, True, "all")
    return _reduce(Op.MIN, b, dim, keepdim, "all")


def any(x: Tensor, dim=None, keepdim: bool = False, *,
        axis=NOT_GIVEN, keepdims=NOT_GIVEN) -> Tensor:
    if axis is not NOT_GIVEN or keepdims is not NOT_GIVEN:
        dim, keepdim = from_numpy_names("any", dim, keepdim, axis, keepdims)
    b = cast(x, np.bool_)
    if b._data.size == 0 and dim is None:
        return tensor(False)
    if isinstance(dim, (tuple, list)) and not dim:
        return b   # PyTorch's any(dim=()) reduces nothing (sum(dim=()) reduces everything)
    if b._data.size == 0:   # (the MAX primitive has no identity for an empty dim)
        return _empty_reduced(b, dim, keepdim, False, "any")
    return _reduce(Op.MAX, b, dim, keepdim, "any")


def cumsum(x: Tensor, dim: int = NOT_GIVEN, *, dtype=None, axis=NOT_GIVEN) -> Tensor:
    if axis is not NOT_GIVEN or dim is NOT_GIVEN:
        dim, _ = from_numpy_names("cumsum", dim, False, axis, NOT_GIVEN, NOT_GIVEN)
    if dtype is not None:
        x = cast(x, to_numpy_dtype(dtype))
    elif x._data.dtype.kind in "biu":
        x = cast(x, np.int64)
    if x._data.ndim == 0:   # a 0-d tensor sums to itself, 0-d (NumPy's cumsum gave (1,))
        _wrap_dim(dim, 0, "cumsum")
        return x * 1
    return apply(P[Op.CUMSUM], (x,), {"axis": _wrap_dim(dim, x._data.ndim, "cumsum")})


def sum_to(g: Tensor, shape: tuple) -> Tensor:
    """Sum ``g`` down to ``shape``, undoing NumPy broadcasting (leading and size-1 dims)."""
    gshape = tuple(g.shape)
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and gshape[lead + i] != 1)
    out = apply(P[Op.SUM], (g,), {"axes": axes, "keepdim": True}) if axes else g
    return out.reshape(shape)


def count_nonzero(x: Tensor, dim=None, *, axis=NOT_GIVEN) -> Tensor:
    if axis is not NOT_GIVEN:
        dim, _ = from_numpy_names("count_nonzero", dim, False, axis, NOT_GIVEN)
    return sum(x != 0, dim)


__all__ = ["sum", "mean", "prod", "amax", "amin", "argmax", "argmin", "max", "min", "var",
           "std", "var_mean", "std_mean", "logsumexp", "softmax", "log_softmax", "norm",
           "all", "any", "cumsum", "sum_to", "count_nonzero"]
