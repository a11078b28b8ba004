"""Searching and counting by value: ``searchsorted``, ``bucketize``, ``isin``,
``bincount``; and ``quantile``/``nanquantile``, read from a sort.

The results depend on the values, so they come from NumPy on concrete data (NOTE (eager
order) in sorting.py: under compile these run eagerly). ``quantile``'s values are
``gather`` and ``lerp`` of the input, so its gradient flows to the two neighbours of
each quantile, as PyTorch's.
"""
from __future__ import annotations

import numpy as np

from .._errors import ShapeError, describe
from .._tensor import Tensor, _concrete, _wrap_dim
from .indexing import gather
from .sorting import on_device_of, stable_order

__all__ = ["searchsorted", "bucketize", "isin", "bincount", "quantile", "nanquantile"]


def _array(v, op: str) -> np.ndarray:
    return _concrete(v._data, f"{op}()") if isinstance(v, Tensor) else np.asarray(v)


def _positions(found: np.ndarray, out_int32: bool, like: Tensor) -> Tensor:
    return on_device_of(np.asarray(found, np.int32 if out_int32 else np.int64), like)


def searchsorted(sorted_sequence: Tensor, input, *, out_int32: bool = False,  # noqa: A002
                 right: bool = False, side: str | None = None, sorter: Tensor | None = None):
    """Where ``input`` would go in each (last-dim) row of ``sorted_sequence`` to keep it
    sorted; ``right=True`` (``side='right'``) goes after equal values.

    >>> import tracegrad as torch
    >>> torch.searchsorted(torch.tensor([1, 3, 5]), torch.tensor([3, 6]))
    tensor([1, 3])
    """
    if side is not None:
        if side not in ("left", "right") or (right and side == "left"):
            raise ShapeError(f"searchsorted(): side must be 'left' or 'right' and agree with "
                             f"right={right}, got {side!r}")
        right = side == "right"
    seq = _array(sorted_sequence, "searchsorted")
    values = _array(input, "searchsorted")
    if sorter is not None:
        seq = np.take_along_axis(seq, _array(sorter, "searchsorted").astype(np.int64), -1)
    how = "right" if right else "left"
    if seq.ndim <= 1:
        return _positions(np.searchsorted(seq.reshape(-1), values, side=how), out_int32,
                          sorted_sequence)
    if seq.shape[:-1] != values.shape[:-1]:
        raise ShapeError(f"searchsorted(): the boundaries {describe(seq)} and the input "
                         f"{describe(values)} must have the same leading dims")
    rows_s = seq.reshape(-1, seq.shape[-1])
    rows_v = values.reshape(-1, values.shape[-1])
    found = np.stack([np.searchsorted(s, v, side=how) for s, v in zip(rows_s, rows_v)])
    return _positions(found.reshape(values.shape), out_int32, sorted_sequence)


def bucketize(input, boundaries: Tensor, *, out_int32: bool = False,  # noqa: A002
              right: bool = False) -> Tensor:
    """The bucket of each element among 1-d ``boundaries``: ``right=False`` puts
    ``boundaries[i-1] < x <= boundaries[i]`` in bucket ``i`` (searchsorted's left side)."""
    if boundaries.ndim != 1:
        raise ShapeError(f"bucketize(): boundaries must be 1-d, got {describe(boundaries)}")
    found = searchsorted(boundaries, input, out_int32=out_int32, right=right)
    return found if isinstance(input, Tensor) else found.reshape(())


def isin(elements, test_elements, *, assume_unique: bool = False,
         invert: bool = False) -> Tensor:
    """Whether each of ``elements`` is one of ``test_elements`` (bool, shaped like
    ``elements``)."""
    a = _array(elements, "isin")
    b = _array(test_elements, "isin")
    like = elements if isinstance(elements, Tensor) else test_elements
    return on_device_of(np.isin(a, b, invert=invert), like)


