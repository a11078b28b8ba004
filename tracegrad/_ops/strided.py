"""Views at any element strides over a tensor's storage: ``as_strided`` and
``storage_offset``, as in PyTorch; ``shape.diagonal`` falls back on ``diagonal_view`` where
no reshape-and-slice chain expresses its diagonal.

NOTE (strided views): PyTorch's ``x.as_strided(size, stride, offset)`` reads the storage
under ``x``, whatever ``x``'s own layout (``x.t().as_strided(s, st)`` reads what
``x.as_strided(s, st)`` reads). The storage here is the root's (NOTE (views) in views.py):
the root element at index ``i`` sits at storage position ``start + sum(i_k * stride_k)``
of the root's layout, ``start`` the shift that makes the lowest position 0. The view's
value is a gather from the flattened root at the indices of the elements that the view's
positions hold (from the flattened input where only the input requires grad, a leaf view
of a root that does not, so that its gradient reaches it): INDEX, whose gradient is a
scatter-add, so overlapping windows accumulate, as in PyTorch's ``as_strided_backward``.
It is recorded as the view op ``take_flat``, which replays like any other (a write's
positions, a stale view's history). Eagerly the view's data is the NumPy array over the
same memory, so a write into it reaches the root and all its views; the gather runs only
to record history (autograd; its values are equal) or under a compile trace, where it is
the view's value and its index a constant of the trace. Its index costs O(size):
``zeros(1000, 1000).as_strided((500, 1000), (2000, 1))`` takes ~0.36 ms eagerly (torch: 1
us; 32 ms before the gather was skipped without autograd).
"""
from __future__ import annotations

import math

import numpy as np

from .. import _trace_state
from .._dispatch import is_tracing
from .._primitives import functions as F
from .._primitives.linalg_index import TENSOR
from .._errors import TraceError
from .._tensor import Tensor, _wrap, contiguous_strides, element_strides
from ..autograd.grad_mode import state as _grad_state
from ..codegen.ops import Op
from .views import make_view, root_indices


def storage_offset(x: Tensor) -> int:
    """Where ``x`` starts in its storage, in elements, as ``torch.Tensor.storage_offset``.

    >>> import tracegrad as torch
    >>> torch.arange(12).reshape(3, 4)[1:, 2:].storage_offset()
    6
    """
    root = _root_of(x)
    data, base = x._data, root._data
    if type(data) is np.ndarray and type(base) is np.ndarray and (
            data.size == 0 or np.may_share_memory(data, base)):
        return (data.__array_interface__["data"][0] - _lowest_address(base)) // base.itemsize
    _refuse_argument_storage(root, "storage_offset")
    if x.numel() == 0:
        return 0
    return int(_positions_of(x, root).reshape(-1)[0])


# NOTE (argument layouts): a compile trace sees an argument as a tensor of its own with
# the call's strides (NOTE (layout signatures) in compiler/layouts.py), but not the
# storage around it: a view's storage around an argument is not what the trace would
# read, so the storage under an argument is refused in a trace (the call runs eagerly).
# (A write into a reshape of an argument was refused too while the signature held no
# layout: ``x.reshape(-1)[0] = 5`` on a transposed argument compiled as a write into x,
# which eagerly goes into a copy; the trace now copies where eager does.) A tensor the
# trace made is contiguous storage of its own, as eagerly.
def is_argument_value(root: Tensor) -> bool:
    """Whether ``root`` is a compile trace's value of an argument (a graph input)."""
    data = root._data
    tracer = getattr(data, "tracer", None)
    return tracer is not None and tracer.graph.node(data.node).op is Op.INPUT


def _refuse_argument_storage(root: Tensor, op: str) -> None:
    """NOTE (argument layouts)."""
    if is_argument_value(root):
        raise TraceError(f"{op}: the storage under a compiled function's argument (shape "
                         f"{tuple(root.shape)}) depends on its layout at each call, which a "
                         f"compile trace does not see")


_start_of = storage_offset   # (as_strided's argument of that name, PyTorch's, hides it)


def as_strided(x: Tensor, size, stride, storage_offset=None) -> Tensor:
    """A view of ``x``'s storage with the given sizes and element strides, starting at
    ``storage_offset`` (default: where ``x`` starts), as ``torch.as_strided``.

    >>> import tracegrad as torch
    >>> torch.arange(6).as_strided((2, 2), (1, 2), 1)
    tensor([[1, 3],
            [2, 4]])
    """
    size, stride = tuple(int(n) for n in size), tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise RuntimeError(f"as_strided: mismatch in length of strides and shape: size "
                           f"{list(size)}, stride {list(stride)}")
    if any(n < 0 for n in size) or any(s < 0 for s in stride):
        raise RuntimeError(f"as_strided: sizes and strides must be non-negative (PyTorch "
                           f"supports no negative strides), got size {list(size)}, stride "
                           f"{list(stride)}")
    offset = _start_of(x) if storage_offset is None else int(storage_offset)
    if offset < 0:
        raise RuntimeError(f"as_strided: storage offset must be non-negative, got {offset}")
    root = _root_of(x)
    _refuse_argument_storage(root, "as_strided")
    span = _span(root)
    need = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if math.prod(size) and need > span:
        raise RuntimeError(f"as_strided: sizes {list(size)}, strides {list(stride)} and "
                           f"storage offset {offset} need a storage of {need} elements, out "
                           f"of bounds for the storage of {span} elements under the tensor "
                           f"(shape {tuple(x.shape)})")
    wanted = _strided_positions(size, stride, offset)
    # from the root (its current history), or from x where only x requires grad (a leaf
    # view of a root that does not) and x holds every element read
    for source in (x, root) if x._requires_grad and not root._requires_grad else (root,):
        if source is root and _is_dense(root):
            indices = wanted   # (the positions of a dense root are its flat indices)
        else:
            indices = _flat_indices(_positions_of(source, root), wanted, span)
        if indices is not None:
            return strided_view(source, root, indices, offset, stride)
    raise RuntimeError(f"as_strided: size {list(size)}, stride {list(stride)}, offset "
                       f"{offset} reach storage between the elements of a non-contiguous "
                       f"tensor (shape {tuple(root.shape)}, strides "
                       f"{element_strides(root._data)}); call contiguous() first")


