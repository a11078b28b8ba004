"""The eager fast paths of the view ops (NOTE (eager view fast paths)): on a CPU tensor
outside any compile trace, a view op builds its output here from the NumPy view it computed
itself; the ops in shape.py and indexing.py fall back on their general path for the rest.
"""
from __future__ import annotations

import numpy as np

from .. import _trace_state
from .._device import CPU
from .._primitives import PRIMITIVES as P
from .._tensor import Tensor, _new_tensor, element_strides, remember_view
from ..autograd.grad_mode import state as _grad_state
from ..autograd.node import Node
from ..codegen.ops import Op
from .views import view_strides

_ndarray = np.ndarray
_RESHAPE, _EXPAND = P[Op.RESHAPE], P[Op.EXPAND]
_BASIC_KEY_TYPES = frozenset((int, slice, type(None), type(Ellipsis)))
_WHOLES = tuple((slice(None),) * n for n in range(65))   # (NumPy allows 64 dims)


# NOTE (eager view fast paths): a view op on a CPU tensor outside any compile trace (the
# common eager case) computes its NumPy view itself and builds the output here, where the
# general path went through the dispatcher (``apply``: input loop, ``prim.eager``, the error
# wrapper) once or twice and re-parsed its arguments on the way. What it builds is the
# same: the same value (the ndarray method the primitive's eager function calls), the same
# autograd nodes (``Node(prim, (x,), attrs, out)``), the same view record (``make_view``
# with the op and arguments the general path records). Anything else (a trace recording in
# any thread, a CUDA tensor, a legacy volatile one, an argument the fast path does not
# parse, an error) takes the general path, which raises the op's error.
#   On a 2x2 tensor, us/op before -> after (torch 2.13), medians of 3 alternating runs of
# the two trees, torch timed in the same process, load 5-11 on 2 cores. No grad: x[0] 5.61
# -> 1.33 (0.76), x[:, 0] 6.35 -> 1.90 (1.15), x[..., None] 5.12 -> 1.41 (0.94), x.t()
# 1.56 -> 0.84 (0.77), x.transpose(0, 1) 2.23 -> 0.92 (0.98), x.permute(1, 0) 2.76 -> 1.45
# (0.93), x.view(-1) 2.87 -> 1.38 (0.81), x.unsqueeze(0) 2.98 -> 1.30 (0.88),
# x.expand(3, 2, 2) 6.77 -> 2.2 (0.97), x.narrow 2.98 -> 1.72 (1.48), x.select 6.16 -> 2.7
# (1.06), x[idx] 6.21 -> 1.73 (1.77), x[mask] 4.14 -> 1.31 (3.15), x[1] = v 4.20 -> 1.15
# (1.38), x[:, 1:] += y ~30 -> 6.3 (~4). Requires grad: x[0] 6.43 -> 2.40 (1.13), x.t()
# 1.86 -> 1.01 (1.07). What is left: a Python call, the Tensor, the view record and the
# weak reference a root without grad keeps (~0.4 us, eager_view), and with grad the nodes
# of the general path (x[i] has two: SLICE then RESHAPE, ~0.4 us each).
def plain_eager(x: Tensor) -> bool:
    """Whether a view op on ``x`` may take its eager fast path (NOTE (eager view fast
    paths)): no compile trace is recording, ``x`` holds a NumPy array on the CPU and is not
    a legacy volatile tensor."""
    return (not _trace_state.active_traces and type(x._data) is _ndarray and x._device is CPU
            and x._requires_grad is not None)


def eager_output(x: Tensor, data: np.ndarray, prim, attrs: dict, inputs: tuple = ()) -> Tensor:
    """``apply(prim, (x,), attrs)`` for an ``x`` that ``plain_eager`` admits, given its value
    ``data`` (what ``prim.eager(x._data, **attrs)`` returns): the same tensor and node.
    ``inputs``: the op's inputs where they are more than ``x`` (the others record no grad)."""
    out = _new_tensor(Tensor)
    out._data = data
    out._requires_grad = False
    out.grad_fn = None
    out._version = [0]
    if x._requires_grad and _grad_state.enabled:
        out.grad_fn = Node(prim, inputs or (x,), attrs, out)
        out._requires_grad = True
    return out


