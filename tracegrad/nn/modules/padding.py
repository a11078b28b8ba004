"""Padding layers: ConstantPad, ZeroPad, ReflectionPad, ReplicationPad and CircularPad in
1, 2 and 3 dimensions, each ``F.pad`` with a fixed ``padding`` (an int pads every side;
a tuple lists (left, right[, top, bottom[, front, back]]) from the last dim)."""
from __future__ import annotations

from ..._tensor import Tensor
from .. import functional as F
from .module import Module


class _PadNd(Module):
    _dims = 1
    _mode = "constant"

    def __init__(self, padding, value: float = 0.0) -> None:
        super().__init__()
        n = 2 * self._dims
        if isinstance(padding, int):
            padding = (padding,) * n
        padding = tuple(int(p) for p in padding)
        if len(padding) != n:
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple of {n} "
                             f"ints, got {padding}")
        self.padding = padding
        self.value = float(value)

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() not in (self._dims + 1, self._dims + 2):
            raise ValueError(f"{type(self).__name__}: expected a {self._dims + 1}D or "
                             f"{self._dims + 2}D input, got shape {tuple(input.shape)}")
        if self._mode == "constant":
            return F.pad(input, self.padding, "constant", self.value)
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class _ZeroPadNd(_PadNd):
    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)


def _make(base, mode: str, prefix: str, doc: str):
    classes = []
    for dims in (1, 2, 3):
        cls = type(f"{prefix}{dims}d", (base,), {"_dims": dims, "_mode": mode,
                                                 "__doc__": doc.format(dims=dims),
                                                 "__module__": __name__})
        classes.append(cls)
    return classes


ConstantPad1d, ConstantPad2d, ConstantPad3d = _make(
    _ConstantPadNd, "constant", "ConstantPad", "Pads the last {dims} dims with ``value``.")
ZeroPad1d, ZeroPad2d, ZeroPad3d = _make(
    _ZeroPadNd, "constant", "ZeroPad", "Pads the last {dims} dims with zeros.")
ReflectionPad1d, ReflectionPad2d, ReflectionPad3d = _make(
    _PadNd, "reflect", "ReflectionPad",
    "Pads the last {dims} dims with their reflection (the edge value not repeated).")
ReplicationPad1d, ReplicationPad2d, ReplicationPad3d = _make(
    _PadNd, "replicate", "ReplicationPad", "Pads the last {dims} dims by repeating the edge.")
CircularPad1d, CircularPad2d, CircularPad3d = _make(
    _PadNd, "circular", "CircularPad", "Pads the last {dims} dims by wrapping around.")
