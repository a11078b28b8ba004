"""PyTorch's public questions about dtypes: ``promote_types``, ``result_type``,
``can_cast``, ``finfo`` and ``iinfo``. The rules themselves live in ``_dtype`` (on NumPy
dtypes, for the ops); these take and return tracegrad dtypes, tensors and Python numbers
as PyTorch's functions do.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import _dtype
from .._tensor import Tensor


def _as_dtype(d, fn: str, arg: str, position: int) -> _dtype.dtype:
    if not isinstance(d, _dtype.dtype):
        raise TypeError(f"{fn}(): argument '{arg}' (position {position}) must be torch.dtype, "
                        f"not {type(d).__name__}")
    return d


def promote_types(type1, type2) -> _dtype.dtype:
    """The smallest dtype both ``type1`` and ``type2`` cast to without losing their kind.

    >>> import tracegrad as torch
    >>> torch.promote_types(torch.int8, torch.uint8), torch.promote_types(torch.int64, torch.float16)
    (tracegrad.int16, tracegrad.float16)
    """
    a = _as_dtype(type1, "promote_types", "type1", 1)
    b = _as_dtype(type2, "promote_types", "type2", 2)
    return _dtype.from_numpy_dtype(_dtype.promote_types(a.np, b.np))


def can_cast(from_, to) -> bool:
    """Whether PyTorch writes a ``from_`` result into a ``to`` tensor (in place, ``out=``):
    no float into an integer, nothing but bool into bool.

    >>> import tracegrad as torch
    >>> torch.can_cast(torch.float32, torch.int32), torch.can_cast(torch.int64, torch.float16)
    (False, True)
    """
    a = _as_dtype(from_, "can_cast", "from_", 1)
    b = _as_dtype(to, "can_cast", "to", 2)
    return _dtype.can_cast(a.np, b.np)


def _scalar_dtype(x) -> np.dtype:
    """A Python number's dtype as an operand: float ones take the default dtype."""
    if isinstance(x, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(x, numbers.Integral):
        return np.dtype(np.int64)
    if isinstance(x, numbers.Real):
        return _dtype.get_default_dtype().np
    raise TypeError(f"result_type(): expected Tensor or Number arguments, got "
                    f"{type(x).__name__}")


def result_type(tensor1, tensor2) -> _dtype.dtype:
    """The dtype of ``tensor1 + tensor2``: a dimensioned tensor's dtype beats a 0-d
    tensor's, which beats a Python number's, unless the lower one lifts the category
    (integer to float, bool to integer).

    >>> import tracegrad as torch
    >>> torch.result_type(torch.tensor([1], dtype=torch.int32), 2.5)
    tracegrad.float32
    >>> torch.result_type(torch.tensor([1], dtype=torch.uint8), torch.tensor(1000))
    tracegrad.uint8
    """
    classes: dict = {"dim": None, "zero": None, "scalar": None}
    for x in (tensor1, tensor2):
        if isinstance(x, Tensor):
            key, dt = ("dim" if x.ndim else "zero"), x._data.dtype
        else:
            key, dt = "scalar", _scalar_dtype(x)
        classes[key] = dt if classes[key] is None else _dtype.promote_types(classes[key], dt)
    lower = _dtype.combine_categories(classes["zero"], classes["scalar"])
    return _dtype.from_numpy_dtype(_dtype.combine_categories(classes["dim"], lower))


class finfo:
    """Machine limits of a floating-point dtype (the default dtype when none is given).

    >>> import tracegrad as torch
    >>> torch.finfo(torch.float16).max, torch.finfo().eps
    (65504.0, 1.1920928955078125e-07)
    """

    def __init__(self, type=None) -> None:  # noqa: A002  (PyTorch's name)
        d = _dtype.get_default_dtype() if type is None else type
        if not isinstance(d, _dtype.dtype) or not d.is_floating_point:
            raise TypeError(f"torch.finfo() requires a floating point input type, got {d}. "
                            f"Use torch.iinfo to handle integer types")
        info = np.finfo(d.np)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        # NOTE: PyTorch's resolution is 10**-digits in double (1e-06 for float32), not the
        # dtype's rounding of it (NumPy's float32 0.000001 is 9.99999997e-07).
        self.resolution = 10.0 ** -int(info.precision)
        self.dtype = d.name

    def __eq__(self, other) -> bool:
        return isinstance(other, finfo) and self.dtype == other.dtype

    def __hash__(self) -> int:
        return hash(("finfo", self.dtype))

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
                f"tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """Limits of an integer dtype.

    >>> import tracegrad as torch
    >>> torch.iinfo(torch.int8).min, torch.iinfo(torch.uint8).max
    (-128, 255)
    """

    def __init__(self, type) -> None:  # noqa: A002  (PyTorch's name)
        if not isinstance(type, _dtype.dtype) or type.np.kind not in "iu":
            kind = "torch.bool is not supported by torch.iinfo" if type is _dtype.bool_ else \
                f"torch.iinfo() requires an integer input type, got {type}. Use torch.finfo " \
                f"to handle floating point types"
            raise TypeError(kind)
        info = np.iinfo(type.np)
        self.bits = int(info.bits)
        self.max = int(info.max)
        self.min = int(info.min)
        self.dtype = type.name

    def __eq__(self, other) -> bool:
        return isinstance(other, iinfo) and self.dtype == other.dtype

    def __hash__(self) -> int:
        return hash(("iinfo", self.dtype))

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


__all__ = ["can_cast", "finfo", "iinfo", "promote_types", "result_type"]
