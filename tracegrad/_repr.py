"""PyTorch-style ``repr``: ``tensor([[1., 2.], [3., 4.]], requires_grad=True)``."""
from __future__ import annotations

import numpy as np

_HIDDEN_DTYPES = {np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_)}


def _format_array(arr: np.ndarray, prefix: str) -> str:
    if arr.size == 0:
        return "[]" if arr.ndim <= 1 else f"[]"  # PyTorch shows size= for empties
    if arr.dtype.kind == "f":
        finite = arr[np.isfinite(arr)]
        as_int = finite.size and np.all(finite == np.round(finite)) and np.abs(finite).max() < 1e8
        big = finite.size and (np.abs(finite).max() >= 1e8 or
                               (np.abs(finite[finite != 0]).min() < 1e-4 if np.any(finite != 0) else False))
        if as_int and not big:
            formatter = {"float_kind": lambda v: f"{v:.0f}." if np.isfinite(v) else str(v)}
        elif big:
            formatter = {"float_kind": lambda v: f"{v:.4e}"}
        else:
            formatter = {"float_kind": lambda v: f"{v:.4f}"}
        return np.array2string(arr, separator=", ", prefix=prefix, formatter=formatter,
                               threshold=1000, edgeitems=3, max_line_width=80)
    if arr.dtype == np.bool_:
        return np.array2string(arr, separator=", ", prefix=prefix, threshold=1000,
                               formatter={"bool": lambda v: "True" if v else "False"})
    return np.array2string(arr, separator=", ", prefix=prefix, threshold=1000, edgeitems=3,
                           max_line_width=80)


def tensor_repr(t) -> str:
    data = t._data
    if not isinstance(data, np.ndarray):
        return f"tensor(<traced {data}>)"
    prefix = "tensor("
    body = _format_array(data, prefix)
    extras = []
    if t._device.type != "cpu":
        extras.append(f"device='{t._device}'")
    if data.size == 0 and data.ndim != 1:
        extras.append(f"size={tuple(data.shape)}")
    if data.dtype not in _HIDDEN_DTYPES:
        extras.append(f"dtype=tracegrad.{t.dtype.name}")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name}>")
    elif t._requires_grad:
        extras.append("requires_grad=True")
    return prefix + body + "".join(", " + e for e in extras) + ")"
