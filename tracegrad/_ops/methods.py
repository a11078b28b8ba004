"""Attach operations to ``Tensor`` as methods and Python operators."""
from __future__ import annotations

import numbers

import numpy as np

from .. import _dtype, legacy
from ..cuda import to_device
from .._device import device as _device
from .._tensor import Tensor
from ..autograd.engine import tensor_backward
from . import (aliases, creation, cumulative, division, elementwise_extra, index_writes,
               indexing, inplace, inplace_variants, linalg, math, matrix, pointwise, products,
               rearrange, reduce, sampling, searching, shape, sorting, special_eager, strided,
               trig, unfold, unique)
from .math import as_tensor_operand


def _to(x: Tensor, *args, **kwargs) -> Tensor:
    """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other_tensor)``."""
    dtype = kwargs.pop("dtype", None)
    device = kwargs.pop("device", None)
    copy = kwargs.pop("copy", False)
    for a in args:
        if isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif isinstance(a, (_device,)) or (isinstance(a, str) and a.split(":")[0] in ("cpu", "cuda")):
            device = a
        elif a is not None:
            dtype = a
    out = x
    if dtype is not None:
        out = math.to_dtype(out, dtype)
    if device is not None and _device(device) != x._device:
        out = to_device(out, _device(device))
    if copy and out is x:
        out = shape.clone(x)
    return out


def _type(x: Tensor, dtype=None, non_blocking=False):
    if dtype is None:
        return _legacy_type_name(x)
    if isinstance(dtype, str) and dtype.startswith(("torch.", "tracegrad.")) and dtype.endswith("Tensor"):
        dtype = getattr(legacy, dtype.split(".")[-1])
    return _to(x, dtype)


def _legacy_type_name(x: Tensor) -> str:
    return legacy.type_name(x)


def _cpu(x: Tensor, *args, **kwargs) -> Tensor:
    return _to(x, "cpu")


def _cuda(x: Tensor, device=None, non_blocking=False) -> Tensor:
    return _to(x, _device("cuda" if device is None else device if isinstance(device, (str, _device)) else f"cuda:{device}"))


def _rbinary(fn):
    def method(self, other):
        return fn(as_tensor_operand(other, fn.__name__), self)
    return method


def _commuted(fn):
    """``2 * b`` as ``b * 2``, as PyTorch does: the graph then lists ``b``'s node first
    (``next_functions`` is ``((SinBackward0, 0), (None, 0))`` for ``2 * sin(x)``)."""
    def method(self, other):
        return fn(self, as_tensor_operand(other, fn.__name__))
    return method


def _comparable(other) -> bool:
    """What ``==`` compares elementwise, as PyTorch's: tensors, numbers and NumPy values.
    Anything else (None, a string, a list) gives NotImplemented, so Python falls back to
    identity: ``t == [1, 2]`` is False in PyTorch, not a tensor of matches."""
    return isinstance(other, (Tensor, numbers.Number, np.ndarray, np.generic))


def _eq(self, other):
    if not _comparable(other):
        return NotImplemented
    return math.eq(self, other)


def _ne(self, other):
    if not _comparable(other):
        return NotImplemented
    return math.ne(self, other)


def _apply_(x, fn):
    x._data[...] = np.vectorize(fn)(x._data)
    return x


