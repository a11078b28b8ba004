"""MATMUL, gathers and scatters, advanced indexing, and random inputs."""
from __future__ import annotations

import numpy as np

from ..codegen.ops import Op
from .. import _random
from . import functions as F
from .._size import slice_length
from .elementwise import broadcast_sizes
from .registry import ShapeError, describe, primitive, reads_other


def _matmul_shape(a, b):
    sa, sb = tuple(a.shape), tuple(b.shape)
    if len(sa) < 2 or len(sb) < 2 or sa[-1] != sb[-2]:
        raise ShapeError(f"matmul: shapes {sa} and {sb} cannot be multiplied "
                         f"({sa[-1] if sa else '?'} != {sb[-2] if len(sb) > 1 else '?'})")
    try:
        batch = broadcast_sizes([sa[:-2], sb[:-2]])   # (symbolic sizes stay so)
    except ValueError:
        raise ShapeError(f"matmul: batch dims of {sa} and {sb} cannot be broadcast") from None
    if np.dtype(a.dtype) != np.dtype(b.dtype):
        raise ShapeError(f"matmul: expected both operands to have the same dtype, got "
                         f"{describe(a)} and {describe(b)}")
    return batch + (sa[-2], sb[-1]), np.dtype(a.dtype)


def _matmul_vjp(g, node):
    a, b = node.inputs
    ga = gb = None
    if node.needs_grad[0]:
        ga = F.sum_to(F.matmul(g, F.swap_last_two(b)), tuple(a.shape))
    if node.needs_grad[1]:
        gb = F.sum_to(F.matmul(F.swap_last_two(a), g), tuple(b.shape))
    return ga, gb


@primitive(Op.MATMUL, shape=_matmul_shape, needs=reads_other, vjp=_matmul_vjp)
def matmul(a, b):
    return np.matmul(a, b)


def _gather_shape(x, index, dim):
    if np.dtype(index.dtype).kind not in "iu":
        raise ShapeError(f"gather: index must be an integer tensor, got {describe(index)}")
    if len(index.shape) != len(x.shape):
        raise ShapeError(f"gather: index {describe(index)} must have the same rank as "
                         f"input {describe(x)}")
    check_no_larger("gather", index.shape, x.shape, dim, "self")
    return tuple(index.shape), np.dtype(x.dtype)


def check_no_larger(name, index_shape, shape, dim, what) -> None:
    """PyTorch's rule for gather/scatter: ``index`` no larger than ``shape`` in every dim
    (but ``dim``, when ``dim`` is given); NumPy's own error named broadcast shapes."""
    for d, (n, m) in enumerate(zip(index_shape, shape)):
        if d != dim and type(n) is int and type(m) is int and n > m:
            raise ShapeError(f"{name}: Size does not match at dimension {d} expected index "
                             f"{list(index_shape)} to be no larger than {what} {list(shape)}"
                             + ("" if dim is None else f" apart from dimension {dim}"))


def _gather_vjp(g, node):
    x, index = node.inputs
    dim = node.attrs["dim"]
    base = F.full(tuple(x.shape), 0, g._data.dtype, like=g)
    return F.scatter_add(base, index, g, dim), None


@primitive(Op.GATHER, shape=_gather_shape, needs=lambda m: (1,), vjp=_gather_vjp)
def gather(x, index, dim):
    check_no_larger("gather", index.shape, x.shape, dim, "self")   # (before NumPy's error)
    _check_index_range("gather", index, x.shape[dim] if x.ndim else 1)
    # torch.gather lets index be smaller than x outside `dim`: read only that box.
    box = tuple(slice(None) if d == dim else slice(0, n) for d, n in enumerate(index.shape))
    return np.take_along_axis(x[box], index, axis=dim)


def _check_index_range(name, index, size):
    if index.size and (index.min() < -size or index.max() >= size):
        bad = index.max() if index.max() >= size else index.min()
        raise IndexError(f"{name}: index {int(bad)} is out of bounds for a dimension of size {size}")


