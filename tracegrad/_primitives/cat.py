"""CAT: concatenation along one dim (its gradient is one SLICE per input)."""
from __future__ import annotations

import numpy as np

from ..codegen.ops import Op
from . import functions as F
from .registry import ShapeError, primitive, reads_none


def _cat_shape(*xs, dim):
    first = tuple(xs[0].shape)
    for i, x in enumerate(xs[1:], 1):
        shape = tuple(x.shape)
        if len(shape) != len(first) or any(a != b for d, (a, b) in enumerate(zip(shape, first))
                                           if d != dim):
            raise ShapeError(f"cat: sizes of tensors must match except in dimension {dim}: "
                             f"tensor 0 has shape {first}, tensor {i} has shape {shape}")
    dtypes = {np.dtype(x.dtype) for x in xs}
    if len(dtypes) != 1:
        raise ShapeError(f"cat: expected tensors of one dtype, got {sorted(d.name for d in dtypes)}")
    total = sum(x.shape[dim] for x in xs)
    return first[:dim] + (total,) + first[dim + 1:], np.dtype(xs[0].dtype)


def _cat_vjp(g, node):
    dim = node.attrs["dim"]
    grads, start = [], 0
    for x, needed in zip(node.inputs, node.needs_grad):
        n = x.shape[dim]
        grads.append(F.narrow(g, dim, start, n) if needed else None)
        start += n
    return tuple(grads)


@primitive(Op.CAT, shape=_cat_shape, needs=reads_none, vjp=_cat_vjp)
def cat(*xs, dim):
    return np.concatenate(xs, axis=dim)