def strided_view(x: Tensor, root: Tensor, indices: np.ndarray, offset: int,
                 stride: tuple) -> Tensor:
    """The view of ``x`` (``root`` or a view of it) whose elements are ``x``'s flat
    ``indices``, which the root's storage holds at ``offset`` with ``stride``: NOTE
    (strided views)."""
    base = root._data
    if type(base) is not np.ndarray or is_tracing() or (
            x._requires_grad and _grad_state.enabled):
        out = take_flat(x, indices)   # the gather is the history (or the traced value)
        if type(base) is np.ndarray and type(out._data) is np.ndarray:
            out._data = _memory_view(base, offset, indices.shape, stride)
    else:
        out = _wrap(_memory_view(base, offset, indices.shape, stride))
    return make_view(x, out, take_flat, (indices,), lambda t, i: tuple(stride))


def _flat_indices(positions: np.ndarray, wanted: np.ndarray, span: int):
    """The flat index into ``positions``' tensor of each storage position ``wanted``, or
    None where one is not among ``positions``."""
    index = np.full(span, -1, dtype=np.int64)
    index[positions.reshape(-1)] = np.arange(positions.size, dtype=np.int64)
    out = index[wanted] if wanted.size else wanted
    return None if (out < 0).any() else out


def _is_dense(root: Tensor) -> bool:
    data = root._data
    if type(data) is np.ndarray:
        return bool(data.flags.c_contiguous)
    return element_strides(data) == contiguous_strides(data.shape)


def _span(root: Tensor) -> int:
    """The number of storage elements under ``root``."""
    shape, strides = tuple(root._data.shape), element_strides(root._data)
    if math.prod(shape) == 0:
        return 0
    return sum((n - 1) * abs(s) for n, s in zip(shape, strides)) + 1


def take_flat(t: Tensor, indices: np.ndarray) -> Tensor:
    """The view op of a strided view: ``t`` (or a stand-in) flat at ``indices``."""
    flat = F.reshape(t, (math.prod(t._data.shape),))
    return F.index(flat, (_wrap(indices),), (TENSOR,))


def diagonal_view(x: Tensor, offset: int, d1: int, d2: int, length: int) -> Tensor:
    """``x.diagonal(offset, d1, d2)`` as a strided view over ``x``'s storage."""
    strides = element_strides(x._data)
    keep = [i for i in range(x._data.ndim) if i not in (d1, d2)]
    size = tuple(x._data.shape[i] for i in keep) + (length,)
    stride = tuple(strides[i] for i in keep) + (strides[d1] + strides[d2],)
    start = offset * strides[d2] if offset >= 0 else -offset * strides[d1]
    start = start if length else 0   # (PyTorch's empty diagonal starts where x does)
    return as_strided(x, size, stride, storage_offset(x) + start)


def _root_of(x: Tensor) -> Tensor:
    view = x._view
    return x if view is None else view[0]


def _lowest_address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0] + sum(
        (n - 1) * s for n, s in zip(a.shape, a.strides) if s < 0 and n > 0)


def _root_positions(root: Tensor) -> np.ndarray:
    """Storage position of each element of ``root`` (int64, the root's shape)."""
    shape = tuple(int(n) for n in root._data.shape)
    strides = element_strides(root._data)
    start = -sum((n - 1) * s for n, s in zip(shape, strides) if s < 0 and n > 0)
    return _strided_positions(shape, strides, start)


def _strided_positions(size: tuple, stride: tuple, offset: int) -> np.ndarray:
    out = np.full(size, offset, dtype=np.int64)
    for d, (n, s) in enumerate(zip(size, stride)):
        out += (np.arange(n, dtype=np.int64) * s).reshape((n,) + (1,) * (len(size) - d - 1))
    return out


def _positions_of(x: Tensor, root: Tensor) -> np.ndarray:
    """Storage position of each element of ``x``, a view of ``root`` (or ``root``)."""
    positions = _root_positions(root)
    if x is root:
        return positions
    with _trace_state.untraced_values():   # the positions are NumPy's, not graph values
        flat = root_indices(x, root)
    return positions.reshape(-1)[flat]


class _Memory:
    """Hands NumPy an array interface (NumPy's own ``as_strided`` does the same)."""

    def __init__(self, interface: dict, base: np.ndarray) -> None:
        self.__array_interface__ = interface
        self.base = base


def _memory_view(base: np.ndarray, offset: int, size: tuple, stride: tuple) -> np.ndarray:
    """The NumPy array at ``offset``/``stride`` (elements) of ``base``'s storage, writable
    where ``base`` is."""
    interface = dict(base.__array_interface__)
    item = base.itemsize
    interface["data"] = (_lowest_address(base) + offset * item, not base.flags.writeable)
    interface["shape"] = tuple(size)
    interface["strides"] = tuple(s * item for s in stride)
    interface.pop("mask", None)
    interface.pop("offset", None)
    return np.asarray(_Memory(interface, base))


__all__ = ["as_strided"]   # (storage_offset is a Tensor method only, as in PyTorch)
