"""PyTorch's other names for existing ops (``greater_equal``, ``moveaxis``, ``fix``, ...),
the small ops that are one existing op with a fixed argument (``fliplr``, ``hsplit``,
``deg2rad``), and the dtype/shape predicates (``is_signed``, ``isposinf``, ``signbit``).
Every one is a composite of traceable ops, so it compiles like the op it names."""
from __future__ import annotations

import math as _math

import numpy as np

from .._errors import ShapeError
from .math import _describe as describe
from .._tensor import Tensor
from . import math as M
from . import matrix, shape
from .._size import Size
from .creation import empty, full_like, tensor

greater_equal = M.ge
less_equal = M.le
not_equal = M.ne
greater = M.gt
less = M.lt
moveaxis = shape.movedim
fix = M.trunc


def sgn(input: Tensor) -> Tensor:
    """``sign`` for real tensors (tracegrad has no complex dtype)."""
    return M.sign(input)


def positive(input: Tensor) -> Tensor:
    """``input`` itself, as a view; PyTorch refuses bool tensors."""
    if input._data.dtype == np.bool_:
        raise TypeError(f"positive: not supported for bool tensors, got {describe(input)}")
    return shape.view_as(input, input)


def _need_dims(op: str, input: Tensor, n: int) -> None:
    if input.ndim < n:
        raise ShapeError(f"{op}: expected a tensor with at least {n} dimensions, got "
                         f"{describe(input)}")


def fliplr(input: Tensor) -> Tensor:
    """>>> import tracegrad as torch
    >>> torch.fliplr(torch.tensor([[1, 2], [3, 4]]))
    tensor([[2, 1],
            [4, 3]])
    """
    _need_dims("fliplr", input, 2)
    return shape.flip(input, [1])


def flipud(input: Tensor) -> Tensor:
    _need_dims("flipud", input, 1)
    return shape.flip(input, [0])


def _split_along(op: str, input: Tensor, indices_or_sections, dim: int):
    if isinstance(indices_or_sections, int) and not isinstance(indices_or_sections, bool):
        size = input.shape[dim]
        if indices_or_sections <= 0 or size % indices_or_sections:
            raise ShapeError(f"{op}: dimension {dim} of size {size} of {describe(input)} "
                             f"does not split into {indices_or_sections} equal parts")
        return shape.tensor_split(input, indices_or_sections, dim)
    # indices: the pieces [0, i0), [i0, i1), ..., clipped to the size as in NumPy
    size, bounds = input.shape[dim], [0]
    for i in indices_or_sections:
        i = int(i)
        bounds.append(min(max(i + size if i < 0 else i, bounds[-1]), size))
    bounds.append(size)
    return tuple(shape.narrow(input, dim, lo, hi - lo) for lo, hi in zip(bounds, bounds[1:]))


def hsplit(input: Tensor, indices_or_sections):
    """Split along dim 1 (dim 0 of a 1-D tensor); an int must divide that size."""
    _need_dims("hsplit", input, 1)
    return _split_along("hsplit", input, indices_or_sections, 0 if input.ndim == 1 else 1)


def vsplit(input: Tensor, indices_or_sections):
    _need_dims("vsplit", input, 2)
    return _split_along("vsplit", input, indices_or_sections, 0)


def dsplit(input: Tensor, indices_or_sections):
    _need_dims("dsplit", input, 3)
    return _split_along("dsplit", input, indices_or_sections, 2)


def diagflat(input: Tensor, offset: int = 0) -> Tensor:
    """The flattened ``input`` on the ``offset`` diagonal of a square matrix."""
    return matrix.diag(shape.reshape(input, (-1,)), offset)


def _float_result(input: Tensor, name: str) -> Tensor:
    return M._to_float(M.as_tensor_operand(input, name))


def deg2rad(input: Tensor) -> Tensor:
    return M.mul(_float_result(input, "deg2rad"), _math.pi / 180.0)


