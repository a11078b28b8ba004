"""PyTorch-style ``repr``: ``tensor([[1., 2.], [3., 4.]], requires_grad=True)``."""
from __future__ import annotations

import numpy as np

from ._dtype import get_default_dtype
from ._errors import TraceError

_PLAIN = (np.dtype(np.int64), np.dtype(np.bool_))

def _element_formatter(arr: np.ndarray):
    """One format and width for every element, as PyTorch's ``_Formatter`` picks them from
    the shown elements: integer-valued floats as ``1.``, fixed 4 decimals, or scientific
    when the nonzero finite magnitudes span more than 1000x, exceed 1e8 or (not integer
    valued) fall under 1e-4. The width counts only nonzero finite values, so ``nan`` and
    ``inf`` are not padded (``tensor([1., nan, inf])``)."""
    if arr.dtype.kind == "f":
        values = arr.astype(np.float64).ravel()
        nonzero = values[np.isfinite(values) & (values != 0)]
        magnitude = np.abs(nonzero)
        as_int = bool(np.all(nonzero == np.ceil(nonzero)))
        sci = magnitude.size > 0 and (magnitude.max() / magnitude.min() > 1000.0 or
                                      magnitude.max() > 1.0e8 or
                                      not as_int and magnitude.min() < 1.0e-4)
        if sci:
            def fmt(v):
                return f"{v:.4e}" if np.isfinite(v) else str(v)
        elif as_int:
            def fmt(v):
                return f"{v:.0f}." if np.isfinite(v) else str(v)
        else:
            def fmt(v):
                return f"{v:.4f}" if np.isfinite(v) else str(v)
        width = max((len(fmt(v)) for v in nonzero.tolist()), default=1)
        return fmt, width
    if arr.dtype == np.bool_:
        return (lambda v: "True" if v else "False"), max(
            (5 if not v else 4 for v in arr.ravel().tolist()), default=1)
    return (lambda v: str(int(v))), max((len(str(v)) for v in arr.ravel().tolist()), default=1)


def _format_array(arr: np.ndarray, prefix: str) -> str:
    if arr.size == 0:
        return "[]"
    # NOTE: PyTorch right-aligns every element to the widest one (``[ 1.5000, -2.0000]``);
    # summarised tensors measure only the elements that are shown.
    shown = arr if arr.size <= 1000 else _edges(arr, 3)
    fmt, width = _element_formatter(shown)
    kind = {"f": "float_kind", "b": "bool"}.get(arr.dtype.kind, "int_kind")
    text = np.array2string(arr, separator=", ", prefix=prefix, threshold=1000, edgeitems=3,
                           max_line_width=80, formatter={kind: lambda v: fmt(v).rjust(width)})
    # PyTorch's summarised row reads ``2,  ..., 997`` (its ellipsis is " ...")
    return text.replace(", ..., ", ",  ..., ").replace(", ...,\n", ",  ...,\n")


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
    # the default float dtype, int64 and bool go unnamed, except in an empty tensor, where
    # no element shows whether it holds integers (PyTorch's rule)
    if data.dtype != get_default_dtype().np and (data.size == 0 or data.dtype not in _PLAIN):
        extras.append(f"dtype=tracegrad.{t.dtype.name}")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t._requires_grad:
        extras.append("requires_grad=True")
    return prefix + body + "".join(", " + e for e in extras) + ")"
