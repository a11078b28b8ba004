"""``Size``: a tensor's shape, a tuple that prints like PyTorch's ``torch.Size``."""
from __future__ import annotations


class Size(tuple):
    __slots__ = ()

    def numel(self) -> int:
        n = 1
        for d in self:
            n *= d
        return n

    def __getitem__(self, item):
        result = tuple.__getitem__(self, item)
        return Size(result) if isinstance(item, slice) else result

    def __repr__(self) -> str:
        return f"tracegrad.Size({list(self)})"