def rad2deg(input: Tensor) -> Tensor:
    return M.mul(_float_result(input, "rad2deg"), 180.0 / _math.pi)


def _is_float(input: Tensor) -> bool:
    return np.dtype(input._data.dtype).kind == "f"


def isposinf(input: Tensor) -> Tensor:
    if not _is_float(input):
        return full_like(input, False, dtype=np.bool_)
    return M.eq(input, _math.inf)


def isneginf(input: Tensor) -> Tensor:
    if not _is_float(input):
        return full_like(input, False, dtype=np.bool_)
    return M.eq(input, -_math.inf)


def isreal(input: Tensor) -> Tensor:
    """Every element of a real tensor is real."""
    return full_like(input, True, dtype=np.bool_)


def signbit(input: Tensor) -> Tensor:
    """True where the sign bit is set: negative values and -0.0 (``1 / -0.0 < 0``).

    NOTE: a NaN's sign bit is not visible to comparisons: ``signbit`` of a negative NaN is
    False here and True in PyTorch (NaN signs come only from bit-level constructions)."""
    if input._data.dtype == np.bool_:
        return full_like(input, False, dtype=np.bool_)
    if not _is_float(input):
        return M.lt(input, 0)
    zero = M.eq(input, 0)
    # NOTE: the reciprocal is taken of a tensor with no zeros but the signed ones
    return M.no_grad_result(M.where(zero, M.lt(M.reciprocal(M.where(zero, input, 1.0)), 0),
                                    M.lt(input, 0)))


def is_complex(input: Tensor) -> bool:
    return False


def is_signed(input: Tensor) -> bool:
    return input._data.dtype not in (np.uint8, np.bool_)


def is_same_size(input: Tensor, other: Tensor) -> bool:
    return tuple(input.shape) == tuple(other.shape)


def get_device(input: Tensor) -> int:
    """-1 on the CPU, the CUDA device's index otherwise (PyTorch's convention)."""
    dev = input.device
    return -1 if dev.type == "cpu" else (dev.index or 0)


def _bfloat16(input: Tensor, memory_format=None) -> Tensor:
    raise TypeError(f"bfloat16: tracegrad has no bfloat16 dtype (tensor {describe(input)}); "
                    f"use half() (float16) or float()")


def _legacy_new(input: Tensor, *args, device=None) -> Tensor:
    """``x.new(2, 3)`` / ``x.new(Size)``: an uninitialised tensor of x's dtype; ``x.new(data)``
    (a list or tuple of numbers): that data in x's dtype; ``x.new()``: an empty one."""
    device = device or input.device
    if len(args) == 1 and isinstance(args[0], Tensor):
        if args[0].dtype != input.dtype:
            raise TypeError(f"new: expected a tensor of dtype {input.dtype}, got "
                            f"{describe(args[0])}")
        return args[0]
    if len(args) == 1 and isinstance(args[0], (list, tuple)) and not isinstance(args[0], Size):
        return tensor(args[0], dtype=input.dtype, device=device)
    sizes = tuple(args[0]) if len(args) == 1 and isinstance(args[0], Size) else args
    return empty(*sizes, dtype=input.dtype, device=device) if sizes else empty(
        0, dtype=input.dtype, device=device)


# Tensor-only: properties and the conversion PyTorch has as a method
PROPERTIES = {
    "is_cpu": property(lambda self: self.device.type == "cpu"),
    "itemsize": property(lambda self: self.element_size()),
    "nbytes": property(lambda self: self.element_size() * self.numel()),
}
METHOD_ONLY = {"bfloat16": _bfloat16, "new": _legacy_new}

__all__ = ["greater_equal", "less_equal", "not_equal", "greater", "less", "moveaxis", "fix",
           "sgn", "positive", "fliplr", "flipud", "hsplit", "vsplit", "dsplit", "diagflat",
           "deg2rad", "rad2deg", "isposinf", "isneginf", "isreal", "signbit", "is_complex",
           "is_signed", "is_same_size", "get_device"]