def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:  # noqa: A002
    """How often each non-negative integer occurs in 1-d ``input`` (or the sum of its
    ``weights``); float32 weights give float32, others float64, as PyTorch."""
    data = _array(input, "bincount")
    if data.ndim != 1 or data.dtype.kind not in "iub" or (data.size and data.min() < 0):
        raise ShapeError(f"bincount(): expects a 1-d tensor of non-negative integers, got "
                         f"{describe(input)}")
    if int(minlength) < 0:
        raise ShapeError(f"bincount(): minlength must be non-negative, got {minlength}")
    if weights is None:
        return on_device_of(np.bincount(data, minlength=int(minlength)).astype(np.int64), input)
    w = _array(weights, "bincount")
    if w.shape != data.shape:
        raise ShapeError(f"bincount(): weights {describe(w)} must have the shape of the "
                         f"input {describe(data)}")
    dtype = w.dtype if w.dtype in (np.float32, np.float16) else np.float64
    out = np.bincount(data, weights=w.astype(np.float64), minlength=int(minlength))
    return on_device_of(out.astype(dtype), input)


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(x: Tensor, q, dim, keepdim: bool, interpolation: str, ignore_nan: bool,
              op: str) -> Tensor:
    if interpolation not in _INTERPOLATIONS:
        raise ShapeError(f"{op}(): interpolation must be one of {_INTERPOLATIONS}, got "
                         f"{interpolation!r}")
    if x._data.dtype.kind != "f":
        raise ShapeError(f"{op}(): input must be a float tensor, got {describe(x)}")
    qs = _array(q, op).astype(np.float64)
    if qs.ndim > 1 or ((qs < 0) | (qs > 1)).any():
        raise ShapeError(f"{op}(): q must be a scalar or 1-d with values in [0, 1], got "
                         f"{describe(q)}")
    if dim is None:
        src, axis = x.reshape(-1), 0
    else:
        src = x.reshape(1) if x.ndim == 0 else x
        axis = _wrap_dim(int(dim), src.ndim, op)
    data = _concrete(src._data, f"{op}()")
    if data.shape[axis] == 0:
        raise ShapeError(f"{op}(): cannot compute a quantile of an empty input {describe(x)}")
    order = np.moveaxis(stable_order(data, axis, False), axis, -1)
    n = data.shape[axis]
    nans = np.isnan(np.moveaxis(data, axis, -1)).sum(-1, keepdims=True)
    count = n - nans if ignore_nan else np.full_like(nans, n)
    ranks = qs.reshape(-1) * np.maximum(count - 1, 0)   # (the other dims..., len(q))
    lo = np.floor(ranks)
    if interpolation == "lower":
        ranks = lo
    elif interpolation == "higher":
        ranks = np.ceil(ranks)
    elif interpolation == "nearest":
        ranks = np.round(ranks)   # half to even, as PyTorch's round
    lo, hi = np.floor(ranks), np.ceil(ranks)
    # NOTE: a slice with a NaN (nanquantile: only NaN) answers NaN: point both
    # neighbours at the last sorted position, where NaN sorts
    bad = (nans > 0) if not ignore_nan else (count == 0)
    lo = np.where(bad, n - 1, lo).astype(np.int64)
    hi = np.where(bad, n - 1, hi).astype(np.int64)
    lo_idx = np.take_along_axis(order, lo, -1)
    hi_idx = np.take_along_axis(order, hi, -1)
    lo_v = gather(src, axis, on_device_of(np.moveaxis(lo_idx, -1, axis), x))
    hi_v = gather(src, axis, on_device_of(np.moveaxis(hi_idx, -1, axis), x))
    if interpolation == "midpoint":
        weight = np.full(lo.shape, 0.5)
    elif interpolation == "linear":
        weight = ranks - np.floor(ranks)
    else:
        weight = np.zeros(lo.shape)
    w = on_device_of(np.moveaxis(weight, -1, axis).astype(x._data.dtype), x)
    # NOTE: lo + (hi - lo) * w, as PyTorch's lerp for w < 0.5; where lo == hi the
    # product is 0 and the value exact
    out = lo_v + (hi_v - lo_v) * w
    out = out.movedim(axis, 0)   # (len(q), the other dims)
    if keepdim:
        out = out.unsqueeze(axis + 1) if dim is not None else out.reshape(
            (out.shape[0],) + (1,) * x.ndim)
    if qs.ndim == 0:
        out = out.squeeze(0)
    if x.ndim == 0:   # a 0-d input gives one value per quantile, whatever keepdim says
        out = out.reshape(qs.shape)
    return out


def quantile(input: Tensor, q, dim: int | None = None, keepdim: bool = False, *,  # noqa: A002
             interpolation: str = "linear") -> Tensor:
    """The ``q``-th quantiles along ``dim`` (over all elements without it); NaN where a
    slice holds NaN. A 1-d ``q`` adds a leading dim, one entry per quantile."""
    return _quantile(input, q, dim, keepdim, interpolation, False, "quantile")


def nanquantile(input: Tensor, q, dim: int | None = None, keepdim: bool = False, *,  # noqa: A002
                interpolation: str = "linear") -> Tensor:
    """``quantile`` ignoring NaN (NaN only where a slice is all NaN)."""
    return _quantile(input, q, dim, keepdim, interpolation, True, "nanquantile")
