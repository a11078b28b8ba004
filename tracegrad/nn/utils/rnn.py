"""``torch.nn.utils.rnn``: padding and packing variable-length sequences (implemented in
``tracegrad/nn/_packed_sequence.py``)."""
from .._packed_sequence import (PackedSequence, pack_padded_sequence,  # noqa: F401
                                pack_sequence, pad_packed_sequence, pad_sequence,
                                unpack_sequence, unpad_sequence)

__all__ = ["PackedSequence", "pack_padded_sequence", "pack_sequence", "pad_packed_sequence",
           "pad_sequence", "unpack_sequence", "unpad_sequence"]
