"""Rearranging and combining tensors over existing views and primitives, so they trace
under ``@compile`` and take their gradients from what they are built of: ``roll`` (two
slices joined), ``rot90`` (flips and a transpose), ``meshgrid`` (expanded views),
``repeat_interleave`` (an expanded view, or ``index_select`` for per-element counts),
``take``, ``tensordot`` (permute, reshape, matmul), ``kron``, ``cdist`` and ``dist``.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._errors import ShapeError, describe
from .._tensor import Tensor, _concrete, _wrap_dim
from ..autograd.node import show_as
from .creation import from_numpy
from .indexing import index_select
from .linalg import matmul
from .math import abs, sqrt, where  # noqa: A004
from .reduce import amax, amin, sum
from .shape import cat, flip, narrow, transpose
from .sorting import on_device_of

__all__ = ["roll", "rot90", "meshgrid", "repeat_interleave", "take", "tensordot", "kron",
           "cdist", "dist"]


def _int_list(v) -> list[int]:
    return [int(v)] if isinstance(v, numbers.Integral) else [int(s) for s in v]


def roll(input: Tensor, shifts, dims=None) -> Tensor:  # noqa: A002
    """Shift elements along ``dims`` cyclically (without ``dims``: over the flattened tensor).

    >>> import tracegrad as torch
    >>> torch.roll(torch.tensor([1, 2, 3, 4]), 1)
    tensor([4, 1, 2, 3])
    """
    x = input
    shifts = _int_list(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise ShapeError(f"roll(): without dims, shifts must be one number, got {shifts}")
        return roll(x.reshape(-1), shifts, 0).reshape(tuple(x.shape))
    dims = _int_list(dims)
    if len(shifts) != len(dims):
        raise ShapeError(f"roll(): shifts {shifts} and dims {dims} must have the same length")
    for shift, dim in zip(shifts, dims):
        if x.ndim == 0:
            raise IndexError(f"roll(): a 0-d tensor has no dim {dim} (roll it without dims)")
        axis = _wrap_dim(dim, x.ndim, "roll")
        size = x.shape[axis] if x.ndim else 1
        if size == 0 or x.ndim == 0:
            continue
        k = shift % size
        if k:
            x = cat([narrow(x, axis, size - k, k), narrow(x, axis, 0, size - k)], axis)
    out = input.clone() if x is input else x
    show_as(out, "RollBackward0", (input,))
    return out


def rot90(input: Tensor, k: int = 1, dims=(0, 1)) -> Tensor:  # noqa: A002
    """Rotate by 90 degrees ``k`` times in the plane of ``dims``, from the first towards
    the second."""
    x = input
    dims = _int_list(dims)
    if len(dims) != 2 or x.ndim < 2:
        raise ShapeError(f"rot90(): expected two dims and an input of at least 2 dims, got "
                         f"dims {dims} and {describe(x)}")
    a, b = (_wrap_dim(d, x.ndim, "rot90") for d in dims)
    if a == b:
        raise ShapeError(f"rot90(): the two dims must differ, got {dims}")
    k = int(k) % 4
    if k == 1:
        return transpose(flip(x, b), a, b)
    if k == 2:
        return flip(x, a, b)
    if k == 3:
        return flip(transpose(x, a, b), b)
    return x.clone()


def meshgrid(*tensors, indexing: str | None = None) -> tuple:
    """Coordinate grids from 1-d tensors (``indexing='ij'``, the default, or ``'xy'``)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    indexing = "ij" if indexing is None else indexing
    if indexing not in ("ij", "xy"):
        raise ShapeError(f"meshgrid(): indexing must be 'ij' or 'xy', got {indexing!r}")
    for t in tensors:
        if t.ndim > 1:
            raise ShapeError(f"meshgrid(): expects 0-d or 1-d tensors, got {describe(t)}")
    flat = [t.reshape(-1) for t in tensors]
    swap = indexing == "xy" and len(flat) >= 2
    if swap:
        flat[0], flat[1] = flat[1], flat[0]
    shape = tuple(t.shape[0] for t in flat)
    grids = []
    for i, t in enumerate(flat):
        view = [1] * len(flat)
        view[i] = shape[i]
        grids.append(t.reshape(view).expand(*shape))
    if swap:   # 'xy': the ij grids of (b, a, ...), handed back as (a's, b's, ...)
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


def repeat_interleave(input, repeats=None, dim: int | None = None, *,  # noqa: A002
                      output_size: int | None = None) -> Tensor:
    """Repeat each element (each slice along ``dim``) ``repeats`` times in place.

    >>> import tracegrad as torch
    >>> torch.repeat_interleave(torch.tensor([1, 2]), 2)
    tensor([1, 1, 2, 2])
    """
    if repeats is None:   # repeat_interleave(counts): arange(len(counts)) repeated
        counts = _concrete(input._data, "repeat_interleave()")
        return from_numpy(np.repeat(np.arange(counts.shape[0], dtype=np.int64), counts))
    x = input
    if dim is None:
        x, dim = x.reshape(-1), 0
    axis = _wrap_dim(dim, x.ndim, "repeat_interleave")
    if x.ndim == 0:
        x, axis = x.reshape(1), 0
    size = x.shape[axis]
    if isinstance(repeats, Tensor) and repeats.numel() != 1:
        counts = _concrete(repeats._data, "repeat_interleave()").reshape(-1)
        if counts.shape[0] != size or (counts < 0).any():
            raise ShapeError(f"repeat_interleave(): repeats must be non-negative with one "
                             f"count per element of dim {axis} (size {size}), got "
                             f"{describe(repeats)}")
        idx = on_device_of(np.repeat(np.arange(size, dtype=np.int64), counts), x)
        return index_select(x, axis, idx)
    n = int(repeats)
    if n < 0:
        raise ShapeError(f"repeat_interleave(): repeats must be non-negative, got {n}")
    shape = list(x.shape)
    wide = x.unsqueeze(axis + 1).expand(*shape[:axis + 1], n, *shape[axis + 1:])
    shape[axis] = size * n
    return wide.reshape(tuple(shape))