METHODS = {
    "backward": tensor_backward,
    # math
    "add": math.add, "sub": math.sub, "subtract": math.sub, "mul": math.mul,
    "multiply": math.mul, "div": division.div, "divide": division.div, "true_divide": division.div,
    "floor_divide": division.floor_divide, "remainder": division.remainder, "fmod": division.fmod,
    "pow": math.pow, "neg": math.neg, "negative": math.neg, "exp": math.exp, "log": math.log,
    "log1p": math.log1p, "expm1": math.expm1, "log2": math.log2, "log10": math.log10,
    "exp2": math.exp2, "sqrt": math.sqrt, "rsqrt": math.rsqrt, "abs": math.abs,
    "absolute": math.abs, "sign": math.sign, "sin": math.sin, "cos": math.cos, "tan": math.tan,
    "tanh": math.tanh, "sigmoid": math.sigmoid, "relu": math.relu, "erf": math.erf,
    "clamp": math.clamp, "clip": math.clamp, "maximum": math.maximum, "minimum": math.minimum,
    "floor": math.floor, "ceil": math.ceil, "round": math.round, "trunc": math.trunc,
    "frac": math.frac, "reciprocal": math.reciprocal, "square": math.square,
    "lerp": math.lerp, "where": lambda x, cond, y: math.where(cond, x, y),
    "lt": math.lt, "le": math.le, "gt": math.gt, "ge": math.ge, "eq": math.eq, "ne": math.ne,
    "less": math.lt, "greater": math.gt, "logical_and": math.logical_and,
    "logical_or": math.logical_or, "logical_not": math.logical_not,
    "logical_xor": math.logical_xor, "bitwise_and": math.bitwise_and,
    "bitwise_or": math.bitwise_or, "bitwise_xor": math.bitwise_xor,
    "bitwise_not": math.bitwise_not, "isnan": math.isnan, "isinf": math.isinf,
    "isfinite": math.isfinite, "softmax": reduce.softmax, "log_softmax": reduce.log_softmax,
    "equal": lambda a, b: bool(tuple(a.shape) == tuple(b.shape) and math.eq(a, b).all()),
    "allclose": lambda a, b, rtol=1e-5, atol=1e-8, equal_nan=False: bool(np.allclose(
        np.asarray(a), np.asarray(b), rtol=rtol, atol=atol, equal_nan=equal_nan)),
    # reductions
    "sum": reduce.sum, "mean": reduce.mean, "prod": reduce.prod, "max": reduce.max,
    "min": reduce.min, "amax": reduce.amax, "amin": reduce.amin, "argmax": reduce.argmax,
    "argmin": reduce.argmin, "var": reduce.var, "std": reduce.std,
    "logsumexp": reduce.logsumexp, "norm": reduce.norm, "all": reduce.all, "any": reduce.any,
    "cumsum": reduce.cumsum, "count_nonzero": reduce.count_nonzero,
    # linear algebra
    "matmul": linalg.matmul, "mm": linalg.mm, "bmm": linalg.bmm, "mv": linalg.mv,
    "dot": linalg.dot, "outer": linalg.outer, "ger": linalg.outer, "addmm": linalg.addmm,
    # shape
    "reshape": shape.reshape, "view": shape.view, "view_as": shape.view_as,
    "reshape_as": shape.reshape_as, "permute": shape.permute, "transpose": shape.transpose,
    "t": shape.t, "movedim": shape.movedim, "squeeze": shape.squeeze,
    "unsqueeze": shape.unsqueeze, "expand": shape.expand, "expand_as": shape.expand_as,
    "broadcast_to": shape.broadcast_to, "flatten": shape.flatten,
    "unflatten": shape.unflatten, "ravel": shape.ravel, "narrow": shape.narrow,
    "split": shape.split, "chunk": shape.chunk, "unbind": shape.unbind,
    "tensor_split": shape.tensor_split, "repeat": shape.repeat, "tile": shape.tile,
    "flip": shape.flip, "pad_dims": shape.pad_dims, "contiguous": shape.contiguous,
    "clone": shape.clone, "swapaxes": shape.swapaxes,
    "select": shape.select, "diagonal": shape.diagonal,
    # indexing
    "gather": indexing.gather, "scatter": indexing.scatter,
    "scatter_add": indexing.scatter_add, "index_select": indexing.index_select,
    "masked_fill": indexing.masked_fill, "masked_select": indexing.masked_select,
    "nonzero": indexing.nonzero, "take_along_dim": indexing.take_along_dim,
    "index_add": indexing.index_add, "index_put": indexing.index_put,
    # conversion
    "to": _to, "type": _type, "cpu": _cpu, "cuda": _cuda,
    "float": lambda x, memory_format=None: math.to_dtype(x, _dtype.float32),
    "double": lambda x, memory_format=None: math.to_dtype(x, _dtype.float64),
    "half": lambda x, memory_format=None: math.to_dtype(x, _dtype.float16),
    "long": lambda x, memory_format=None: math.to_dtype(x, _dtype.int64),
    "int": lambda x, memory_format=None: math.to_dtype(x, _dtype.int32),
    "short": lambda x, memory_format=None: math.to_dtype(x, _dtype.int16),
    "byte": lambda x, memory_format=None: math.to_dtype(x, _dtype.uint8),
    "char": lambda x, memory_format=None: math.to_dtype(x, _dtype.int8),
    "bool": lambda x, memory_format=None: math.to_dtype(x, _dtype.bool_),
    "type_as": lambda x, other: math.to_dtype(x, other.dtype),
    "new_tensor": lambda x, data, dtype=None, device=None, requires_grad=False: creation.tensor(
        data, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad),
    "new_zeros": lambda x, *size, dtype=None, device=None, requires_grad=False: creation.zeros(
        *size, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad),
    "new_ones": lambda x, *size, dtype=None, device=None, requires_grad=False: creation.ones(
        *size, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad),
    "new_full": lambda x, size, fill_value, dtype=None, device=None, requires_grad=False:
        creation.full(size, fill_value, dtype=dtype or x.dtype, device=device or x.device,
                      requires_grad=requires_grad),
    "new_empty": lambda x, *size, dtype=None, device=None, requires_grad=False: creation.empty(
        *size, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad),
    "apply_": _apply_,
    # operators
    "__add__": math.add_no_alpha, "__radd__": _commuted(math.add_no_alpha),
    "__sub__": math.sub_no_alpha,
    "__rsub__": _rbinary(math.sub_no_alpha), "__mul__": math.mul, "__rmul__": _commuted(math.mul),
    "__truediv__": division.div, "__rtruediv__": _rbinary(division.div), "__div__": division.div,
    "__floordiv__": division.floor_divide, "__rfloordiv__": _rbinary(division.floor_divide),
    "__mod__": division.remainder, "__rmod__": _rbinary(division.remainder),
    "__pow__": math.pow, "__rpow__": _rbinary(math.pow), "__matmul__": linalg.matmul,
    "__rmatmul__": _rbinary(linalg.matmul), "__neg__": math.neg, "__pos__": lambda x: x,
    "__abs__": math.abs, "__invert__": math.bitwise_not,
    "__and__": math.bitwise_and, "__or__": math.bitwise_or, "__xor__": math.bitwise_xor,
    "__rand__": _rbinary(math.bitwise_and), "__ror__": _rbinary(math.bitwise_or),
    "__rxor__": _rbinary(math.bitwise_xor),
    "__lt__": math.lt, "__le__": math.le, "__gt__": math.gt, "__ge__": math.ge,
    "__eq__": _eq, "__ne__": _ne,
    "__getitem__": indexing.getitem, "__setitem__": indexing.setitem,
    "__iadd__": inplace.add_, "__isub__": inplace.sub_, "__imul__": inplace.mul_,
    "__itruediv__": inplace.div_,
    "__iand__": inplace.elementwise_inplace("__iand__", math.bitwise_and),
    "__ior__": inplace.elementwise_inplace("__ior__", math.bitwise_or),
    "__ixor__": inplace.elementwise_inplace("__ixor__", math.bitwise_xor),
}
for _module in (trig, matrix, unique, aliases, elementwise_extra, special_eager, index_writes,
                products, sampling):
    METHODS.update({name: getattr(_module, name) for name in _module.__all__
                    if name not in getattr(_module, "FUNCTION_ONLY", ())})
    METHODS.update(getattr(_module, "METHOD_FORMS", {}))   # argument order differs
