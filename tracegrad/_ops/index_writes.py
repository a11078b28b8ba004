"""Out-of-place indexed writes PyTorch has beside ``index_add``/``scatter``:
``index_copy``, ``index_fill``, ``masked_scatter``, ``put``, ``scatter_reduce``.

All but scatter_reduce's ``prod``/``amax``/``amin`` are the INDEX_PUT / SCATTER_ADD
primitives with ``where``: they trace and differentiate like those. The three reductions
with no primitive run in NumPy (NOTE (eager special functions) in special_eager.py) with
PyTorch's gradients.
"""
from __future__ import annotations

import numpy as np

from .._dispatch import apply, is_tracing
from .._errors import ShapeError
from .math import _describe as describe
from .._tensor import Tensor
from ..autograd.function import Function, once_differentiable
from . import division as D
from . import math as M
from . import reduce, shape
from .creation import from_numpy, tensor, zeros_like
from .indexing import PRIM_INDEX_PUT, TENSOR, _index_tensor, _wrap_dim, scatter_add


def _contiguous(a, dtype=None) -> np.ndarray:
    """A C-contiguous copy; unlike np.ascontiguousarray it keeps 0-d arrays 0-d."""
    return np.array(a, dtype=dtype, order="C")


def _vector_index(op: str, index: Tensor, size: int, allow_negative: bool) -> Tensor:
    index = _index_tensor(index, None)
    if index.ndim > 1:
        raise ShapeError(f"{op}: index must be 0-d or 1-d, got {describe(index)}")
    if not is_tracing() and index.numel():
        lo = -size if allow_negative else 0
        bad = index._data[(index._data < lo) | (index._data >= size)]
        if bad.size:
            raise IndexError(f"{op}: index {int(bad[0])} is out of bounds for a dimension "
                             f"of size {size}")
    index = shape.reshape(index, (-1,))
    if allow_negative:
        index = M.where(M.lt(index, 0), M.add(index, size), index)
    return index


def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """``input`` with its slices ``index[i]`` along ``dim`` replaced by ``source``'s i-th.

    >>> import tracegrad as torch
    >>> torch.zeros(3, 2).index_copy(0, torch.tensor([2, 0]), torch.ones(2, 2))
    tensor([[1., 1.],
            [0., 0.],
            [1., 1.]])
    """
    d = _wrap_dim(dim, max(input.ndim, 1), "index_copy")
    if input.ndim == 0:
        return index_copy(input.reshape(1), 0, index, source.reshape(-1)).reshape(())
    index = _vector_index("index_copy", index, input.shape[d], allow_negative=False)
    expected = tuple(input.shape[:d]) + (index.shape[0],) + tuple(input.shape[d + 1:])
    if tuple(source.shape) != expected and not (source.ndim == 0 and index.shape[0] == 1
                                                and input.ndim == 1):
        raise ShapeError(f"index_copy: source {describe(source)} does not fit input "
                         f"{describe(input)} with {index.shape[0]} indices along dim {dim}: "
                         f"expected shape {expected}")
    if source.dtype != input.dtype:
        raise TypeError(f"index_copy: source {describe(source)} and input {describe(input)} "
                        f"must have the same dtype")
    spec = (slice(None),) * d + (TENSOR,)
    return apply(PRIM_INDEX_PUT, (input, source.reshape(expected), index),
                 {"spec": spec, "accumulate": False})


def index_fill(input: Tensor, dim: int, index: Tensor, value) -> Tensor:
    """``input`` with its slices ``index`` along ``dim`` set to the scalar ``value``."""
    if input.ndim == 0:
        return index_fill(input.reshape(1), 0, index, value).reshape(())
    d = _wrap_dim(dim, input.ndim, "index_fill")
    index = _vector_index("index_fill", index, input.shape[d], allow_negative=True)
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ShapeError(f"index_fill: value must be a 0-d tensor, got {describe(value)}")
        value = M.cast(value, input._data.dtype)
    else:
        value = tensor(value, dtype=input.dtype)
    spec = (slice(None),) * d + (TENSOR,)
    return apply(PRIM_INDEX_PUT, (input, value, index), {"spec": spec, "accumulate": False})


