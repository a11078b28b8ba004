"""Reduction primitives: SUM, MAX, MIN, PROD over ``axes``; ARGMAX/ARGMIN; CUMSUM."""
from __future__ import annotations

import numpy as np

from ..codegen.ops import Op
from . import functions as F
from .registry import ShapeError, primitive, reads_none


def reduced_shape(shape: tuple, axes: tuple, keepdim: bool) -> tuple:
    if keepdim:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reduce_shape_for(name, empty_ok):
    def rule(x, axes, keepdim):
        shape = tuple(x.shape)
        if not empty_ok and any(shape[a] == 0 for a in axes):
            raise ShapeError(f"{name}: cannot reduce over an empty dimension of a tensor of "
                             f"shape {shape} (axes {axes}); there is no identity for {name}")
        return reduced_shape(shape, axes, keepdim), np.dtype(x.dtype)
    return rule


def _expand_back(g, node):
    """The reduced gradient, broadcast back over the reduced axes of the input."""
    x = node.inputs[0]
    axes, keepdim = node.attrs["axes"], node.attrs["keepdim"]
    if not keepdim:
        g = F.reshape(g, reduced_shape(tuple(x.shape), axes, True))
    return F.expand(g, tuple(x.shape))


def _sum_vjp(g, node):
    return (_expand_back(g, node),)


def _extremum_vjp(g, node):
    x = node.inputs[0]
    out = _output_keepdim(node)
    # NOTE: ties share the gradient evenly, as PyTorch's amax/amin do.
    mask = F.cast(F.eq(x, out), g._data.dtype)
    count = F.sum(mask, node.attrs["axes"], True)
    return (F.div(F.mul(_expand_back(g, node), mask), count),)


def _output_keepdim(node):
    """The forward output with the reduced axes kept as size 1, to broadcast against x."""
    out = node.output()
    if not node.attrs["keepdim"]:
        out = F.reshape(out, reduced_shape(tuple(node.inputs[0].shape), node.attrs["axes"], True))
    return out


def _prod_vjp(g, node):
    x = node.inputs[0]
    axes = node.attrs["axes"]
    # NOTE: d prod / d x_i is the product of the other elements. out / x_i gave NaN at a
    # zero (prod([0, 2]) had gradient [nan, 0]; PyTorch's is [2, 0]): with P the product
    # of a group's nonzero elements, it is P / x_i where the group has no zero, P at its
    # one zero (0 elsewhere), and 0 everywhere where it has two or more. (Differentiating
    # this again is exact where a group has no zero; at a zero the second derivative
    # misses the zero's own term, which PyTorch's double backward keeps.)
    is_zero = F.eq(x, 0)
    nonzero = F.where(is_zero, 1, x)
    p = F._call(Op.PROD, (nonzero,), {"axes": axes, "keepdim": True})
    zeros = F.sum(F.cast(is_zero, x._data.dtype), axes, True)
    local = F.where(F.eq(zeros, 0), F.div(p, nonzero),
                    F.where(F.eq(zeros, 1), F.where(is_zero, p, 0), 0))
    return (F.mul(_expand_back(g, node), local),)


@primitive(Op.SUM, shape=_reduce_shape_for("sum", True), needs=reads_none, vjp=_sum_vjp)
def sum_(x, axes, keepdim):
    # dtype=: NumPy widens int32 sums to int64; the shape rule (and codegen) keep the dtype.
    return np.sum(x, axis=axes, keepdims=keepdim, dtype=x.dtype)


@primitive(Op.MAX, shape=_reduce_shape_for("max", False), saves_output=True, vjp=_extremum_vjp)
def max_(x, axes, keepdim):
    return np.max(x, axis=axes, keepdims=keepdim)


@primitive(Op.MIN, shape=_reduce_shape_for("min", False), saves_output=True, vjp=_extremum_vjp)
def min_(x, axes, keepdim):
    return np.min(x, axis=axes, keepdims=keepdim)


@primitive(Op.PROD, shape=_reduce_shape_for("prod", True), vjp=_prod_vjp)
def prod(x, axes, keepdim):
    # The ufunc called from here, not np.prod: an overflow's RuntimeWarning then names this
    # module, which elementwise.py's filter silences as PyTorch is silent.
    return np.multiply.reduce(x, axis=axes, keepdims=keepdim, dtype=x.dtype)


def _arg_shape_for(name):
    def rule(x, axis, keepdim):
        shape = tuple(x.shape)
        if axis is None:
            if len(shape) and 0 in shape:
                raise ShapeError(f"{name}: expected a non-empty tensor, got shape {shape}")
            return ((1,) * len(shape) if keepdim else ()), np.dtype(np.int64)
        if shape[axis] == 0:
            raise ShapeError(f"{name}: cannot reduce over the empty dimension {axis} of shape {shape}")
        return reduced_shape(shape, (axis,), keepdim), np.dtype(np.int64)
    return rule


@primitive(Op.ARGMAX, shape=_arg_shape_for("argmax"))
def argmax(x, axis, keepdim):
    return np.argmax(x, axis=axis, keepdims=keepdim).astype(np.int64)


@primitive(Op.ARGMIN, shape=_arg_shape_for("argmin"))
def argmin(x, axis, keepdim):
    return np.argmin(x, axis=axis, keepdims=keepdim).astype(np.int64)


def _cumsum_vjp(g, node):
    axis = node.attrs["axis"]
    return (F.flip(F.cumsum(F.flip(g, axis), axis), axis),)


@primitive(Op.CUMSUM, shape=lambda x, axis: (tuple(x.shape), np.dtype(x.dtype)),
           needs=reads_none, vjp=_cumsum_vjp)
def cumsum(x, axis):
    return np.cumsum(x, axis=axis, dtype=x.dtype)
