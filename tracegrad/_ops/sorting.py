"""Sorting and order statistics: ``sort``, ``argsort``, ``topk``, ``kthvalue``, ``median``.

NOTE (eager order): the order of the elements depends on their values, so the indices
come from NumPy on concrete data (``_concrete``): a compile trace raises ``TraceError``
there, and ``@compile`` runs the function eagerly (or raises with ``fullgraph=True``); it
never returns a traced guess. The values are then ``gather(x, dim, indices)``, so their
gradient is gather's (a scatter-add into the selected positions), as PyTorch's.
"""
from __future__ import annotations

import numpy as np

from .._errors import ShapeError, describe
from .._tensor import Tensor, _concrete, _wrap_dim
from ..autograd.function import Function
from ..autograd.node import show_as
from .creation import from_numpy
from .indexing import gather
from .math import isnan, where
from .reduce import values_indices

__all__ = ["sort", "argsort", "msort", "topk", "kthvalue", "median", "nanmedian"]


def on_device_of(array: np.ndarray, like: Tensor) -> Tensor:
    """A NumPy result as a tensor on ``like``'s device (a CUDA input's answer on CUDA)."""
    out = from_numpy(np.asarray(array, order="C"))
    return out if like.device.type == "cpu" else out.to(like.device)


def _index(idx: np.ndarray, like: Tensor) -> Tensor:
    return on_device_of(np.asarray(idx, dtype=np.int64), like)


def stable_order(data: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """Stable argsort along ``axis``; NaN sorts as the largest value (PyTorch's order).

    Descending keeps equal elements in their original order, as PyTorch's stable sort:
    sort the reversed array ascending and read the result backwards.
    """
    if not descending:
        return np.argsort(data, axis=axis, kind="stable")
    n = data.shape[axis]
    rev = np.flip(data, axis)
    return (n - 1) - np.flip(np.argsort(rev, axis=axis, kind="stable"), axis)


def _axis(x: Tensor, dim: int, op: str) -> int:
    axis = _wrap_dim(int(dim), x.ndim, op)   # (a 0-d tensor takes dim 0 or -1)
    return 0 if x.ndim == 0 else axis


def _order(x: Tensor, dim: int, descending: bool, op: str) -> tuple[np.ndarray, int]:
    data = _concrete(x._data, f"{op}()")
    axis = _axis(x, dim, op)
    if data.ndim == 0:
        return np.zeros((), np.int64), axis
    return stable_order(data, axis, descending), axis


def _take(x: Tensor, axis: int, idx: Tensor) -> Tensor:
    return x.clone() if x.ndim == 0 else gather(x, axis, idx)


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):  # noqa: A002
    """Sorted values and their indices along ``dim`` (NaN last ascending, first descending).

    >>> import tracegrad as torch
    >>> torch.sort(torch.tensor([3., 1., 2.]), descending=True).indices
    tensor([0, 2, 1])
    """
    # NOTE: always stable; PyTorch allows any order of ties when stable=False
    order, axis = _order(input, dim, descending, "sort")
    idx = _index(order, input)
    return _named(values_indices(_take(input, axis, idx), idx), "SortBackward0", input)


def _named(result: values_indices, name: str, x: Tensor) -> values_indices:
    """PyTorch's node name on the values' gather (``SortBackward0``, not a gather's)."""
    show_as(result.values, name, (x,))
    return result


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:  # noqa: A002
    order, _ = _order(input, dim, descending, "argsort")
    return _index(order, input)


def msort(input: Tensor) -> Tensor:  # noqa: A002
    return sort(input, 0).values


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """The ``k`` largest (``largest=False``: smallest) values along ``dim`` and their
    indices, largest first; NaN counts as larger than every number."""
    axis = _axis(input, dim, "topk")
    size = 1 if input.ndim == 0 else input.shape[axis]
    if not 0 <= int(k) <= size:
        raise ShapeError(f"topk(): k ({k}) out of range for dimension {dim} of size {size} "
                         f"(input {describe(input)})")
    data = _concrete(input._data, "topk()")
    if 0 < int(k) < size and data.ndim:
        order = _top_positions(data, axis, int(k), largest)
    else:
        order, axis = _order(input, dim, largest, "topk")
        if order.ndim:
            order = np.take(order, np.arange(int(k)), axis=axis)
    idx = _index(order, input)
    return _named(values_indices(_take(input, axis, idx), idx), "TopkBackward0", input)


