"""PyTorch-style ``repr``: ``tensor([[1., 2.], [3., 4.]], requires_grad=True)``."""
from __future__ import annotations

import numpy as np

from ._errors import TraceError

_HIDDEN_DTYPES = {np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_)}


def _element_formatter(arr: np.ndarray):
    """One format for every element, as PyTorch picks: integers-valued floats as ``1.``,
    fixed 4 decimals, or scientific when magnitudes are very large or very small."""
    if arr.dtype.kind == "f":
        finite = np.abs(arr[np.isfinite(arr)]).astype(np.float64)
        nonzero = finite[finite != 0]
        as_int = finite.size and np.all(finite == np.round(finite))
        big = finite.size and (finite.max() >= 1e8 or
                               (nonzero.size > 0 and (nonzero.min() < 1e-4 or
                                                      nonzero.max() / nonzero.min() >= 1000 and
                                                      not as_int)))
        if as_int and not big:
            return lambda v: f"{v:.0f}." if np.isfinite(v) else str(v)
        if big:
            return lambda v: f"{v:.4e}" if np.isfinite(v) else str(v)
        return lambda v: f"{v:.4f}" if np.isfinite(v) else str(v)
    if arr.dtype == np.bool_:
        return lambda v: "True" if v else "False"
    return lambda v: str(int(v))


def _format_array(arr: np.ndarray, prefix: str) -> str:
    if arr.size == 0:
        return "[]"
    fmt = _element_formatter(arr)
    # NOTE: PyTorch right-aligns every element to the widest one (``[ 1.5000, -2.0000]``);
    # summarised tensors measure only the elements that are shown.
    shown = arr if arr.size <= 1000 else _edges(arr, 3)
    width = max(len(fmt(v)) for v in shown.ravel().tolist())
    kind = {"f": "float_kind", "b": "bool"}.get(arr.dtype.kind, "int_kind")
    return np.array2string(arr, separator=", ", prefix=prefix, threshold=1000, edgeitems=3,
                           max_line_width=80, formatter={kind: lambda v: fmt(v).rjust(width)})


def _edges(arr: np.ndarray, k: int) -> np.ndarray:
    for axis, n in enumerate(arr.shape):
        if n > 2 * k:
            arr = np.concatenate([arr.take(range(k), axis), arr.take(range(n - k, n), axis)], axis)
    return arr


def tensor_repr(t) -> str:
    data = t._data
    if getattr(data, "on_device", False):  # a CUDA tensor prints a host copy
        data = data.get()
    if not isinstance(data, np.ndarray):
        # print(loss) mid-step reads a value on the host: like .item(), the trace stops
        # (the call runs eagerly, printing real values) rather than printing a placeholder
        raise TraceError(f"printing a tensor (repr/str of {data}) needs a concrete value, "
                         f"which a compile trace does not have")
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
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t._requires_grad:
        extras.append("requires_grad=True")
    return prefix + body + "".join(", " + e for e in extras) + ")"
