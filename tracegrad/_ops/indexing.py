"""Indexing: ``x[key]`` and ``x[key] = v`` with ints, slices (with steps), None,
Ellipsis, integer arrays/tensors and boolean masks; gather/scatter and friends."""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from .._device import CPU
from .._dispatch import apply, is_tracing
from .._primitives import PRIMITIVES as P
from .._primitives.linalg_index import (PRIM_INDEX, PRIM_INDEX_PUT, TENSOR, build_key,
                                         check_no_larger)
from .._primitives.registry import ShapeError, describe
from .._size import slice_indices, slice_length
from .._tensor import Tensor, _wrap_dim, element_strides
from .._untraced import untraced
from ..autograd.grad_mode import state as _grad_state
from ..codegen.ops import Op
from .creation import full, tensor
from .eager_views import (_BASIC_KEY_TYPES, _WHOLES, basic_key_parts, eager_output, eager_view,
                          plain_eager)
from .math import cast, where
from .nonzero import argwhere, nonzero  # noqa: F401  (public here, as in PyTorch's docs)
from .shape import expand, reshape, slice_dims
from .views import make_view, view_strides
from .writes import check_inplace, check_no_overlap, commit_inplace, may_overlap

_SLICE, _RESHAPE = P[Op.SLICE], P[Op.RESHAPE]


def _sequence_as_tuple(key) -> bool:
    """PyTorch's rule (``treatSequenceAsTuple``, NumPy's before 1.23): a list of fewer than
    32 items holding a tensor, array, sequence, slice, None or Ellipsis is a tuple of
    indices, so ``x[[rows, cols]]`` is ``x[rows, cols]``; a list of ints is one index."""
    return type(key) is list and len(key) < 32 and any(
        isinstance(k, (Tensor, np.ndarray, list, tuple, slice)) or k is None or k is Ellipsis
        for k in key)


def _expand_key(x: Tensor, key) -> tuple:
    """The key as a tuple with any Ellipsis replaced by full slices."""
    if _sequence_as_tuple(key):
        key = tuple(key)
    elif not isinstance(key, tuple):
        key = (key,)
    n_real = 0  # dims the key consumes; a boolean mask covers as many dims as it has
    for k in key:
        if k is None or k is Ellipsis:
            continue
        if isinstance(k, (Tensor, np.ndarray)) and np.dtype(_np_dtype(k)) == np.bool_:
            n_real += max(k.ndim, 1)
        else:
            n_real += 1
    if sum(1 for k in key if k is Ellipsis) > 1:
        raise IndexError("index: an index can only have a single ellipsis ('...')")
    ndim = x._data.ndim
    if n_real > ndim:
        if ndim == 0 and len(key) == 1 and type(key[0]) is int and key[0] in (0, -1):
            # PyTorch 0.3 reductions returned shape (1,), so old scripts read ``loss.data[0]``;
            # PyTorch 0.4 allowed it with this warning. Keep those scripts running.
            warnings.warn("invalid index of a 0-dim tensor: use tensor.item() to get a Python "
                          "number (indexing a 0-dim tensor with [0] is a PyTorch 0.3 idiom)",
                          UserWarning, stacklevel=3)
            return ()
        raise IndexError(f"index: too many indices for tensor of dimension {ndim} "
                         f"(shape {tuple(x.shape)}, key {key!r})")
    for i, k in enumerate(key):
        if k is Ellipsis:
            return key[:i] + (slice(None),) * (ndim - n_real) + key[i + 1:]
    return key


def _np_dtype(k):
    d = k._data.dtype if isinstance(k, Tensor) else k.dtype
    return d


def _index_tensor(k, dim_size: int | None):
    """An advanced index as an int64/bool tensor (lists and arrays are converted)."""
    if isinstance(k, Tensor):
        t = k
    else:
        arr = np.asarray(k)
        if arr.dtype.kind not in "biu":
            if arr.size == 0:
                arr = arr.astype(np.int64)
            else:
                raise IndexError(f"index: tensors used as indices must be long, int, byte or "
                                 f"bool, got {arr.dtype}")
        t = tensor(arr)
    kind = t._data.dtype.kind
    if kind not in "biu":
        raise IndexError(f"index: tensors used as indices must be long, int, byte or bool "
                         f"tensors, got {t.dtype} (shape {tuple(t.shape)})")
    if t._data.dtype == np.uint8:
        t = cast(t, np.bool_)  # legacy ByteTensor masks
    return t


def _check_int(i: int, size: int, dim: int) -> int:
    if not -size <= i < size:
        raise IndexError(f"index {i} is out of bounds for dimension {dim} with size {size}")
    return i + size if i < 0 else i


