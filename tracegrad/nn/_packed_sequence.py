"""pad_sequence, PackedSequence and pack/pad conversions (PyTorch's
``torch.nn.utils.rnn``, which re-exports them: they sit here, beside the other nn
composites, because the recurrent modules use them and ``nn.utils`` imports modules).

A packed batch stores its sequences time step by time step, longest first: ``data`` is
``(sum(lengths), *)`` and ``batch_sizes[t]`` is how many sequences are longer than ``t``.
Here the conversions are index ops on tensors, so gradients flow through them, and the
recurrent modules run a packed batch as a padded one whose hidden state stops at each
sequence's end (``RNNBase._forward_packed``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._ops.creation import tensor
from .._ops.shape import cat, stack
from .._tensor import Tensor


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


class PackedSequence(NamedTuple):
    """``(data, batch_sizes, sorted_indices, unsorted_indices)`` as PyTorch lays it out."""
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None

    def to(self, *args, **kwargs) -> "PackedSequence":
        return self._replace(data=self.data.to(*args, **kwargs))

    def cpu(self) -> "PackedSequence":
        return self

    def float(self) -> "PackedSequence":
        return self._replace(data=self.data.float())

    def double(self) -> "PackedSequence":
        return self._replace(data=self.data.double())

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda


def _lengths_array(lengths) -> np.ndarray:
    if isinstance(lengths, Tensor):
        return np.asarray(lengths.cpu().numpy(), dtype=np.int64).reshape(-1)
    return np.asarray(list(lengths), dtype=np.int64).reshape(-1)


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch ``(T, B, *)`` (``(B, T, *)`` with ``batch_first``) whose
    sequence ``b`` has ``lengths[b]`` valid steps.

    >>> import tracegrad as torch
    >>> x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]])
    >>> p = pack_padded_sequence(x, [3, 2], batch_first=True)
    >>> p.data.tolist(), p.batch_sizes.tolist()
    ([1.0, 4.0, 2.0, 5.0, 3.0], [2, 2, 1])
    """
    lens = _lengths_array(lengths)
    batch_dim = 0 if batch_first else 1
    if input.ndim < 2 or lens.shape[0] != input.shape[batch_dim]:
        raise ValueError(f"pack_padded_sequence: expected {input.shape[batch_dim] if input.ndim >= 2 else '?'} "
                         f"lengths, one per sequence of the input of shape "
                         f"{tuple(input.shape)} (batch_first={batch_first}), got {lens.shape[0]}")
    if lens.size and lens.min() <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an "
                           "element in 'lengths' that is <= 0")
    if enforce_sorted:
        if np.any(lens[:-1] < lens[1:]):
            raise RuntimeError("`lengths` array must be sorted in decreasing order when "
                               "`enforce_sorted` is True. You can pass `enforce_sorted=False` "
                               "to pack_padded_sequence and/or pack_sequence to sidestep this "
                               "requirement if you do not need ONNX exportability.")
        sorted_indices = unsorted_indices = None
        order = np.arange(lens.shape[0])
    else:
        order = np.argsort(-lens, kind="stable")
        sorted_indices = tensor(order, dtype=None)
        unsorted_indices = tensor(np.argsort(order, kind="stable"))
    if lens.max() > input.shape[1 - batch_dim]:
        raise RuntimeError(f"pack_padded_sequence: a length of {int(lens.max())} is longer "
                           f"than the input's {input.shape[1 - batch_dim]} time steps "
                           f"(input shape {tuple(input.shape)}, batch_first={batch_first})")
    if batch_first:
        input = input.transpose(0, 1)
    sorted_lens = lens[order]
    batch_sizes = [int((sorted_lens > t).sum()) for t in range(int(sorted_lens[0]))]
    rows = []
    for t, n in enumerate(batch_sizes):
        idx = order[:n]
        rows.append(input[t][tensor(idx)] if sorted_indices is not None else input[t, :n])
    return PackedSequence(cat(rows, 0), tensor(np.array(batch_sizes, dtype=np.int64)),
                          sorted_indices, unsorted_indices)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: int | None = None):
    """The inverse of ``pack_padded_sequence``: ``(padded, lengths)``, the batch in its
    original order and ``lengths`` an int64 tensor."""
    data, batch_sizes = sequence.data, [int(b) for b in sequence.batch_sizes.tolist()]
    steps, batch = len(batch_sizes), batch_sizes[0]
    if total_length is not None:
        if total_length < steps:
            raise ValueError(f"Expected total_length to be at least the length of the longest "
                             f"sequence in input, but got total_length={total_length} and max "
                             f"sequence length being {steps}")
    else:
        total_length = steps
    rows, start = [], 0
    tail = [(0, 0)] * (data.ndim - 1)
    for n in batch_sizes:
        rows.append(data[start:start + n].pad_dims([(0, batch - n)] + tail, padding_value))
        start += n
    if total_length > steps:
        rows += [rows[0].new_full(tuple(rows[0].shape), padding_value)] * (total_length - steps)
    padded = stack(rows, 0)
    lengths = np.array([sum(1 for n in batch_sizes if n > b) for b in range(batch)], np.int64)
    if sequence.unsorted_indices is not None:
        padded = padded[:, sequence.unsorted_indices]
        lengths = lengths[sequence.unsorted_indices.numpy()]
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, tensor(lengths)


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of ``(L_i, *)`` tensors (longest first unless ``enforce_sorted=False``)."""
    seqs = list(sequences)
    return pack_padded_sequence(pad_sequence(seqs), [s.shape[0] for s in seqs],
                                enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The list of ``(L_i, *)`` tensors a PackedSequence holds, in original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return [padded[b, :int(n)] for b, n in enumerate(lengths.tolist())]


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list:
    """Split a padded batch back into its ``(L_i, *)`` sequences."""
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [padded_sequences[b, :int(n)] for b, n in enumerate(_lengths_array(lengths))]


def pack_like(padded: Tensor, like: PackedSequence) -> PackedSequence:
    """Pack a time-major ``(T, B, *)`` batch in original order with the layout of ``like``
    (the output of a recurrent module run on ``like``)."""
    batch_sizes = [int(b) for b in like.batch_sizes.tolist()]
    rows = []
    for t, n in enumerate(batch_sizes):
        if like.sorted_indices is None:
            rows.append(padded[t, :n])
        else:
            rows.append(padded[t][like.sorted_indices[:n]])
    return like._replace(data=cat(rows, 0))


def step_masks(like: PackedSequence) -> tuple[Tensor, list]:
    """``(padded input, masks)``: the packed input as a time-major batch in original order
    and, per time step, a ``(B, 1)`` bool tensor saying which sequences are still running."""
    padded, lengths = pad_packed_sequence(like)
    lens = lengths.numpy().reshape(-1, 1)
    return padded, [tensor(lens > t) for t in range(padded.shape[0])]
