"""Views and shape manipulation: reshape/view, permute, transpose, squeeze, expand,
flatten, narrow, select, diagonal, split, cat/stack, repeat, flip, pad. All are
compositions of the movement primitives (RESHAPE, PERMUTE, EXPAND, SLICE, PAD) and CAT.
The ones PyTorch documents as views return views (NOTE (views) in views.py)."""
from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .._dispatch import apply
from .._dtype import promote_types
from .._numpy_aliases import NOT_GIVEN, from_numpy_names
from .._primitives import PRIMITIVES as P
from .._primitives.linalg_index import PRIM_INDEX, TENSOR
from .._primitives.registry import ShapeError
from .._size import slice_indices
from .._tensor import Tensor, _wrap_dim, element_strides
from ..codegen.ops import Op
from .creation import tensor
from .eager_views import _WHOLES, eager_expand, eager_reshape, eager_view, plain_eager
from .math import cast, to_dtype
from .strided import diagonal_view
from .views import make_view, view_strides

_PERMUTE, _SLICE = P[Op.PERMUTE], P[Op.SLICE]


def _sizes(args) -> tuple:
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    for a in args:
        if type(a) is not int:
            break
    else:
        return tuple(args)   # (plain ints, the common case: the same tuple)
    # an int stays the object it is: a compile guard trace's symbolic size (NOTE in
    # compiler/symint.py) keeps following s0
    return tuple(a if isinstance(a, int) and not isinstance(a, bool) else int(a) for a in args)