def _top_positions(data: np.ndarray, axis: int, k: int, largest: bool) -> np.ndarray:
    """The positions of the k largest (smallest) along axis, in sorted order.

    NOTE (topk by partition): a partition finds the k in O(n), then only they are
    sorted: topk(50) of 32 x 50257 float32 logits took 250-280 ms through a full stable
    sort, 6.5 ms this way, 12-16 ms in torch (load ~6). NaN partitions as the largest, as it sorts. Among
    equal values at the cut, which ones are kept is unspecified, as in PyTorch.
    """
    n = data.shape[axis]
    cut = n - k if largest else k - 1
    part = np.argpartition(data, cut, axis=axis)
    chosen = np.take(part, np.arange(cut, n) if largest else np.arange(k), axis=axis)
    chosen = np.sort(chosen, axis=axis)   # ties then keep the original order
    picked = np.take_along_axis(data, chosen, axis)
    return np.take_along_axis(chosen, stable_order(picked, axis, largest), axis)


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):  # noqa: A002
    """The ``k``-th smallest value (1-based) along ``dim`` and its index."""
    axis = _axis(input, dim, "kthvalue")
    size = 1 if input.ndim == 0 else input.shape[axis]
    if not 1 <= int(k) <= size:
        raise ShapeError(f"kthvalue(): k ({k}) out of range for dimension {dim} of size "
                         f"{size} (input {describe(input)})")
    order, axis = _order(input, dim, False, "kthvalue")
    rank = np.full(order.shape[:axis] + order.shape[axis + 1:], int(k) - 1)
    return _named(_pick(input, order, axis, rank, keepdim), "KthvalueBackward0", input)


def _pick(x: Tensor, order: np.ndarray, axis: int, rank: np.ndarray, keepdim: bool):
    """values_indices of the element of sorted rank ``rank`` (one per slice) along axis."""
    if order.ndim == 0:
        idx = _index(order, x)
        return values_indices(x.clone(), idx)
    chosen = np.take_along_axis(order, np.expand_dims(rank, axis), axis)
    idx = _index(chosen, x)
    values = gather(x, axis, idx)
    if not keepdim:
        values, idx = values.squeeze(axis), idx.squeeze(axis)
    return values_indices(values, idx)


def _median_dim(x: Tensor, dim: int, keepdim: bool, ignore_nan: bool, op: str):
    axis = _axis(x, dim, op)
    data = _concrete(x._data, f"{op}()")
    if data.ndim and data.shape[axis] == 0:
        raise ShapeError(f"{op}(): cannot compute the median of an empty dimension {dim} "
                         f"(input {describe(x)})")
    order, axis = _order(x, dim, False, op)
    if order.ndim == 0:
        return _pick(x, order, axis, order, keepdim)
    nan = np.isnan(data) if data.dtype.kind == "f" else np.zeros(data.shape, bool)
    n_nan = nan.sum(axis=axis)
    n = data.shape[axis]
    if ignore_nan:   # the lower median of the numbers; all NaN: the first NaN (rank 0)
        rank = np.maximum(n - n_nan - 1, 0) // 2
    else:            # any NaN: the first NaN, which sorts right after the numbers
        rank = np.where(n_nan > 0, n - n_nan, (n - 1) // 2)
    name = "NanmedianBackward1" if ignore_nan else "MedianBackward1"
    return _named(_pick(x, order, axis, rank, keepdim), name, x)


class _EvenMedian(Function):
    """``median(x)`` without dim: PyTorch spreads the gradient evenly over every element
    equal to the median (``evenly_distribute_backward``), not onto one index."""

    @staticmethod
    def forward(ctx, x, value):
        ctx.save_for_backward(x, value)
        return value.detach() * 1

    @staticmethod
    def backward(ctx, grad):
        x, value = ctx.saved_tensors
        hit = where(isnan(value), isnan(x), x == value)
        return where(hit, grad / hit.sum(), 0.0), None


def _median_all(x: Tensor, ignore_nan: bool, op: str) -> Tensor:
    data = _concrete(x._data, f"{op}()")
    if data.size == 0:
        if data.dtype.kind != "f":
            raise ShapeError(f"{op}(): cannot compute the median of an empty {describe(x)}")
        return from_numpy(np.array(np.nan, data.dtype))
    flat = x.reshape(-1)
    value = _median_dim(flat, 0, False, ignore_nan, op).values
    if not x.requires_grad:
        return value
    out = _EvenMedian.apply(x, value)
    show_as(out, "NanmedianBackward0" if ignore_nan else "MedianBackward0", (x,))
    return out


def median(input: Tensor, dim: int | None = None, keepdim: bool = False):  # noqa: A002
    """The lower median (of an even count, the smaller middle value); NaN if a NaN is
    there. With ``dim``: (values, indices) along it."""
    if dim is None:
        return _median_all(input, False, "median")
    return _median_dim(input, dim, keepdim, False, "median")


def nanmedian(input: Tensor, dim: int | None = None, keepdim: bool = False):  # noqa: A002
    """``median`` ignoring NaN (NaN only where a slice is all NaN)."""
    if dim is None:
        return _median_all(input, True, "nanmedian")
    return _median_dim(input, dim, keepdim, True, "nanmedian")

