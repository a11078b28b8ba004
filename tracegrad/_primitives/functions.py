"""The primitive layer's functions: one thin wrapper per primitive over ``_dispatch.apply``,
and the few helpers built only from them (``sum_to``, ``flip``, ``narrow``, constants).

Derivative rules call these and nothing above them (DESIGN.md, "Layers"): no dtype
promotion, no argument parsing, no view bookkeeping. A rule's operands already have the
dtypes the forward pass gave them, Python scalars broadcast as NumPy's weak scalars, and
a gradient is a fresh value that nobody holds a view of.

The wrappers look their record up in ``PRIMITIVES`` when called: the record modules
(``elementwise``, ``movement``, ...) import this module for their rules, so the records
cannot exist yet when it loads.
"""
from __future__ import annotations

import numpy as np

from .._device import CPU
from .._dispatch import apply, made_from_sizes
from .._size import slice_indices
from .._tensor import Tensor, _wrap
from ..codegen.ops import Op
from .registry import PRIMITIVES

_EMPTY: dict = {}


def _call(op: Op, inputs: tuple, attrs: dict = _EMPTY) -> Tensor:
    return apply(PRIMITIVES[op], inputs, attrs)


# ---- elementwise ------------------------------------------------------------------------

def neg(x):
    return _call(Op.NEG, (x,))


def exp(x):
    return _call(Op.EXP, (x,))


def log(x):
    return _call(Op.LOG, (x,))


def sin(x):
    return _call(Op.SIN, (x,))


def cos(x):
    return _call(Op.COS, (x,))


def sign(x):
    return _call(Op.SIGN, (x,))


def add(a, b):
    return _call(Op.ADD, (a, b))


def sub(a, b):
    return _call(Op.SUB, (a, b))


def mul(a, b):
    return _call(Op.MUL, (a, b))


def div(a, b):
    return _call(Op.DIV, (a, b))


def trunc(x):
    """x rounded toward zero (floor above zero, ceil below)."""
    return where(lt(x, 0), _call(Op.CEIL, (x,)), _call(Op.FLOOR, (x,)))


def pow(a, b):  # noqa: A001  (the primitive's name)
    return _call(Op.POW, (a, b))


def lt(a, b):
    return _call(Op.CMPLT, (a, b))


def gt(a, b):
    return _call(Op.CMPLT, (b, a))  # mirrored, as the public ``>``


def eq(a, b):
    return _call(Op.CMPEQ, (a, b))


def where(cond, a, b):
    return _call(Op.WHERE, (cond, a, b))


def cast(x: Tensor, np_dtype) -> Tensor:
    np_dtype = np.dtype(np_dtype)
    if x._data.dtype == np_dtype:
        return x
    return _call(Op.CAST, (x,), {"dtype": np_dtype})


# ---- movement -----------------------------------------------------------------------------

def reshape(x: Tensor, shape: tuple) -> Tensor:
    shape = tuple(shape)
    if shape == tuple(x._data.shape):
        return x
    return _call(Op.RESHAPE, (x,), {"shape": shape})


def permute(x: Tensor, perm: tuple) -> Tensor:
    perm = tuple(perm)
    if perm == tuple(range(len(perm))):
        return x
    return _call(Op.PERMUTE, (x,), {"perm": perm})


def swap_last_two(x: Tensor) -> Tensor:
    n = x._data.ndim
    return permute(x, tuple(range(n - 2)) + (n - 1, n - 2))


def expand(x: Tensor, shape: tuple) -> Tensor:
    shape = tuple(shape)
    if shape == tuple(x._data.shape):
        return x
    return _call(Op.EXPAND, (x,), {"shape": shape})


def slice_dims(x: Tensor, index: tuple) -> Tensor:
    """SLICE with one ``slice`` per dim, skipped when it selects everything."""
    if all(slice_indices(s, n) == (0, n, 1) for s, n in zip(index, x._data.shape)):
        return x
    return _call(Op.SLICE, (x,), {"index": tuple(index)})


def narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    return slice_dims(x, tuple(slice(start, start + length) if i == dim else slice(None)
                               for i in range(x._data.ndim)))


def flip(x: Tensor, dim: int) -> Tensor:
    return slice_dims(x, tuple(slice(None, None, -1) if i == dim else slice(None)
                               for i in range(x._data.ndim)))


def pad(x: Tensor, pads, value=0.0) -> Tensor:
    """PAD with one ``(before, after)`` pair per dim; negative amounts crop."""
    pads = tuple((int(b), int(a)) for b, a in pads)
    if all(b == 0 and a == 0 for b, a in pads):
        return x
    return _call(Op.PAD, (x,), {"pads": pads, "value": value})


# ---- reductions, matmul, gathers ------------------------------------------------------------

def sum(x: Tensor, axes: tuple, keepdim: bool) -> Tensor:  # noqa: A001
    return _call(Op.SUM, (x,), {"axes": tuple(axes), "keepdim": keepdim})


def sum_to(g: Tensor, shape: tuple) -> Tensor:
    """Sum ``g`` down to ``shape``, undoing NumPy broadcasting (leading and size-1 dims)."""
    gshape = tuple(g.shape)
    if len(gshape) == len(shape) and gshape == shape:   # (no size compared with another dim's)
        return g
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and gshape[lead + i] != 1)
    out = sum(g, axes, True) if axes else g
    return reshape(out, shape)


def cumsum(x: Tensor, axis: int) -> Tensor:
    return _call(Op.CUMSUM, (x,), {"axis": axis})


def matmul(a: Tensor, b: Tensor) -> Tensor:
    return _call(Op.MATMUL, (a, b))


def gather(x: Tensor, index: Tensor, dim: int) -> Tensor:
    return _call(Op.GATHER, (x, index), {"dim": dim})


def scatter_add(base: Tensor, index: Tensor, src: Tensor, dim: int) -> Tensor:
    return _call(Op.SCATTER_ADD, (base, index, src), {"dim": dim})


def index(x: Tensor, indices: tuple, spec) -> Tensor:
    return _call(Op.INDEX, (x,) + tuple(indices), {"spec": spec})


def index_put(base: Tensor, values: Tensor, indices: tuple, spec, accumulate: bool) -> Tensor:
    return _call(Op.INDEX_PUT, (base, values) + tuple(indices),
                 {"spec": spec, "accumulate": accumulate})


# ---- constants ------------------------------------------------------------------------------

def full(shape: tuple, value, np_dtype, like: Tensor | None = None) -> Tensor:
    """A constant tensor (a leaf; a compile trace sees it as a local constant), on
    ``like``'s device when given."""
    # (the shape may hold a compile guard trace's symbolic sizes: NOTE (tensors made from
    # a size) in compiler/made_sizes.py)
    device = CPU if like is None else like._device
    return made_from_sizes(tuple(shape), _full, tuple(shape), value, np_dtype, device)


def _full(shape: tuple, value, np_dtype, device) -> Tensor:
    out = _wrap(np.full(shape, value, np.dtype(np_dtype)))
    if device is not CPU:
        out._device = device
    return out


def zeros_like(x: Tensor) -> Tensor:
    return full(tuple(x.shape), 0, x._data.dtype, like=x)
