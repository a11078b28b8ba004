"""View bookkeeping: which tensors share storage, and how a view follows its base's history.

NOTE (views): as in PyTorch, a view op (``view``, ``permute``, slicing, ``narrow``,
``expand``, ``diagonal``, ``unfold``, ``as_strided`` (NOTE (strided views)), ...) returns a tensor on its input's storage that knows its base.
``_view`` holds the root tensor (``_base``, never itself a view), the chain of view ops
``(op, args)`` that makes the view from the root, and the version at which the view's
``grad_fn`` is current. The view shares the root's version counter, so a write through any alias
invalidates every saved value that reads that storage. An in-place op on a view rewrites
the root's history as "the old root with these positions replaced by the new values"
(PyTorch's CopySlices, here an INDEX_PUT node). Any other view of the root then has an
out-of-date version, and ``_tensor.sync_view_history`` replays its view ops on the root's
new history when it is next used (recorded as an op input, or as a backward root), as
PyTorch regenerates a view's grad_fn. A root that does not require grad keeps weak
references to its views, so that if it comes to require grad its views do too
(``_tensor.wake_views``). Nothing of this is on the dispatcher's path: plain op outputs
carry no view state (a class default of None).
Under a compile trace see NOTE (in-place writes while tracing) in compiler/tracer.py.
"""
from __future__ import annotations

import weakref

import numpy as np

from ..autograd.grad_mode import state as _grad_state
from .._tensor import (CPU, Tensor, _new_tensor, _wrap, contiguous_strides, element_strides,
                       remember_view, replay_view_ops, sync_view_history)


def make_view(x: Tensor, out: Tensor, op, args: tuple, strides_of=None) -> Tensor:
    """Mark ``out`` (just computed as ``op(x, *args)``, a view op) as a view of ``x``'s
    root. For a trace value, ``strides_of(x, *args)`` gives ``out``'s layout in elements
    (a NumPy array knows its own)."""
    if x._device.type == "cuda":
        return mark_cuda_copy(x, out)
    view = x._view
    version = x._version
    if view is None:
        root = x
        out._view = (x, ((op, args),), version[0])
    else:
        root = view[0]
        out._view = (root, view[1] + ((op, args),), version[0])
    if not root._requires_grad:
        remember_view(root, out)
    elif not _grad_state.enabled:
        out._no_grad_view = True  # an in-place write to it with grad on is refused (PyTorch)
    out._version = version
    if x._device is not CPU:
        out._device = x._device
    if strides_of is not None and type(out._data) is not np.ndarray \
            and out._device.type == "cpu":  # NOTE (device views) in _cuda_tensor.py: a copy
        # a trace value has no memory: it carries its layout, for view() and contiguous()
        strides = strides_of(x, *args)
        if strides is not None and strides != contiguous_strides(out._data.shape):
            out._data.strides = strides
    return out


def mark_cuda_copy(x: Tensor, out: Tensor) -> Tensor:
    """NOTE (device views) in _cuda_tensor.py: a view op on a CUDA tensor made a copy; it
    remembers its base weakly, so that an in-place write into it while the base lives
    raises (``inplace.check_inplace``) instead of silently missing the base."""
    base = x._cuda_base() if x._cuda_base is not None else None
    out._cuda_base = weakref.ref(x if base is None else base)
    out._device = x._device
    return out


def view_strides(shape, strides, new_shape):
    """Strides that read ``shape``/``strides`` storage as ``new_shape`` without a copy, or
    None where no such strides exist (PyTorch's ``computeStride``)."""
    shape, strides, new_shape = tuple(shape), tuple(strides), tuple(new_shape)
    if not shape or 0 in shape:
        return contiguous_strides(new_shape)
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base = strides[-1]
    tensor_numel = view_numel = 1
    for d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[d]
        if d == 0 or (shape[d - 1] != 1 and strides[d - 1] != tensor_numel * chunk_base):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_base
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                chunk_base = strides[d - 1]
                tensor_numel = view_numel = 1
    if view_d != -1:
        return None
    return tuple(new_strides)


def storage_positions(view: Tensor, root: Tensor) -> tuple:
    """For each element of ``view``, its index in ``root`` (one int64 array per root dim,
    each of the view's shape), found by replaying the view ops on ``arange``."""
    shape = tuple(root._data.shape)
    return np.unravel_index(root_indices(view, root), shape) if shape else ()


def root_indices(view: Tensor, root: Tensor) -> np.ndarray:
    """For each element of ``view``, its flat index in ``root`` (the view's shape)."""
    shape = tuple(root._data.shape)
    flat = _wrap(np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape))
    return np.asarray(replay_view_ops(view._view[1], flat)._data)


def history_alias(x: Tensor) -> Tensor:
    """A fresh tensor with ``x``'s storage, version counter and (current) history."""
    if x._view is not None:
        sync_view_history(x)
    a = _new_tensor(Tensor)
    a._data = x._data
    a._version = x._version
    a.grad_fn = x.grad_fn
    a._requires_grad = x._requires_grad
    return a


def layout_strides(x: Tensor) -> tuple:
    return element_strides(x._data)


__all__ = ["make_view", "view_strides", "storage_positions", "root_indices", "history_alias",
           "layout_strides"]