def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """``input`` with the places where ``mask`` is True filled, in order, from ``source``."""
    if mask._data.dtype != np.bool_:
        raise TypeError(f"masked_scatter: mask must be a bool tensor, got {describe(mask)}")
    if source.dtype != input.dtype:
        raise TypeError(f"masked_scatter: source {describe(source)} and input "
                        f"{describe(input)} must have the same dtype")
    try:
        out_shape = np.broadcast_shapes(tuple(input.shape), tuple(mask.shape))
    except ValueError:
        raise ShapeError(f"masked_scatter: mask {describe(mask)} does not broadcast with "
                         f"input {describe(input)}") from None
    if out_shape != tuple(input.shape):
        raise ShapeError(f"masked_scatter: mask {describe(mask)} must broadcast to input "
                         f"{describe(input)}")
    m = shape.expand(mask, out_shape)
    flat_source = shape.reshape(source, (-1,))
    n = flat_source.shape[0]
    if not is_tracing() and int(m._data.sum()) > n:
        raise ShapeError(f"masked_scatter: mask {describe(mask)} has {int(m._data.sum())} "
                         f"True values but source {describe(source)} only {n} elements")
    if n == 0:
        return M.where(m, zeros_like(input), input)
    # the k-th True place reads source[k]; the other places read source[0], unused
    k = M.sub(reduce.cumsum(shape.reshape(m, (-1,)), 0), 1)
    # NOTE: clamped so that a trace (which cannot check the count) never reads past source
    k = M.clamp(k, 0, n - 1)
    taken = shape.reshape(flat_source[k], out_shape)
    return M.where(m, taken, input)


def put(input: Tensor, index: Tensor, source: Tensor, accumulate: bool = False) -> Tensor:
    """``input`` seen as 1-D, with ``source``'s elements written (or added) at ``index``."""
    if source.dtype != input.dtype:
        raise TypeError(f"put: source {describe(source)} and input {describe(input)} must "
                        f"have the same dtype")
    index = _index_tensor(index, None)
    if index.numel() != source.numel():
        raise ShapeError(f"put: index {describe(index)} and source {describe(source)} must "
                         f"have the same number of elements")
    flat_index = _vector_index("put", shape.reshape(index, (-1,)), input.numel(), True)
    flat = shape.reshape(input, (-1,))
    out = apply(PRIM_INDEX_PUT, (flat, shape.reshape(source, (-1,)), flat_index),
                {"spec": (TENSOR,), "accumulate": bool(accumulate)})
    return shape.reshape(out, tuple(input.shape))


def _scatter_count(input: Tensor, dim: int, index: Tensor, dtype) -> Tensor:
    ones = M.cast(M.eq(index, index), dtype)
    return scatter_add(M.cast(zeros_like(input), dtype), dim, index, ones)


_REDUCES = ("sum", "prod", "mean", "amax", "amin")


def scatter_reduce(input: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str,
                   *, include_self: bool = True) -> Tensor:
    """``input`` with ``src[i][j]`` reduced into ``out[index[i][j]][j]`` (dim 0) by
    ``reduce``: "sum", "prod", "mean" (floor division for integers), "amax" or "amin"."""
    if reduce not in _REDUCES:
        raise ValueError(f"scatter_reduce: reduce must be one of {_REDUCES}, got {reduce!r}")
    if src.dtype != input.dtype:
        raise TypeError(f"scatter_reduce: src {describe(src)} and input {describe(input)} "
                        f"must have the same dtype")
    d = _wrap_dim(dim, max(input.ndim, 1), "scatter_reduce")
    index = _index_tensor(index, None)
    if index.ndim != input.ndim or index.ndim != src.ndim or any(
            index.shape[i] > src.shape[i] or (i != d and index.shape[i] > input.shape[i])
            for i in range(index.ndim)):
        raise ShapeError(f"scatter_reduce: index {describe(index)} must have input "
                         f"{describe(input)}'s and src {describe(src)}'s number of dims and "
                         f"be no larger than src, nor than input outside dim {dim}")
    if tuple(index.shape) != tuple(src.shape):
        src = src[tuple(slice(0, n) for n in index.shape)]
    if reduce in ("sum", "mean"):
        touched = M.gt(_scatter_count(input, d, index, np.int64), 0)
        base = input if include_self else M.where(touched, zeros_like(input), input)
        total = scatter_add(base, d, index, src)
        if reduce == "sum":
            return total
        count = _scatter_count(input, d, index, input._data.dtype)
        if include_self:
            count = M.add(count, 1)
        count = M.where(M.eq(count, 0), 1, count)
        if input._data.dtype.kind == "f":
            return D.div(total, count)
        return D.div(total, count, rounding_mode="floor")
    return _NumpyScatterReduce.apply(input, src, d, index, reduce, include_self)


