"""Movement primitives: views that change how a buffer is read, never its contents.

RESHAPE, PERMUTE, EXPAND, SLICE (basic slicing with steps), PAD (constant fill) and
WINDOWS (the sliding-window view under convolution and pooling). Eagerly they are NumPy
views where NumPy can make one (PAD copies); in codegen they fold into index math.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .._size import slice_indices, slice_length
from ..codegen.ops import Op
from . import functions as F
from .col2im import windows_vjp
from .registry import ShapeError, primitive, reads_none


def _reshape_shape(x, shape):
    old = tuple(x.shape)
    # math.prod, not np.prod: a compile guard trace's symbolic sizes (NOTE in
    # compiler/symint.py) stay symbolic
    if math.prod(old) != math.prod(shape):
        raise ShapeError(f"reshape: shape {list(shape)} is invalid for input of shape "
                         f"{old} ({math.prod(old)} elements)")
    return tuple(shape), np.dtype(x.dtype)


@primitive(Op.RESHAPE, shape=_reshape_shape, needs=reads_none,
           vjp=lambda g, node: (F.reshape(g, tuple(node.inputs[0].shape)),))
def reshape(x, shape):
    return x.reshape(shape)   # (the method: np.reshape costs ~0.7 us more a call, NumPy 2.4)


def _permute_shape(x, perm):
    shape = tuple(x.shape)
    if sorted(perm) != list(range(len(shape))):
        raise ShapeError(f"permute: {list(perm)} is not a permutation of the {len(shape)} "
                         f"dims of a tensor of shape {shape}")
    return tuple(shape[p] for p in perm), np.dtype(x.dtype)


def _permute_vjp(g, node):
    perm = node.attrs["perm"]
    return (F.permute(g, tuple(int(i) for i in np.argsort(perm))),)


@primitive(Op.PERMUTE, shape=_permute_shape, needs=reads_none, vjp=_permute_vjp)
def permute(x, perm):
    return x.transpose(perm)   # (the method: np.transpose costs ~0.25 us more)


def _expand_shape(x, shape):
    old = tuple(x.shape)
    ok = len(shape) >= len(old) and all(
        o == n or o == 1 for o, n in zip(old[::-1], shape[::-1]))
    if not ok:
        raise ShapeError(f"expand: cannot expand a tensor of shape {old} to {tuple(shape)} "
                         f"(only size-1 dims can grow, and new dims go in front)")
    return tuple(shape), np.dtype(x.dtype)


def _expand_vjp(g, node):
    return (F.sum_to(g, tuple(node.inputs[0].shape)),)


@primitive(Op.EXPAND, shape=_expand_shape, needs=reads_none, vjp=_expand_vjp)
def expand(x, shape):
    return np.broadcast_to(x, shape)


def _slice_shape(x, index):
    shape = tuple(x.shape)
    if len(index) != len(shape):
        raise ShapeError(f"slice: {len(index)} slices for a tensor of rank {len(shape)}")
    # a whole dim (or its flip) keeps its size object: a compile guard trace's symbolic
    # size stays one (NOTE in compiler/symint.py), which slice.indices would make plain
    return tuple(d if s.start is None and s.stop is None and s.step in (None, 1, -1)
                 else slice_length(s, d) for s, d in zip(index, shape)), np.dtype(x.dtype)


def _slice_vjp(g, node):
    return (scatter_slice(g, tuple(node.inputs[0].shape), node.attrs["index"]),)


def scatter_slice(g, shape, index):
    """Place ``g`` (the value of ``zeros(shape)[index]``) into zeros of ``shape``, with
    tensor ops only, so the result stays differentiable.

    Per dim: a negative step is a flip of a positive one; a step s > 1 spreads each element
    over s slots by padding a new trailing axis; then PAD places the run inside the dim.
    """
    for dim, (s, size) in enumerate(zip(index, shape)):
        start, stop, step = slice_indices(s, size)
        n = slice_length(s, size)
        if step == 1 and n == size:
            continue  # this dim was not sliced
        if n == 0:
            return F.full(shape, 0, g._data.dtype, like=g)
        flip = step < 0
        if flip:
            start = start + step * (n - 1)  # the lowest index touched
            step = -step
        if flip:
            g = F.flip(g, dim)
        if step > 1:
            gshape = tuple(g.shape)
            g = F.reshape(g, gshape[:dim + 1] + (1,) + gshape[dim + 1:])  # unsqueeze(dim + 1)
            pads = [(0, 0)] * g._data.ndim
            pads[dim + 1] = (0, step - 1)
            g = F.pad(g, pads)
            g = F.reshape(g, gshape[:dim] + (n * step,) + gshape[dim + 1:])
            g = F.narrow(g, dim, 0, (n - 1) * step + 1)
        pads = [(0, 0)] * g._data.ndim
        pads[dim] = (start, size - start - g.shape[dim])
        g = F.pad(g, pads)
    return g


@primitive(Op.SLICE, shape=_slice_shape, needs=reads_none, vjp=_slice_vjp)
def slice_(x, index):
    return x[index]


def _pad_shape(x, pads, value):
    shape = tuple(x.shape)
    if len(pads) != len(shape):
        raise ShapeError(f"pad: {len(pads)} (before, after) pairs for a tensor of rank {len(shape)}")
    out = tuple(d + b + a for d, (b, a) in zip(shape, pads))
    if any(d < 0 for d in out):
        raise ShapeError(f"pad: padding {pads} leaves a negative size for input shape {shape}")
    return out, np.dtype(x.dtype)


def _pad_vjp(g, node):
    # The adjoint of padding by (b, a) is padding by (-b, -a): positive amounts were
    # added and are cropped away, negative amounts were cropped and come back as zeros.
    return (F.pad(g, [(-b, -a) for b, a in node.attrs["pads"]]),)


@primitive(Op.PAD, shape=_pad_shape, needs=reads_none, vjp=_pad_vjp)
def pad(x, pads, value):
    if all(b >= 0 and a >= 0 for b, a in pads):
        return np.pad(x, pads, mode="constant", constant_values=value)
    # NOTE: negative amounts crop. Output element j of a dim reads input j - before (the
    # value where that is outside the input), as the shape rule and codegen's masked view
    # say: a crop larger than the dim (conv_transpose's inner pad, d*(k-1) - padding)
    # must not come back as padding (cropping then padding gave size 1 for
    # pads (-2, 1) of size 1, where the shape rule says 0)
    out_shape, _ = _pad_shape(x, pads, value)
    out = np.full(out_shape, value, dtype=x.dtype)
    dst, src = [], []
    for d, n, (b, _) in zip(x.shape, out_shape, pads):
        lo, hi = max(b, 0), min(n, d + b)
        if hi <= lo:
            return out   # nothing of the input lands in the result
        dst.append(slice(lo, hi))
        src.append(slice(lo - b, hi - b))
    out[tuple(dst)] = x[tuple(src)]
    return out


def windows_shape(x, window, stride, dilation):
    shape = tuple(x.shape)
    k = len(window)
    lead, spatial = shape[:-k], shape[-k:]
    out = []
    for size, w, s, d in zip(spatial, window, stride, dilation):
        span = d * (w - 1) + 1
        if size < span:
            raise ShapeError(f"windows: a window of {w} (dilation {d}) does not fit in a "
                             f"dimension of size {size} (input shape {shape})")
        out.append((size - span) // s + 1)
    return lead + tuple(out) + tuple(window), np.dtype(x.dtype)


@primitive(Op.WINDOWS, shape=windows_shape, needs=reads_none, vjp=windows_vjp)
def windows(x, window, stride, dilation):
    out_shape, _ = windows_shape(x, window, stride, dilation)
    k = len(window)
    strides = x.strides
    lead_strides, spatial_strides = strides[:-k], strides[-k:]
    new_strides = (lead_strides + tuple(st * s for st, s in zip(spatial_strides, stride))
                   + tuple(st * d for st, d in zip(spatial_strides, dilation)))
    return as_strided(x, out_shape, new_strides, writeable=False)
