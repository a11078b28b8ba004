"""``nonzero`` and ``argwhere``: index tensors read from a tensor's values. Their shape
depends on the data, so a compile trace cannot follow them (``_concrete`` says so).
Below ``math`` in the order of ``_ops``, since ``where(cond)`` is ``nonzero(cond, as_tuple=True)``.
"""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor, _concrete
from .creation import tensor


def nonzero(x: Tensor, as_tuple: bool = False):
    arr = _concrete(x._data, "nonzero()")
    if arr.ndim == 0:   # (NumPy refuses a 0-d array) PyTorch: a (1, 0) or (0, 0) result,
        n = int(bool(arr))   # as_tuple: one index tensor as for a 1-element tensor
        return (tensor(np.zeros(n, np.int64)),) if as_tuple else tensor(np.zeros((n, 0), np.int64))
    idx = np.nonzero(arr)
    if as_tuple:
        return tuple(tensor(i.astype(np.int64)) for i in idx)
    return tensor(np.stack(idx, axis=1).astype(np.int64) if idx else np.zeros((0, 0), np.int64))


def argwhere(x: Tensor) -> Tensor:
    return nonzero(x)