def getitem(x: Tensor, key) -> Tensor:
    """``x[key]``: a view for a key of ints, slices, None and Ellipsis (basic indexing), a
    gather (INDEX) for one with index tensors, arrays, lists or masks (advanced indexing)."""
    if not plain_eager(x):
        return _getitem(x, key)
    # NOTE (eager view fast paths) in eager_views.py: the view _getitem makes for a basic key
    data = x._data
    shape = data.shape
    if type(key) is int and shape and -shape[0] <= key < shape[0]:   # x[i], the most common
        n = shape[0]
        i = key + n if key < 0 else key
        index, out_shape, sliced = (slice(i, i + 1),) + _WHOLES[len(shape) - 1], shape[1:], n != 1
    else:
        parts = basic_key_parts(shape, key)
        if parts is None:
            out = _eager_take(x, key) if type(key) is Tensor else None
            return out if out is not None else _getitem(x, key)
        index, out_shape, sliced = parts
    if x._requires_grad and _grad_state.enabled:   # the general path's nodes, one per op
        y = eager_output(x, data[index], _SLICE, {"index": index}) if sliced else x
        if out_shape != y._data.shape:
            y = eager_output(y, y._data.reshape(out_shape), _RESHAPE, {"shape": out_shape})
        return x if y is x else make_view(x, y, basic_getitem, (index, out_shape))
    value = data[index] if sliced else data
    if out_shape != value.shape:
        value = value.reshape(out_shape)
    elif not sliced:
        return x
    return eager_view(x, value, None, None, basic_getitem, (index, out_shape))


@untraced   # NOTE (untraced stretches) in tracegrad/_untraced.py
def _getitem(x: Tensor, key) -> Tensor:
    key = _expand_key(x, key)
    if any(isinstance(k, (Tensor, np.ndarray, list)) or isinstance(k, bool) for k in key):
        return _advanced_getitem(x, key)
    shape = tuple(x._data.shape)
    index, out_shape, dim = [], [], 0
    for k in key:
        if k is None:
            out_shape.append(1)
            continue
        size = shape[dim]
        if isinstance(k, slice):
            if k.step == 0:
                raise ValueError("index: slice step cannot be zero")
            index.append(k)
            # (slice_length for a compile guard trace's symbolic size; inline: the hot path)
            out_shape.append(len(range(*k.indices(size))) if type(size) is int
                             else slice_length(k, size))
        elif isinstance(k, numbers.Integral):
            i = _check_int(int(k), size, dim)
            index.append(slice(i, i + 1))
        else:
            raise IndexError(f"index: unsupported index {k!r} of type {type(k).__name__}")
        dim += 1
    index += [slice(None)] * (len(shape) - dim)
    out_shape += list(shape[dim:])
    index, out_shape = tuple(index), tuple(out_shape)
    # One view of x, not a chain of two (the cheap path for x[i]): basic indexing only
    # slices and adds or drops size-1 dims, which never needs a copy.
    y = x
    if not all((s.indices(n) if type(n) is int else slice_indices(s, n)) == (0, n, 1)
               for s, n in zip(index, shape)):
        y = apply(P[Op.SLICE], (y,), {"index": index})
    if out_shape != tuple(y._data.shape):
        y = apply(P[Op.RESHAPE], (y,), {"shape": out_shape})
    if y is x:
        return x
    return make_view(x, y, basic_getitem, (index, out_shape), _basic_index_strides)


_TAKE_SPEC = (TENSOR,)


def _eager_take(x: Tensor, key: Tensor):
    """``_getitem(x, key)`` on the eager fast path (NOTE (eager view fast paths) in
    eager_views.py) for one index tensor of ints (not uint8: a legacy mask) or one boolean
    mask of x's leading shape, at least 1-d: the same INDEX value and node; None where the
    general path must decide (it raises the op's error)."""
    index = key._data
    if type(index) is not np.ndarray or key._device is not CPU or key._requires_grad is None \
            or not index.ndim or not x._data.ndim:
        return None
    kind = index.dtype.kind
    if kind == "b":
        if index.shape != x._data.shape[:index.ndim]:
            return None
    elif kind not in "iu" or index.dtype == np.uint8:
        return None
    try:
        data = x._data[(index,)]
    except IndexError:
        return None
    return eager_output(x, data, PRIM_INDEX, {"spec": _TAKE_SPEC}, (x, key))


def basic_getitem(x: Tensor, index: tuple, out_shape: tuple) -> Tensor:
    """``x[key]`` for a key of slices, ints and None, given as the per-dim slices and the
    resulting shape (a view)."""
    return reshape(slice_dims(x, index), out_shape)


