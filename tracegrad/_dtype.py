"""tracegrad dtypes: thin named wrappers over NumPy dtypes, with PyTorch's promotion.

``tracegrad.float32`` prints as ``tracegrad.float32`` and compares equal only to itself;
``to_numpy_dtype`` accepts a tracegrad dtype, a NumPy dtype, a Python type (float, int,
bool), a string, or a legacy tensor type such as ``tracegrad.FloatTensor``.
"""
from __future__ import annotations

import builtins

import numpy as np


class dtype:
    __slots__ = ("name", "np", "is_floating_point", "is_signed", "itemsize")

    def __init__(self, name: str, np_dtype) -> None:
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = self.np.kind == "f"
        self.is_signed = self.np.kind in "fi"
        self.itemsize = self.np.itemsize

    @property
    def is_complex(self) -> builtins.bool:
        return False

    def __repr__(self) -> str:
        return f"tracegrad.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


float32 = dtype("float32", np.float32)
float64 = dtype("float64", np.float64)
float16 = dtype("float16", np.float16)
int64 = dtype("int64", np.int64)
int32 = dtype("int32", np.int32)
int16 = dtype("int16", np.int16)
int8 = dtype("int8", np.int8)
uint8 = dtype("uint8", np.uint8)
bool_ = dtype("bool", np.bool_)

ALL = (float32, float64, float16, int64, int32, int16, int8, uint8, bool_)
_FROM_NUMPY = {d.np: d for d in ALL}
_BY_NAME = {d.name: d for d in ALL}
_BY_NAME.update(float=float32, double=float64, half=float16, long=int64, int=int32,
                short=int16)


def _by_name(name: str) -> dtype:
    return _BY_NAME[name]


def from_numpy_dtype(np_dtype) -> dtype:
    try:
        return _FROM_NUMPY[np.dtype(np_dtype)]
    except KeyError:
        raise TypeError(f"tracegrad has no dtype for NumPy dtype {np.dtype(np_dtype)}; "
                        f"supported: {', '.join(d.name for d in ALL)}") from None


def to_numpy_dtype(d) -> np.dtype:
    """Any dtype-like (tracegrad dtype, NumPy dtype, Python type, name, legacy tensor type)."""
    if isinstance(d, dtype):
        return d.np
    legacy = getattr(d, "_tracegrad_dtype", None)
    if legacy is not None:
        return legacy.np
    if d is builtins.float:
        return float32.np
    if d is builtins.int:
        return int64.np
    if d is builtins.bool:
        return bool_.np
    if isinstance(d, str):
        name = d[len("torch."):] if d.startswith("torch.") else d
        name = name[len("tracegrad."):] if name.startswith("tracegrad.") else name
        if name in _BY_NAME:
            return _BY_NAME[name].np
    try:
        np_dtype = np.dtype(d)
    except TypeError:
        raise TypeError(f"not a dtype: {d!r}") from None
    from_numpy_dtype(np_dtype)  # raises for unsupported kinds
    return np_dtype


def to_dtype(d) -> dtype:
    return _FROM_NUMPY[to_numpy_dtype(d)]


_default_float = float32


def get_default_dtype() -> dtype:
    return _default_float


def set_default_dtype(d) -> None:
    global _default_float
    d = to_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"set_default_dtype: only floating point dtypes are allowed, got {d}")
    _default_float = d


def _category(np_dtype: np.dtype) -> int:
    kind = np_dtype.kind
    return 2 if kind == "f" else (0 if kind == "b" else 1)


_PROMOTE_CACHE: dict = {}


def promote_types(a: np.dtype, b: np.dtype) -> np.dtype:
    """PyTorch's promotion of two tensor dtypes: a float beats any integer as it is."""
    key = (a, b)
    result = _PROMOTE_CACHE.get(key)
    if result is None:
        ca, cb = _category(a), _category(b)
        if ca != cb:
            result = a if ca > cb else b
        else:
            result = np.promote_types(a, b)
        _PROMOTE_CACHE[key] = result
    return result


def result_type(a_dtype: np.dtype, a_ndim: int, b_dtype: np.dtype, b_ndim: int) -> np.dtype:
    """PyTorch's rule for two tensors: a 0-d tensor only decides the dtype when it lifts
    the category (int -> float), otherwise the dimensioned operand wins."""
    if (a_ndim == 0) == (b_ndim == 0):
        return promote_types(a_dtype, b_dtype)
    dimmed, zero_d = (a_dtype, b_dtype) if b_ndim == 0 else (b_dtype, a_dtype)
    return zero_d if _category(zero_d) > _category(dimmed) else dimmed


def can_cast(src: np.dtype, dst: np.dtype) -> builtins.bool:
    """PyTorch's ``canCast`` (for in-place results and ``out=``): no float into an integer,
    nothing but bool into bool; any other cast, narrowing included, is allowed."""
    if dst.kind == "b":
        return src.kind == "b"
    return _category(src) <= _category(dst)


def combine_categories(higher, lower):
    """PyTorch's ``combine_categories``: the dtype of a higher-priority operand class
    (dimensioned tensors over 0-d tensors over Python scalars) wins unless the lower
    class lifts the category; either may be None (no operand of that class)."""
    if higher is None:
        return lower
    if lower is None or higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return promote_types(higher, lower)
    return higher


def scalar_result_type(t_dtype: np.dtype, scalar) -> np.dtype:
    """Tensor dtype after an operation with a Python scalar (which is 'weak')."""
    kind = t_dtype.kind
    if isinstance(scalar, builtins.bool):
        return t_dtype
    if isinstance(scalar, builtins.float):
        return t_dtype if kind == "f" else _default_float.np
    if isinstance(scalar, builtins.int):
        return int64.np if kind == "b" else t_dtype
    return t_dtype