def _numpy_scatter(x: np.ndarray, src: np.ndarray, dim: int, index: np.ndarray, reduce: str,
                   include_self: bool):
    ufunc = {"prod": np.multiply, "amax": np.maximum, "amin": np.minimum}[reduce]
    out = x.copy()
    places = list(np.indices(index.shape, sparse=True))
    places[dim] = index
    places = tuple(np.broadcast_to(p, index.shape) for p in places)
    if not include_self:
        fill = {"prod": 1, "amax": -np.inf, "amin": np.inf}[reduce]
        if x.dtype.kind in "iu":
            info = np.iinfo(x.dtype)
            fill = {"prod": 1, "amax": info.min, "amin": info.max}[reduce]
        elif x.dtype == np.bool_:
            fill = {"prod": True, "amax": False, "amin": True}[reduce]
        out[places] = fill
    ufunc.at(out, places, src)
    return out, places


class _NumpyScatterReduce(Function):
    @staticmethod
    def forward(ctx, input, src, dim, index, reduce, include_self):
        x, s, idx = input.detach().numpy(), src.detach().numpy(), index.detach().numpy()
        out, places = _numpy_scatter(x, s, dim, idx, reduce, include_self)
        ctx.args = (x, s, out, places, reduce, include_self)
        return from_numpy(_contiguous(out))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, s, out, places, reduce, include_self = ctx.args
        g = grad.detach().numpy()
        touched = np.zeros(x.shape, dtype=bool)
        touched[places] = True
        if reduce == "prod":
            gx, gs = _prod_grads(x, s, out, places, g, include_self, touched)
        else:
            # ties share the gradient evenly, as in PyTorch
            hit_x = (x == out) & (include_self | ~touched)
            hit_s = s == out[places]
            count = hit_x.astype(g.dtype)
            np.add.at(count, places, hit_s.astype(g.dtype))
            share = g / np.where(count == 0, 1, count)
            gx = np.where(hit_x, share, 0)
            gs = np.where(hit_s, share[places], 0)
        return (from_numpy(_contiguous(gx, dtype=x.dtype)),
                from_numpy(_contiguous(gs, dtype=s.dtype)), None, None, None, None)


def _prod_grads(x, s, out, places, g, include_self, touched):
    """d out / d each factor = the product of the other factors, exactly with zeros: the
    product of the nonzero factors and the count of zeros per target."""
    zeros = np.zeros(x.shape, dtype=np.int64)
    nonzero_prod = np.where(include_self & (x != 0) | ~touched, x, 1).astype(x.dtype)
    zeros += (include_self & (x == 0) & touched)
    np.add.at(zeros, places, (s == 0).astype(np.int64))
    np.multiply.at(nonzero_prod, places, np.where(s == 0, 1, s))

    def others(v, nz, zc):
        return np.where(zc == 0, nz / np.where(v == 0, 1, v),
                        np.where((zc == 1) & (v == 0), nz, 0))
    gx = np.where(touched, others(x, nonzero_prod, zeros) if include_self else 0, 1) * g
    gs = others(s, nonzero_prod[places], zeros[places]) * g[places]
    return gx, gs


__all__ = ["index_copy", "index_fill", "masked_scatter", "put", "scatter_reduce"]