def eager_view(x: Tensor, data: np.ndarray, prim, attrs: dict, op, args: tuple) -> Tensor:
    """``make_view(x, apply(prim, (x,), attrs), op, args)`` on the eager fast path (the
    bodies of ``eager_output`` and of ``make_view`` for a CPU array, inlined: the hot path).
    ``prim`` may be None where the caller knows that no node is recorded (no grad)."""
    out = _new_tensor(Tensor)
    out._data = data
    out._requires_grad = False
    out.grad_fn = None
    out._version = [0]
    grad = _grad_state.enabled
    if x._requires_grad and grad:
        out.grad_fn = Node(prim, (x,), attrs, out)   # (it may bring x's view record up to date)
        out._requires_grad = True
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
    elif not grad:
        out._no_grad_view = True
    out._version = version
    return out


def eager_reshape(x: Tensor, shape: tuple, op, known_view: bool = False):
    """``shape._reshaped(x, shape)`` (``op`` is ``shape.reshape``) on the eager fast path, or
    None where it does not apply (the general path then raises the op's error if any).
    ``known_view``: the caller knows that ``x``'s strides allow the view (only size-1 dims
    added or dropped)."""
    if not plain_eager(x):
        return None
    data = x._data
    try:
        out = data.reshape(shape)
    except (ValueError, TypeError):
        return None
    if known_view or data.flags.c_contiguous or view_strides(data.shape, element_strides(data),
                                               shape) is not None:
        return eager_view(x, out, _RESHAPE, {"shape": shape}, op, (shape,))
    return eager_output(x, out, _RESHAPE, {"shape": shape})   # (NumPy copied: not a view)


def eager_expand(x: Tensor, shape: tuple, lead: int, op):
    """``shape.expand(x, shape)`` (``op``) on the eager fast path for a C-contiguous ``x``
    with ``lead`` new dims in front: the NumPy view of x's memory with the strides and
    writability the general path's ``as_strided`` gives (at 1/10 of its cost); None where it
    does not apply."""
    data = x._data
    if not plain_eager(x) or not data.flags.c_contiguous or not data.size:
        return None
    strides = [0] * lead
    for old, new, stride in zip(data.shape, shape[lead:], data.strides):
        if old == new:
            strides.append(stride)
        elif old == 1 and new >= 0:
            strides.append(0)
        else:
            return None   # (the general path raises the op's error)
    if min(shape[:lead], default=0) < 0:
        return None
    out = np.ndarray(shape, data.dtype, data, 0, tuple(strides))
    return eager_view(x, out, _EXPAND, {"shape": shape}, op, (shape,))


def basic_key_parts(shape: tuple, key):
    """For a key of plain ints, slices, None and at most one Ellipsis that selects within
    ``shape``: the per-dim slices (an int ``i`` as ``i:i+1``), the shape after ints and None,
    and whether any slice is not whole, as ``_getitem`` finds them. None for any other key
    (the general path then raises the op's error where there is one)."""
    keys = key if type(key) is tuple else (key,)
    n_real = 0
    for k in keys:
        kind = type(k)
        if kind not in _BASIC_KEY_TYPES:
            return None
        if kind is int or kind is slice:
            n_real += 1
    ndim = len(shape)
    if n_real > ndim:
        return None
    index, out_shape = [], []
    dim = 0
    sliced = filled = False
    for k in keys:
        if k is None:
            out_shape.append(1)
        elif k is Ellipsis:
            if filled:
                return None
            filled = True
            index += _WHOLES[ndim - n_real]
            out_shape += shape[dim:dim + ndim - n_real]
            dim += ndim - n_real
        else:
            n = shape[dim]
            if type(k) is int:
                i = k + n if k < 0 else k
                if not 0 <= i < n:
                    return None
                index.append(slice(i, i + 1))
                sliced = sliced or n != 1
            else:
                if k.step == 0:
                    return None
                bounds = k.indices(n)
                index.append(k)
                out_shape.append(len(range(*bounds)))
                sliced = sliced or bounds != (0, n, 1)
            dim += 1
    if dim < ndim:
        index += _WHOLES[ndim - dim]
        out_shape += shape[dim:]
    return tuple(index), tuple(out_shape), sliced


__all__ = ["plain_eager", "eager_output", "eager_view", "eager_reshape", "eager_expand",
           "basic_key_parts"]