def take(input: Tensor, index: Tensor) -> Tensor:  # noqa: A002
    """Elements of the flattened ``input`` at ``index`` (negative counts from the end),
    shaped like ``index``."""
    if index._data.dtype.kind not in "iu":
        raise ShapeError(f"take(): index must be an integer tensor, got {describe(index)}")
    n = input.numel()
    idx = _concrete(index._data, "take()")
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"take(): index out of range for a tensor of {n} elements "
                         f"(indices from {idx.min()} to {idx.max()})")
    flat = input.reshape(-1)
    wrapped = on_device_of(np.where(idx < 0, idx + n, idx).astype(np.int64), input)
    out = index_select(flat, 0, wrapped.reshape(-1)).reshape(tuple(index.shape))
    show_as(out, "TakeBackward0", (input,))
    return out


def tensordot(a: Tensor, b: Tensor, dims=2, out=None) -> Tensor:
    """Contract ``dims`` (a count: the last of ``a`` with the first of ``b``; or two lists
    of dims) by one matmul."""
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, numbers.Integral):
        if dims < 0 or dims > min(a.ndim, b.ndim):
            raise ShapeError(f"tensordot(): dims ({dims}) must be between 0 and the smaller "
                             f"rank of {describe(a)} and {describe(b)}")
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = _int_list(dims[0]), _int_list(dims[1])
        da = [_wrap_dim(d, a.ndim, "tensordot") for d in da]
        db = [_wrap_dim(d, b.ndim, "tensordot") for d in db]
    if len(da) != len(db) or any(a.shape[i] != b.shape[j] for i, j in zip(da, db)):
        raise ShapeError(f"tensordot(): contracted dims {da} of {describe(a)} and {db} of "
                         f"{describe(b)} must match in number and size")
    free_a = [i for i in range(a.ndim) if i not in da]
    free_b = [j for j in range(b.ndim) if j not in db]
    k = int(np.prod([a.shape[i] for i in da], dtype=np.int64))
    left = a.permute(*free_a, *da).reshape(-1, k)
    right = b.permute(*db, *free_b).reshape(k, -1)
    shape = tuple(a.shape[i] for i in free_a) + tuple(b.shape[j] for j in free_b)
    return matmul(left, right).reshape(shape)


def kron(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """Kronecker product: blocks ``input[i, j] * other`` (ranks padded with leading 1s)."""
    a, b = input, other
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + tuple(a.shape)
    sb = (1,) * (nd - b.ndim) + tuple(b.shape)
    wa = [s for d in sa for s in (d, 1)]
    wb = [s for d in sb for s in (1, d)]
    return (a.reshape(wa) * b.reshape(wb)).reshape(tuple(x * y for x, y in zip(sa, sb)))


def _pnorm(diff: Tensor, p: float, axis) -> Tensor:
    """The p-norm along ``axis``. p = 2 has a zero gradient at a zero distance (PyTorch's
    cdist and dist), where sqrt's own would be 0 / 0."""
    if p == 2:
        sq = sum(diff * diff, axis)
        zero = sq == 0
        return where(zero, 0.0, sqrt(where(zero, 1.0, sq)))
    if p == float("inf"):
        return amax(abs(diff), axis)
    if p == float("-inf"):
        return amin(abs(diff), axis)
    if p == 0:
        return sum((diff != 0).to(diff.dtype), axis)
    if p == 1:
        return sum(abs(diff), axis)
    mag = abs(diff)
    flat = mag == 0   # (p < 1: d|t|^p/dt is infinite at 0; PyTorch's gradient there is 0)
    total = sum(where(flat, 0.0, where(flat, 1.0, mag) ** p), axis)
    zero = total == 0
    return where(zero, 0.0, where(zero, 1.0, total) ** (1.0 / p))


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0,
          compute_mode: str = "use_mm_for_euclid_dist_if_necessary") -> Tensor:
    """Pairwise p-norm distances between the rows of ``x1`` (..., P, M) and ``x2``
    (..., R, M): shape (..., P, R)."""
    if x1.ndim < 2 or x2.ndim < 2 or x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(f"cdist(): expected inputs of at least 2 dims with the same last "
                         f"dim, got {describe(x1)} and {describe(x2)}")
    if x1._data.dtype.kind != "f" or x2._data.dtype.kind != "f":
        raise ShapeError(f"cdist(): only supports floating-point dtypes, got {describe(x1)} "
                         f"and {describe(x2)}")
    if p < 0:
        raise ShapeError(f"cdist(): p must be non-negative, got {p}")
    # NOTE: a direct difference, never ||a||^2 + ||b||^2 - 2ab (PyTorch's mm path for
    # more than 25 rows): that form cancels catastrophically for near points
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    out = _pnorm(diff, float(p), -1)
    show_as(out, "CdistBackward0", (x1, x2))
    return out


def dist(input: Tensor, other: Tensor, p: float = 2) -> Tensor:  # noqa: A002
    """The p-norm of ``input - other`` over all elements (a 0-d tensor)."""
    diff = (input - other).reshape(-1)
    out = _pnorm(diff, float(p), 0)
    show_as(out, "DistBackward0", (input, other))
    return out