def _basic_index_strides(x: Tensor, index: tuple, out_shape: tuple):
    sizes = tuple(len(range(*s.indices(d))) if type(d) is int else slice_length(s, d)
                  for s, d in zip(index, x._data.shape))
    sliced = tuple(st * (s.step or 1) for st, s in zip(element_strides(x._data), index))
    return view_strides(sizes, sliced, out_shape)


def _spec_and_indices(x: Tensor, key):
    spec, indices, dim = [], [], 0
    for k in key:
        if k is None or k is Ellipsis or isinstance(k, slice):
            spec.append(k)
            if isinstance(k, slice):
                dim += 1
            continue
        if isinstance(k, numbers.Integral) and not isinstance(k, bool):
            spec.append(_check_int(int(k), x._data.shape[dim], dim))
            dim += 1
            continue
        if isinstance(k, bool):
            k = np.array(k)
        t = _index_tensor(k, None)
        if t._data.dtype == np.bool_:
            mshape = tuple(t.shape)
            target = tuple(x._data.shape[dim:dim + len(mshape)])
            if mshape != target:
                raise IndexError(f"index: the shape of the mask {mshape} at index {dim} does "
                                 f"not match the shape of the indexed tensor {target}")
            dim += max(len(mshape), 1)
        else:
            size = x._data.shape[dim] if dim < x._data.ndim else 0
            data = t._data
            if isinstance(data, np.ndarray) and data.size and (data.max() >= size or data.min() < -size):
                bad = int(data.max()) if data.max() >= size else int(data.min())
                raise IndexError(f"index {bad} is out of bounds for dimension {dim} with size {size}")
            dim += 1
        spec.append(TENSOR)
        indices.append(t)
    return tuple(spec), indices


def _advanced_getitem(x: Tensor, key) -> Tensor:
    spec, indices = _spec_and_indices(x, key)
    return apply(PRIM_INDEX, (x,) + tuple(indices), {"spec": spec})


def setitem(x: Tensor, key, value) -> None:
    if not x._requires_grad and plain_eager(x) and _eager_setitem(x, key, value):
        return
    check_inplace(x, "__setitem__", overlap=False)
    key = _expand_key(x, key)
    if type(x._data) is np.ndarray and all(
            k is None or isinstance(k, (slice, numbers.Integral)) for k in key):
        # the selection must hold each element once (NOTE (overlapping writes)); with
        # index tensors PyTorch allows it (index_put_ on an expanded tensor: a warning)
        try:
            selected = x._data[key]
        except IndexError:
            selected = None   # (out of range: the write below says so)
        if selected is not None:
            check_no_overlap(np.asarray(selected), "__setitem__")
            if selected.size and (0 in x._data.strides or may_overlap(x)) and \
                    any(k != slice(None) for k in key):
                # x may hold elements more than once, its selection does not: write that
                # (whole-x write-back put the old values back over the new ones, and
                # its history counted an element's gradient once per copy)
                setitem(getitem(x, key), Ellipsis, value)
                return
    if not isinstance(value, Tensor):
        value = tensor(np.asarray(value), dtype=x.dtype)
    elif value._data.dtype != x._data.dtype:
        value = cast(value, x._data.dtype)
    spec, indices = _spec_and_indices(x, key)
    if not (value._requires_grad or x._requires_grad or is_tracing()):
        try:
            x._data[build_key(spec, [i._data for i in indices])] = value._data
        except ValueError as e:
            raise ShapeError(f"__setitem__: cannot assign a value of shape "
                             f"{tuple(value.shape)} to a selection of a tensor of shape "
                             f"{tuple(x.shape)}: {e}") from None
        x._version[0] += 1
        return
    commit_inplace(x, lambda base: apply(PRIM_INDEX_PUT, (base, value) + tuple(indices),
                                         {"spec": spec, "accumulate": False}))


_EXACT = 2 ** 53


def _eager_setitem(x: Tensor, key, value) -> bool:
    """``setitem(x, key, value)`` on the eager fast path (NOTE (eager view fast paths) in
    eager_views.py) for an ``x`` that records no history: a key of ints, slices, None and
    Ellipsis into a C-contiguous ``x`` (no element held twice: NOTE (overlapping writes)),
    a tensor of x's dtype without history or a float (or an int that a float64 holds
    exactly) into a floating ``x`` (NumPy's cast then is the general path's: one rounding).
    The same checks, the same NumPy write, the same version bump; False where the general
    path must decide (it raises the op's error)."""
    data = x._data
    if not data.flags.c_contiguous:
        return False
    for k in key if type(key) is tuple else (key,):
        if type(k) not in _BASIC_KEY_TYPES:
            return False
    if type(value) is Tensor:
        source = value._data
        if value._requires_grad or type(source) is not np.ndarray or value._device is not CPU \
                or source.dtype != data.dtype:
            return False
    elif (type(value) is float or type(value) is int and -_EXACT <= value <= _EXACT) \
            and data.dtype.kind == "f":
        source = value
    else:
        return False
    check_inplace(x, "__setitem__", overlap=False)
    try:
        data[key] = source
    except (IndexError, ValueError, TypeError):
        return False   # (NumPy checks before it writes)
    x._version[0] += 1
    return True