def _infer_shape(shape: tuple, numel: int, op: str) -> tuple:
    if shape == (-1,):
        return (numel,)   # (flatten: the common case)
    if -1 in shape:
        if shape.count(-1) > 1:
            raise ShapeError(f"{op}: only one dimension can be inferred (-1), got "
                             f"{list(shape)}")
        known = 1
        for d in shape:
            if d != -1:
                known *= d
        if known == 0 or numel % known:
            raise ShapeError(f"{op}: shape {list(shape)} is invalid for input of size {numel}")
        shape = tuple(numel // known if d == -1 else d for d in shape)
    return shape


def reshape(x: Tensor, *shape) -> Tensor:
    """A view of ``x`` where its strides allow one, else a copy (as in PyTorch)."""
    shape = _infer_shape(_sizes(shape), x.numel(), "reshape")
    if len(shape) == len(x._data.shape) and shape == tuple(x._data.shape):
        return x
    out = eager_reshape(x, shape, reshape)
    return out if out is not None else _reshaped(x, shape)


def _reshaped(x: Tensor, shape: tuple) -> Tensor:
    """``x`` as ``shape`` (all sizes known, not ``x``'s own): a view where ``x``'s strides
    allow one, else a copy."""
    out = apply(P[Op.RESHAPE], (x,), {"shape": shape})
    if not _viewable(x, shape):
        # NumPy copied, as PyTorch does. (A trace sees a RESHAPE node, and refuses a write
        # into it as one into a view: the call runs eagerly. Cloning it in the trace to
        # allow the write broke the im2col copy runs of tests/test_cnn_im2col_runs.py.)
        return out
    # (a view in the trace exactly where it is one eagerly: the trace knows the argument's
    # layout, NOTE (layout signatures) in compiler/layouts.py)
    return make_view(x, out, reshape, (shape,), _reshaped_strides)


def _viewable(x: Tensor, shape: tuple) -> bool:
    """Whether ``x`` can be seen as ``shape`` without a copy (PyTorch's rule)."""
    data = x._data
    if type(data) is np.ndarray:
        if data.flags.c_contiguous:
            return True
    elif getattr(data, "strides", None) is None:
        return True
    return view_strides(data.shape, element_strides(data), shape) is not None


def _reshaped_strides(x: Tensor, shape: tuple):
    return view_strides(x._data.shape, element_strides(x._data), shape)


def view(x: Tensor, *shape) -> Tensor:
    """A view with another shape; raises where ``x``'s strides allow none (PyTorch's rule)."""
    if len(shape) == 1 and type(shape[0]) is not int and not isinstance(
            shape[0], (tuple, list, numbers.Integral)):
        return to_dtype(x, shape[0])
    data = x._data
    sizes = _infer_shape(_sizes(shape), data.size, "view")
    if sizes == data.shape:
        return x
    if type(data) is np.ndarray and data.flags.c_contiguous:
        out = eager_reshape(x, sizes, reshape)
        if out is not None:
            return out
    if (type(data) is not np.ndarray or not data.flags.c_contiguous) and not _viewable(x, sizes):
        raise RuntimeError(
            f"view size is not compatible with input tensor's size and stride (at least one "
            f"dimension spans across two contiguous subspaces). Use .reshape(...) instead. "
            f"(input shape {tuple(x.shape)}, stride {x.stride()}, view size {list(sizes)})")
    out = apply(P[Op.RESHAPE], (x,), {"shape": sizes})
    return make_view(x, out, reshape, (sizes,), _reshaped_strides)


def view_as(x: Tensor, other: Tensor) -> Tensor:
    return view(x, tuple(other.shape))


def reshape_as(x: Tensor, other: Tensor) -> Tensor:
    return reshape(x, tuple(other.shape))


def permute(x: Tensor, *dims) -> Tensor:
    dims = _sizes(dims)
    n = x._data.ndim
    if len(dims) != n:
        raise ShapeError(f"permute: number of dims {len(dims)} doesn't match the tensor's "
                         f"rank {n} (shape {tuple(x.shape)})")
    perm = tuple([d if 0 <= d < n else _wrap_dim(d, n, "permute") for d in dims])
    if perm == tuple(range(n)):
        return x
    return _permuted(x, perm)


def _permuted(x: Tensor, perm: tuple) -> Tensor:
    """The PERMUTE view for a checked, non-identity ``perm``."""
    if plain_eager(x):   # NOTE (eager view fast paths)
        try:
            data = x._data.transpose(perm)
        except ValueError:
            data = None   # (a repeated dim: the general path raises the op's error)
        if data is not None:
            return eager_view(x, data, _PERMUTE, {"perm": perm}, _permuted, (perm,))
    out = apply(P[Op.PERMUTE], (x,), {"perm": perm})
    return make_view(x, out, _permuted, (perm,), _permuted_strides)


def _permuted_strides(x: Tensor, perm: tuple) -> tuple:
    strides = element_strides(x._data)
    return tuple(strides[p] for p in perm)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    n = x._data.ndim
    if n == 0:
        return x
    d0 = dim0 if 0 <= dim0 < n else _wrap_dim(dim0, n, "transpose")
    d1 = dim1 if 0 <= dim1 < n else _wrap_dim(dim1, n, "transpose")
    if d0 == d1:
        return x
    if n == 2:
        return _permuted(x, _SWAP_2D)
    perm = list(range(n))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return _permuted(x, tuple(perm))


_SWAP_2D = (1, 0)


def t(x: Tensor) -> Tensor:
    n = x._data.ndim
    if n > 2:
        raise ShapeError(f"t(): expects a tensor with <= 2 dimensions, got shape {tuple(x.shape)}")
    return _permuted(x, _SWAP_2D) if n == 2 else x


def movedim(x: Tensor, source, destination) -> Tensor:
    n = x._data.ndim
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [_wrap_dim(s, n, "movedim") for s in src]
    dst = [_wrap_dim(d, n, "movedim") for d in dst]
    order = [d for d in range(n) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(x, order)


def squeeze(x: Tensor, dim=None, *, axis=NOT_GIVEN) -> Tensor:
    if axis is not NOT_GIVEN:
        dim, _ = from_numpy_names("squeeze", dim, False, axis, NOT_GIVEN)
    shape = tuple(x._data.shape)
    if dim is None:
        new = tuple(d for d in shape if d != 1)
    elif type(dim) is int and shape:   # (one dim, the common case)
        d = dim if 0 <= dim < len(shape) else _wrap_dim(dim, len(shape), "squeeze")
        new = shape[:d] + shape[d + 1:] if shape[d] == 1 else shape
    else:
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        axes = {_wrap_dim(d, len(shape), "squeeze") for d in dims} if shape else set()
        new = tuple(d for i, d in enumerate(shape) if not (i in axes and d == 1))
    out = eager_reshape(x, new, reshape) if new != shape else None
    return out if out is not None else reshape(x, new)


def unsqueeze(x: Tensor, dim: int = NOT_GIVEN, *, axis=NOT_GIVEN) -> Tensor:
    if dim is NOT_GIVEN or axis is not NOT_GIVEN:
        dim, _ = from_numpy_names("unsqueeze", dim, False, axis, NOT_GIVEN, NOT_GIVEN)
    n = x._data.ndim + 1
    d = _wrap_dim(dim, n, "unsqueeze")
    shape = list(x._data.shape)
    shape.insert(d, 1)
    shape = tuple(shape)
    out = eager_reshape(x, shape, reshape)
    return out if out is not None else reshape(x, shape)


def expand(x: Tensor, *sizes) -> Tensor:
    sizes = _sizes(sizes)
    old = tuple(x._data.shape)
    lead = len(sizes) - len(old)
    if lead < 0:
        raise ShapeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater "
                         f"or equal to the number of dimensions in the tensor ({len(old)})")
    shape = sizes if -1 not in sizes else tuple(
        old[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
    if shape == old:
        return x
    out = eager_expand(x, shape, lead, expand)
    if out is not None:
        return out
    out = apply(P[Op.EXPAND], (x,), {"shape": shape})
    data = x._data
    if type(out._data) is np.ndarray and type(data) is np.ndarray and data.flags.writeable:
        # np.broadcast_to is read-only; a write into a part of the expanded tensor that
        # holds each element once lands in x (NOTE (overlapping writes) in writes.py)
        out._data = as_strided(data, out._data.shape, out._data.strides)
    return make_view(x, out, expand, (shape,), _expanded_strides)


def _expanded_strides(x: Tensor, shape: tuple) -> tuple:
    old, strides = tuple(x._data.shape), element_strides(x._data)
    lead = len(shape) - len(old)
    return tuple(0 if i < lead or old[i - lead] != n else strides[i - lead]
                 for i, n in enumerate(shape))


def expand_as(x: Tensor, other: Tensor) -> Tensor:
    return expand(x, tuple(other.shape))


def broadcast_to(x: Tensor, shape) -> Tensor:
    return expand(x, tuple(shape))


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    shape = tuple(x._data.shape)
    if not shape:
        return reshape(x, (1,))
    s = _wrap_dim(start_dim, len(shape), "flatten")
    e = _wrap_dim(end_dim, len(shape), "flatten")
    if s > e:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    mid = 1
    for d in shape[s:e + 1]:
        mid *= d
    return reshape(x, shape[:s] + (mid,) + shape[e + 1:])


def unflatten(x: Tensor, dim: int, sizes) -> Tensor:
    shape = tuple(x._data.shape)
    d = _wrap_dim(dim, len(shape), "unflatten")
    sizes = _infer_shape(tuple(sizes), shape[d], "unflatten")
    return reshape(x, shape[:d] + sizes + shape[d + 1:])


def ravel(x: Tensor) -> Tensor:
    return reshape(x, (-1,))


def slice_dims(x: Tensor, index: tuple) -> Tensor:
    """Basic slicing with one ``slice`` per dim: the SLICE primitive, skipped if a no-op."""
    shape = x._data.shape
    if plain_eager(x):   # NOTE (eager view fast paths)
        for s, n in zip(index, shape):
            if s.indices(n) != (0, n, 1):
                break
        else:
            return x
        index = tuple(index)
        return eager_view(x, x._data[index], _SLICE, {"index": index}, slice_dims, (index,))
    if all(slice_indices(s, n) == (0, n, 1) for s, n in zip(index, shape)):
        return x
    index = tuple(index)
    out = apply(P[Op.SLICE], (x,), {"index": index})
    return make_view(x, out, slice_dims, (index,), _sliced_strides)


def _sliced_strides(x: Tensor, index: tuple) -> tuple:
    return tuple(st * (s.step or 1) for st, s in zip(element_strides(x._data), index))


def select(x: Tensor, dim: int, index: int) -> Tensor:
    """``x`` at ``index`` along ``dim``, that dim removed: a view (``x.select(0, i)``
    is ``x[i]``).

    >>> import tracegrad as torch
    >>> x = torch.tensor([[1, 2], [3, 4]]); x.select(1, -1)
    tensor([2, 4])
    >>> x.select(1, -1)._base is x
    True
    """
    shape = tuple(x._data.shape)
    if not shape:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = _wrap_dim(dim, len(shape), "select")
    i = int(index)
    if not -shape[d] <= i < shape[d]:
        raise IndexError(f"select(): index {i} out of range for tensor of size {shape} at "
                         f"dimension {d}")
    i += shape[d] if i < 0 else 0
    picked = slice_dims(x, _WHOLES[d] + (slice(i, i + 1),) + _WHOLES[len(shape) - d - 1])
    # (dropping a size-1 dim is always a view: no layout check on the fast path)
    out = eager_reshape(picked, shape[:d] + shape[d + 1:], reshape, known_view=True)
    return out if out is not None else reshape(picked, shape[:d] + shape[d + 1:])


def diagonal(x: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal of the (dim1, dim2) planes as the last dim, as ``torch.diagonal``; a
    view, as in PyTorch: a slice of the merged plane where ``x``'s layout lets the two dims
    merge (in either order), else a strided view (``x[:, ::2].diagonal()``).

    >>> import tracegrad as torch
    >>> torch.arange(9).reshape(3, 3).diagonal(1)
    tensor([1, 5])
    """
    n = x._data.ndim
    d1, d2 = _wrap_dim(dim1, n, "diagonal"), _wrap_dim(dim2, n, "diagonal")
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    rows, cols = x._data.shape[d1], x._data.shape[d2]
    length = max(0, min(rows + min(offset, 0), cols - max(offset, 0)))
    y = movedim(x, (d1, d2), (n - 2, n - 1))
    lead = tuple(y._data.shape[:-2])
    if length == 0:
        return diagonal_view(x, offset, d1, d2, 0)   # (a reshape might copy: not a view)
    if not _viewable(y, lead + (rows * cols,)):
        if _viewable(movedim(x, (d2, d1), (n - 2, n - 1)), lead + (rows * cols,)):
            # a transposed plane (x.t().diagonal()): its diagonal at offset k is the (d2, d1)
            # diagonal at -k, in the same order, and a view (the reshape below copied, so a
            # write into it was lost)
            return diagonal(x, -offset, d2, d1)
        # the plane's dims merge in neither order (x[:, ::2]): NOTE (strided views)
        return diagonal_view(x, offset, d1, d2, length)
    start = offset if offset >= 0 else -offset * cols
    flat = reshape(y, lead + (rows * cols,))
    index = (slice(None),) * len(lead) + (slice(start, start + (length - 1) * (cols + 1) + 1,
                                                cols + 1),)
    return slice_dims(flat, index)


def narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    shape = tuple(x._data.shape)
    d = _wrap_dim(dim, len(shape), "narrow")
    start = _as_int(start)   # NOTE (split of a symbolic dim)
    if start < 0:
        start += shape[d]
    if start < 0 or length < 0 or start + length > shape[d]:
        raise IndexError(f"narrow: start {start} + length {length} exceeds dimension {d} of "
                         f"size {shape[d]}")
    return slice_dims(x, _WHOLES[d] + (slice(start, start + length),) + _WHOLES[len(shape) - d - 1])


def split(x: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    size = x._data.shape[_wrap_dim(dim, x._data.ndim, "split")]
    # NOTE (split of a symbolic dim): the sizes may be a compile guard trace's symbolic
    # ones (compiler/symint.py), kept as they are (``int()`` or ``range()`` would read
    # them: an escape, and every size retraced).  Sections given as sizes (``[1, n - 1]``)
    # follow ``s0``; a fixed split size over a symbolic dim gives as many results as
    # ``ceil(s0 / step)``, which no single program has: the loop's comparisons are guards,
    # and the sizes that give the same number of pieces (``split(64)`` of up to 64 rows)
    # share a program, as under PyTorch's dynamic shapes.
    if isinstance(split_size_or_sections, numbers.Integral):
        step = _as_int(split_size_or_sections)
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sections, start = [], 0
        while start < size:
            sections.append(min(step, size - start))
            start = start + step
        sections = sections or [0]
    else:
        sections = [_as_int(s) for s in split_size_or_sections]
        if sum(sections) != size:
            raise ShapeError(f"split: sections {sections} don't add up to the size {size} of "
                             f"dimension {dim}")
    out, start = [], 0
    for n in sections:
        out.append(narrow(x, dim, start, n))
        start += n
    return tuple(out)


def _as_int(v):
    return v if isinstance(v, int) else int(v)   # (a symbolic size is an int: kept)


def chunk(x: Tensor, chunks: int, dim: int = 0, *, axis=NOT_GIVEN) -> tuple:
    if axis is not NOT_GIVEN:
        dim, _ = from_numpy_names("chunk", dim, False, axis, NOT_GIVEN, 0)
    if int(chunks) <= 0:
        raise ValueError(f"chunk: chunks must be a positive integer, got {chunks}")
    size = x._data.shape[_wrap_dim(dim, x._data.ndim, "chunk")]
    step = -(-size // chunks) if size else 1
    return split(x, step, dim)


def tensor_split(x: Tensor, sections: int, dim: int = 0) -> tuple:
    size = x._data.shape[_wrap_dim(dim, x._data.ndim, "tensor_split")]
    base, extra = divmod(size, sections)
    return split(x, [base + (1 if i < extra else 0) for i in range(sections)], dim)


def unbind(x: Tensor, dim: int = 0, *, axis=NOT_GIVEN) -> tuple:
    if axis is not NOT_GIVEN:
        dim, _ = from_numpy_names("unbind", dim, False, axis, NOT_GIVEN, 0)
    d = _wrap_dim(dim, x._data.ndim, "unbind")
    return tuple(squeeze(p, d) for p in split(x, 1, d)) if x._data.shape[d] else ()


def cat(tensors, dim: int = 0) -> Tensor:
    tensors = [t for t in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    # PyTorch skips legacy empty 1-d tensors of shape (0,) in cat.
    ranked = [t for t in tensors if not (t._data.ndim == 1 and t._data.shape[0] == 0)]
    tensors = ranked or tensors[:1]
    d = _wrap_dim(dim, tensors[0]._data.ndim, "cat")
    if len({t._data.dtype for t in tensors}) > 1:
        dt = tensors[0]._data.dtype
        for t in tensors[1:]:
            dt = promote_types(dt, t._data.dtype)
        tensors = [cast(t, dt) for t in tensors]
    if len(tensors) == 1:
        return tensors[0]
    return apply(P[Op.CAT], tuple(tensors), {"dim": d})


concat = cat
concatenate = cat


def stack(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        raise ShapeError(f"stack: expects each tensor to be equal size, got shapes "
                         f"{sorted(shapes)}")
    d = _wrap_dim(dim, tensors[0]._data.ndim + 1, "stack")
    return cat([unsqueeze(t, d) for t in tensors], d)


def hstack(tensors):
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return cat([t if t.ndim > 1 else unsqueeze(t, 0) for t in tensors], 0)


def repeat(x: Tensor, *sizes) -> Tensor:
    sizes = _sizes(sizes)
    shape = tuple(x._data.shape)
    if len(sizes) < len(shape):
        raise ShapeError(f"repeat: number of repeat dims ({len(sizes)}) can not be smaller "
                         f"than the number of tensor dims ({len(shape)})")
    shape = (1,) * (len(sizes) - len(shape)) + shape
    x = reshape(x, shape)
    # Each dim d becomes (repeat_d, size_d): expand a new axis in front, then merge.
    inter = []
    for r, s in zip(sizes, shape):
        inter += [1, s]
    x = reshape(x, tuple(inter))
    expanded = []
    for r, s in zip(sizes, shape):
        expanded += [r, s]
    x = expand(x, tuple(expanded))
    return reshape(x, tuple(r * s for r, s in zip(sizes, shape)))


def tile(x: Tensor, dims) -> Tensor:
    dims = tuple(dims)
    if len(dims) < x._data.ndim:
        dims = (1,) * (x._data.ndim - len(dims)) + dims
    return repeat(x, dims)


def flip(x: Tensor, *dims) -> Tensor:
    """``flip(x, dims)`` with a list/tuple, or ``x.flip(0, 1)`` with varargs like PyTorch.
    A copy, as PyTorch's (it has no negative strides): the reversed slice is a view, and a
    write into it (``y = x.flip(0); y.add_(1)``) changed ``x`` too."""
    dims = _sizes(dims)
    axes = {_wrap_dim(d, x._data.ndim, "flip") for d in dims}
    index = tuple(slice(None, None, -1) if i in axes else slice(None)
                  for i in range(x._data.ndim))
    return clone(slice_dims(x, index))


def pad_dims(x: Tensor, pads, value=0.0) -> Tensor:
    """PAD with one ``(before, after)`` pair per dim; negative amounts crop."""
    pads = tuple((int(b), int(a)) for b, a in pads)
    if all(b == 0 and a == 0 for b, a in pads):
        return x
    return apply(P[Op.PAD], (x,), {"pads": pads, "value": value})


def pad(x: Tensor, pad, mode: str = "constant", value=None) -> Tensor:
    """``torch.nn.functional.pad``: ``pad`` lists (left, right) pairs from the last dim."""
    if len(pad) % 2 or len(pad) // 2 > x._data.ndim:
        raise ShapeError(f"pad: padding length must be even and at most 2 * rank "
                         f"({2 * x._data.ndim}), got {tuple(pad)} for shape {tuple(x.shape)}")
    n = x._data.ndim
    pairs = [(0, 0)] * n
    for i in range(len(pad) // 2):
        pairs[n - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if mode == "constant":
        for d, (b, a) in zip(x.shape, pairs):
            if d + min(b, 0) + min(a, 0) < 0:   # PyTorch's rule: the crops must fit
                raise ShapeError(f"pad: negative padding {tuple(pad)} crops more than the "
                                 f"size {d} of a dim of shape {tuple(x.shape)}")
        return pad_dims(x, pairs, 0.0 if value is None else value)
    if mode in ("replicate", "reflect", "circular"):
        return _pad_by_index(x, pairs, mode)
    raise ValueError(f"pad: unknown mode {mode!r}; expected 'constant', 'reflect', "
                     f"'replicate' or 'circular'")


def _pad_by_index(x: Tensor, pairs, mode: str) -> Tensor:
    for d, (b, a) in enumerate(pairs):
        if b == 0 and a == 0:
            continue
        n = x._data.shape[d]
        if mode == "circular" and (b < 0 or a < 0):
            # PyTorch crops first and wraps around what is left ((-1, 1) of [0, 1, 2]
            # is [1, 2, 1]; wrapping the uncropped dim gave [1, 2, 0])
            x = narrow(x, d, max(-b, 0), n - max(-b, 0) - max(-a, 0))
            n, b, a = x._data.shape[d], max(b, 0), max(a, 0)
        # PyTorch's limits: a reflection needs a mirror inside the dim, a wrap goes once
        limit = n - 1 if mode == "reflect" else n
        if mode != "replicate" and max(b, a) > limit:
            raise ShapeError(f"pad: {mode} padding {pairs[d]} of dim {d} must be at most "
                             f"{limit} for shape {tuple(x.shape)}")
        idx = np.arange(-b, n + a)
        if mode == "replicate":
            idx = np.clip(idx, 0, n - 1)
        elif mode == "circular":
            idx = idx % n
        else:
            period = 2 * (n - 1)
            idx = np.abs(idx) % period
            idx = np.where(idx >= n, period - idx, idx)
        # index_select along d (indexing sits above shape in _ops' order): one INDEX
        x = apply(PRIM_INDEX, (x, tensor(idx)), {"spec": (slice(None),) * d + (TENSOR,)})
    return x


def contiguous(x: Tensor, memory_format=None) -> Tensor:
    """``x`` itself when its layout is contiguous, else a contiguous copy."""
    if x.is_contiguous():
        return x
    out = clone(x)
    if type(out._data) is np.ndarray and not out._data.flags.c_contiguous:
        out._data = np.ascontiguousarray(out._data)  # a fresh output: nothing else holds it
    return out


def clone(x: Tensor, memory_format=None) -> Tensor:
    # CAST to the same dtype is identity-free in NumPy (astype copies), and differentiable.
    return apply(P[Op.CAST], (x,), {"dtype": x._data.dtype})


def swapaxes(x, a, b):
    return transpose(x, a, b)


__all__ = ["reshape", "view", "view_as", "reshape_as", "permute", "transpose", "t", "movedim",
           "squeeze", "unsqueeze", "expand", "expand_as", "broadcast_to", "flatten",
           "unflatten", "ravel", "narrow", "split", "chunk", "tensor_split", "unbind", "cat",
           "concat", "concatenate", "stack", "hstack", "vstack", "repeat", "tile", "flip",
           "pad", "pad_dims", "contiguous", "clone", "swapaxes", "slice_dims", "select",
           "diagonal"]