def _full_index(index, dim):
    """The tuple of index arrays that addresses, along ``dim``, what ``index`` names."""
    grids = list(np.indices(index.shape, sparse=True))
    grids[dim] = index
    return tuple(grids)


def _scatter_add_shape(base, index, src, dim):
    if len(index.shape) != len(base.shape):
        raise ShapeError(f"scatter_add: index {describe(index)} must have the same rank as "
                         f"self {describe(base)}")
    check_no_larger("scatter_add", index.shape, base.shape, dim, "self")
    check_no_larger("scatter_add", index.shape, src.shape, None, "src")
    return tuple(base.shape), np.dtype(base.dtype)


def _scatter_add_vjp(g, node):
    base, index, src = node.inputs
    dim = node.attrs["dim"]
    gsrc = F.gather(g, index, dim) if node.needs_grad[2] else None
    if gsrc is not None and tuple(gsrc.shape) != tuple(src.shape):
        gsrc = F.pad(gsrc, [(0, s - n) for s, n in zip(src.shape, gsrc.shape)])
    return g, None, gsrc


@primitive(Op.SCATTER_ADD, shape=_scatter_add_shape, needs=lambda m: (1,), vjp=_scatter_add_vjp)
def scatter_add(base, index, src, dim):
    _scatter_add_shape(base, index, src, dim)   # (before NumPy's error)
    _check_index_range("scatter_add", index, base.shape[dim] if base.ndim else 1)
    out = np.array(base, copy=True)
    src_part = src[tuple(slice(0, n) for n in index.shape)]
    np.add.at(out, _full_index(index, dim), src_part)
    return out


# ---- advanced indexing ----------------------------------------------------------------
# ``spec`` is the user's key with each index tensor replaced by the marker TENSOR; the
# index arrays themselves are inputs, so a traced graph reads them at every call.

TENSOR = "<tensor>"


def build_key(spec, indices):
    it = iter(indices)
    return tuple(next(it) if k is TENSOR else k for k in spec)


def _index_shape(x, *indices, spec):
    sizes = (*x.shape, *(d for i in indices for d in i.shape))
    if not all(type(d) is int for d in sizes):
        # a compile guard trace's symbolic sizes (NOTE (no int underneath) in
        # compiler/symint.py): NumPy's probe below would read them through __index__, an
        # escape, and every new size would retrace
        shape = _advanced_index_shape(tuple(x.shape), [i.shape for i in indices],
                                      [np.dtype(i.dtype) for i in indices], spec)
        if shape is not None:
            return shape, np.dtype(x.dtype)
    # Index a zero-strided stand-in of x's shape: NumPy then applies its own rules.
    probe = np.broadcast_to(np.zeros((), np.bool_), tuple(x.shape))
    fake = [np.ones(tuple(i.shape), np.bool_) if np.dtype(i.dtype) == np.bool_
            else np.zeros(tuple(i.shape), np.int64) for i in indices]
    try:
        return tuple(probe[build_key(spec, fake)].shape), np.dtype(x.dtype)
    except IndexError as e:
        raise ShapeError(f"index: {e} (indexing a tensor of shape {tuple(x.shape)})") from None


_ADVANCED = object()   # where an advanced index stood, in ``_advanced_index_shape``
_GAP = object()        # where an Ellipsis of no dims stood