METHODS.update(aliases.PROPERTIES, **aliases.METHOD_ONLY, baddbmm=linalg.baddbmm)
# sorting, cumulative, pointwise and rearranging ops: the ones PyTorch has as methods
# (not meshgrid, searchsorted, bucketize, isin, tensordot, cdist: torch.Tensor lacks them)
for _module in (sorting, searching, cumulative, pointwise, rearrange):
    METHODS.update({name: getattr(_module, name) for name in _module.__all__
                    if name not in ("meshgrid", "searchsorted", "bucketize", "isin",
                                    "tensordot", "cdist")})
METHODS["swapdims"] = shape.swapaxes
METHODS.update(as_strided=strided.as_strided, unfold=unfold.unfold,
               storage_offset=strided.storage_offset)
METHODS["clamp_min"] = lambda x, min: math.clamp(x, min=min)
METHODS["clamp_max"] = lambda x, max: math.clamp(x, max=max)
METHODS.update(inplace.INPLACE_METHODS)
METHODS.update(inplace.OUT_OF_PLACE_EXTRA)
METHODS.update(inplace_variants.VARIANTS)
# x %= y, x //= y, x **= y write into x as PyTorch does (without these Python rebinds x to
# a new tensor: an alias or a view of x kept the old values)
METHODS.update(__imod__=METHODS["remainder_"], __ifloordiv__=METHODS["floor_divide_"],
               __ipow__=METHODS["pow_"])


def install() -> None:
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)


__all__ = ["install", "METHODS"]