def gather(x: Tensor, dim: int, index: Tensor, *, sparse_grad=False) -> Tensor:
    d = _wrap_dim(dim, x._data.ndim, "gather")
    return apply(P[Op.GATHER], (x, _index_tensor(index, None)), {"dim": d})


def take_along_dim(x: Tensor, indices: Tensor, dim: int) -> Tensor:
    return gather(x, dim, indices)


def scatter_add(x: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    d = _wrap_dim(dim, x._data.ndim, "scatter_add")
    return apply(P[Op.SCATTER_ADD], (x, _index_tensor(index, None), src), {"dim": d})


def scatter(x: Tensor, dim: int, index: Tensor, src=None, value=None, reduce=None) -> Tensor:
    """Out-of-place ``scatter``: ``out[index[i][j]][j] = src[i][j]`` (dim 0)."""
    if src is None:
        src = value
    if not isinstance(src, Tensor):
        src = full(tuple(index.shape), src, dtype=x.dtype)
    elif src._data.dtype != x._data.dtype:   # (PyTorch's check; the write used to cast)
        raise RuntimeError(f"scatter(): Expected self.dtype to be equal to src.dtype, got "
                           f"self {describe(x)} and src {describe(src)}")
    if reduce == "add":
        return scatter_add(x, dim, index, src)
    d = _wrap_dim(dim, x._data.ndim, "scatter")
    index = _index_tensor(index, None)
    if index.ndim != x.ndim:
        raise ShapeError(f"scatter: index {describe(index)} must have the same rank as self "
                         f"{describe(x)}")
    check_no_larger("scatter", tuple(index.shape), tuple(x.shape), d, "self")
    check_no_larger("scatter", tuple(index.shape), tuple(src.shape), None, "src")
    # Build the full index tuple for INDEX_PUT: grids everywhere except `dim`.
    grids = np.indices(tuple(index.shape), sparse=True)
    spec, idx = [], []
    for i in range(x._data.ndim):
        spec.append(TENSOR)
        idx.append(index if i == d else tensor(np.broadcast_to(grids[i], tuple(index.shape))))
    box = src[tuple(slice(0, n) for n in index.shape)]
    return apply(PRIM_INDEX_PUT, (x, box) + tuple(idx), {"spec": tuple(spec), "accumulate": False})


def index_select(x: Tensor, dim: int, index: Tensor) -> Tensor:
    d = _wrap_dim(dim, x._data.ndim, "index_select")
    index = _index_tensor(index, None)
    if index._data.ndim > 1:
        raise ShapeError(f"index_select: index must be 0-d or 1-d, got {describe(index._data)}")
    key = (slice(None),) * d + (index.reshape(-1),)
    return getitem(x, key)


def masked_fill(x: Tensor, mask: Tensor, value) -> Tensor:
    if isinstance(value, Tensor):
        value = value.to(x.dtype)
    return where(mask, value, x)


def masked_select(x: Tensor, mask: Tensor) -> Tensor:
    return getitem(expand(x, np.broadcast_shapes(tuple(x.shape), tuple(mask.shape))),
                   expand(_index_tensor(mask, None), np.broadcast_shapes(tuple(x.shape), tuple(mask.shape))))


def index_add(x: Tensor, dim: int, index: Tensor, source: Tensor, alpha=1) -> Tensor:
    d = _wrap_dim(dim, x._data.ndim, "index_add")
    spec = (slice(None),) * d + (TENSOR,)
    src = source if alpha == 1 else source * alpha
    return apply(PRIM_INDEX_PUT, (x, src, _index_tensor(index, None)),
                 {"spec": spec, "accumulate": True})


def index_put(x: Tensor, indices, values, accumulate: bool = False) -> Tensor:
    spec, idx = _spec_and_indices(x, tuple(indices))
    if not isinstance(values, Tensor):
        values = tensor(values, dtype=x.dtype)
    return apply(PRIM_INDEX_PUT, (x, values) + tuple(idx), {"spec": spec, "accumulate": accumulate})


__all__ = ["getitem", "setitem", "gather", "take_along_dim", "scatter_add", "scatter",
           "index_select", "masked_fill", "masked_select", "nonzero", "argwhere",
           "index_add", "index_put"]