def _advanced_index_shape(shape: tuple, index_shapes, index_dtypes, spec):
    """NumPy's result shape for ``x[key]`` (``key`` from ``spec``, its TENSOR entries
    integer arrays of ``index_shapes``) in Python, so the sizes stay the objects they were
    (``broadcast_sizes``); None where the key holds what this does not follow (a boolean
    mask, an entry of another kind, too many indices: NumPy's probe then decides).  The
    integers in ``spec`` are already checked against their dims (``_spec_and_indices``)."""
    if any(dt == np.bool_ for dt in index_dtypes) or list(spec).count(Ellipsis) > 1:
        return None
    entries = list(spec)
    consumed = sum(1 for k in entries if k is not None and k is not Ellipsis)
    if consumed > len(shape):
        return None
    at = entries.index(Ellipsis) if Ellipsis in entries else len(entries)
    # (an Ellipsis of no dims still parts two advanced indices, as in NumPy)
    entries[at:at + 1] = [slice(None)] * (len(shape) - consumed) or [_GAP] * (at < len(entries))
    has_array = TENSOR in entries
    arrays = iter(index_shapes)
    out: list = []
    advanced: list = []
    dim = 0
    for k in entries:
        if k is None or k is _GAP:
            out.append(1 if k is None else _GAP)
            continue
        size, dim = shape[dim], dim + 1
        if k is TENSOR:
            advanced.append(tuple(next(arrays)))
        elif isinstance(k, slice):
            out.append(slice_length(k, size))
            continue
        elif type(k) is int:
            if not has_array:
                continue        # a plain integer index drops its dim
            advanced.append(())  # (with arrays, an integer is one more advanced index)
        else:
            return None
        out.append(_ADVANCED)
    if not advanced:
        return tuple(d for d in out if d is not _GAP)
    try:
        middle = list(broadcast_sizes(advanced))
    except ValueError:
        return None
    first = out.index(_ADVANCED)
    last = len(out) - out[::-1].index(_ADVANCED)
    rest = [d for d in out if d is not _ADVANCED and d is not _GAP]
    if out[first:last].count(_ADVANCED) == last - first:   # adjacent: they stay in place
        before = first - out[:first].count(_GAP)
        return tuple(rest[:before] + middle + rest[before:])
    return tuple(middle + rest)   # NumPy puts them first


def _index_vjp(g, node):
    x = node.inputs[0]
    base = F.full(tuple(x.shape), 0, g._data.dtype, like=g)
    grad = F.index_put(base, g, node.inputs[1:], node.attrs["spec"], True)
    return (grad,) + (None,) * (len(node.inputs) - 1)


PRIM_INDEX = primitive(Op.INDEX, shape=_index_shape, needs=lambda m: tuple(range(1, len(m))),
                       vjp=_index_vjp)(lambda x, *indices, spec: x[build_key(spec, indices)])


def _index_put_shape(base, values, *indices, spec, accumulate):
    return tuple(base.shape), np.dtype(base.dtype)


def _index_put_vjp(g, node):
    base, values, *indices = node.inputs
    spec, accumulate = node.attrs["spec"], node.attrs["accumulate"]
    gbase = gvalues = None
    if node.needs_grad[0]:
        if accumulate:
            gbase = g
        else:
            gbase = F.index_put(g, F.full((), 0, g._data.dtype, like=g), indices, spec, False)
    if node.needs_grad[1]:
        picked = F.index(g, indices, spec)
        gvalues = F.sum_to(picked, tuple(values.shape))
    return (gbase, gvalues) + (None,) * len(indices)


def _index_put(base, values, *indices, spec, accumulate):
    out = np.array(base, copy=True)
    key = build_key(spec, indices)
    if accumulate:
        np.add.at(out, key, values)
    else:
        out[key] = values
    return out


PRIM_INDEX_PUT = primitive(Op.INDEX_PUT, shape=_index_put_shape,
                           needs=lambda m: tuple(range(2, len(m))),
                           vjp=_index_put_vjp)(_index_put)


# ---- random inputs ----------------------------------------------------------------------

def _random_shape(shape, dtype):
    return tuple(shape), np.dtype(dtype)


@primitive(Op.RAND, shape=_random_shape)
def rand(shape, dtype):
    return _random.default_generator.numpy.random(shape, dtype=np.float64).astype(dtype, copy=False)


@primitive(Op.RANDN, shape=_random_shape)
def randn(shape, dtype):
    return _random.default_generator.numpy.standard_normal(shape).astype(dtype, copy=False)
