"""PyTorch 0.3-era tensor types: ``FloatTensor`` and friends work as constructors,
as dtypes for ``.type(...)``, and with ``isinstance``."""
from __future__ import annotations

from . import _dtype
from ._tensor import Tensor


class _LegacyTensorType(type):
    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj._data.dtype == cls._tracegrad_dtype.np

    def __repr__(cls) -> str:
        return f"<class 'tracegrad.{cls.__name__}'>"


def _legacy(name: str, dt: _dtype.dtype):
    def __new__(cls, *args, **kwargs):
        return Tensor(*args, dtype=dt) if args else Tensor(0, dtype=dt)
    return _LegacyTensorType(name, (), {"__new__": __new__, "_tracegrad_dtype": dt})


FloatTensor = _legacy("FloatTensor", _dtype.float32)
DoubleTensor = _legacy("DoubleTensor", _dtype.float64)
HalfTensor = _legacy("HalfTensor", _dtype.float16)
LongTensor = _legacy("LongTensor", _dtype.int64)
IntTensor = _legacy("IntTensor", _dtype.int32)
ShortTensor = _legacy("ShortTensor", _dtype.int16)
CharTensor = _legacy("CharTensor", _dtype.int8)
ByteTensor = _legacy("ByteTensor", _dtype.uint8)
BoolTensor = _legacy("BoolTensor", _dtype.bool_)

_NAMES = {t._tracegrad_dtype.np: f"torch.{t.__name__}" for t in (
    FloatTensor, DoubleTensor, HalfTensor, LongTensor, IntTensor, ShortTensor, CharTensor,
    ByteTensor, BoolTensor)}


def type_name(x: Tensor) -> str:
    """What ``x.type()`` returns: PyTorch's legacy name, e.g. ``'torch.FloatTensor'``."""
    name = _NAMES[x._data.dtype]
    return name.replace("torch.", "torch.cuda.") if x._device.type == "cuda" else name
