"""``default_collate`` (a list of samples -> one batch) and ``default_convert``."""
from __future__ import annotations

import collections.abc
import numbers

import numpy as np

from ..._tensor import Tensor

__all__ = ["default_collate", "default_convert"]

_ERR = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        "found {}")


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def default_collate(batch):
    """Stack tensors and NumPy arrays along a new first dim; Python floats become a
    float64 tensor, ints an int64 tensor, bools a bool tensor; strings stay a list;
    dicts, tuples, lists and namedtuples are collated field by field.

    >>> default_collate([(1, 2.0, "a"), (3, 4.0, "b")])
    [tensor([1, 3]), tensor([2., 4.], dtype=tracegrad.float64), ['a', 'b']]
    """
    from ..._ops.creation import as_tensor, tensor
    from ..._ops.shape import stack
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(list(batch), 0)
    if isinstance(elem, np.ndarray) or (isinstance(elem, np.generic) and elem.shape == ()):
        if elem.dtype.kind in "SUO":
            raise TypeError(_ERR.format(elem.dtype))
        if isinstance(elem, np.ndarray):
            return as_tensor(np.stack(batch))
        return as_tensor(np.array(batch))
    if isinstance(elem, bool):
        return tensor(list(batch), dtype=_dtype("bool"))
    if isinstance(elem, numbers.Integral):
        return tensor(list(batch), dtype=_dtype("int64"))
    if isinstance(elem, float):
        return tensor(list(batch), dtype=_dtype("float64"))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        out = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(out)
        except TypeError:
            return out
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = [default_collate(list(s)) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return transposed
        try:
            return type(elem)(transposed)
        except TypeError:
            return transposed
    raise TypeError(_ERR.format(type(elem)))


def default_convert(data):
    """Turn NumPy arrays (recursively inside containers) into tensors, without batching."""
    from ..._ops.creation import as_tensor
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray) or (isinstance(data, np.generic) and data.shape == ()):
        return data if data.dtype.kind in "SUO" else as_tensor(data)
    if isinstance(data, collections.abc.Mapping):
        out = {k: default_convert(v) for k, v in data.items()}
        try:
            return type(data)(out)
        except TypeError:
            return out
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data


def _dtype(name: str):
    from ... import _dtype as D
    return D.to_dtype(name)
