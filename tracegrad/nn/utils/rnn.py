"""pad_sequence (variable-length sequences to one padded batch)."""
from __future__ import annotations

from ..._ops.shape import stack
from ..._tensor import Tensor


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack sequences of shape ``(L_i, *)`` into ``(L_max, B, *)`` (or ``(B, L_max, *)``).

    >>> import tracegrad as torch
    >>> pad_sequence([torch.ones(2), torch.ones(3)], batch_first=True).tolist()
    [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    """
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    seqs = list(sequences)
    max_len = max(s.shape[0] for s in seqs)
    padded = []
    for s in seqs:
        extra = max_len - s.shape[0]
        pads = [(0, extra) if padding_side == "right" else (extra, 0)] + [(0, 0)] * (s.ndim - 1)
        padded.append(s.pad_dims(pads, padding_value))
    return stack(padded, 0 if batch_first else 1)


from ._packed import (PackedSequence, pack_padded_sequence, pack_sequence,  # noqa: E402,F401
                      pad_packed_sequence, unpack_sequence, unpad_sequence)
