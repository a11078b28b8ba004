"""The exceptions the core raises, on the bottom floor of the import order (DESIGN.md,
"Layers"), so that ``_tensor``, the dispatcher and the compile frontend share one class
each without importing upward."""
from __future__ import annotations

from typing import Any

import numpy as np


class ShapeError(RuntimeError):
    """An operation got inputs whose shapes, dtypes or arguments do not fit."""


class TraceError(RuntimeError):
    """The function did something a trace cannot follow (``.item()``, ``bool(tensor)``,
    ``.numpy()``, data-dependent shapes). ``@compile`` falls back to eager on it, or
    re-raises with ``fullgraph=True``."""


def describe(x: Any) -> str:
    """How an argument reads in an error message: shape and dtype for tensors."""
    shape = getattr(x, "shape", None)
    if shape is not None:
        return f"{tuple(shape)} {np.dtype(getattr(x.dtype, 'np', x.dtype)).name}"  # (a Tensor too)
    return repr(x)
