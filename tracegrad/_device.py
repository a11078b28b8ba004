"""``tracegrad.device``: where a tensor's storage lives ("cpu" or "cuda:N")."""
from __future__ import annotations


class device:
    __slots__ = ("type", "index")

    def __init__(self, spec="cpu", index: int | None = None) -> None:
        if isinstance(spec, device):
            self.type, self.index = spec.type, spec.index
            return
        if isinstance(spec, int):
            spec, index = "cuda", spec
        spec = str(spec)
        if ":" in spec:
            spec, _, idx = spec.partition(":")
            index = int(idx)
        if spec not in ("cpu", "cuda"):
            raise RuntimeError(f"device: expected 'cpu' or 'cuda[:N]', got {spec!r}")
        if spec == "cuda" and index is None:
            index = 0
        self.type = spec
        self.index = index

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"


CPU = device("cpu")
