"""``F.embedding_bag``: sums, means or maxima of bags of embedding rows, as a composite.

The bags (a 2-D input, or a 1-D input cut by ``offsets``) become one padded
``(bags, longest)`` index matrix and a mask built on the host from ``offsets``; the
lookup, the weighting and the reduction are tensor ops, so autograd (and a compile
trace, which only needs concrete offsets) sees through them.
"""
from __future__ import annotations

import numpy as np

from .._ops import math as M
from .._ops.creation import tensor
from .._primitives.registry import ShapeError
from .._tensor import Tensor, _concrete

_MODES = ("sum", "mean", "max")


def _bag_positions(input: Tensor, offsets: Tensor, include_last_offset: bool):
    """``(bags, longest)`` positions into the 1-D ``input`` and their validity mask."""
    offs = _concrete(offsets._data, "embedding_bag(offsets)").astype(np.int64).reshape(-1)
    n = input.shape[0]
    if offs.size and offs[0] != 0:
        raise ValueError(f"embedding_bag: offsets[0] has to be 0, i.e., the first sequence "
                         f"in the mini-batch has to start from position 0. However, got "
                         f"{int(offs[0])}")
    if offs.size and offs[-1] > n:
        raise ValueError(f"embedding_bag: offsets[-1] can not be greater than input's length "
                         f"({n}), but got offsets[-1] of {int(offs[-1])}")
    if np.any(np.diff(offs) < 0):
        raise ValueError(f"embedding_bag: offsets must be non-decreasing, got {offs.tolist()}")
    # NOTE: with include_last_offset the last bag still runs to the end of the input
    # whatever offsets[-1] says (PyTorch 2.13 on the CPU: offsets [0, 2, 5] over 9 indices
    # make bags [0:2] and [2:9])
    starts = offs[:-1] if include_last_offset else offs
    ends = np.append(offs[1:len(starts)], n)[:len(starts)]
    lengths = ends - starts
    longest = max(int(lengths.max()) if lengths.size else 0, 1)
    cols = np.arange(longest)
    mask = cols[None, :] < lengths[:, None]
    pos = np.where(mask, starts[:, None] + cols[None, :], 0)
    return pos, mask


def embedding_bag(input: Tensor, weight: Tensor, offsets: Tensor | None = None,
                  max_norm: float | None = None, norm_type: float = 2,
                  scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights: Tensor | None = None, include_last_offset: bool = False,
                  padding_idx: int | None = None) -> Tensor:
    """Reduce bags of rows of ``weight`` (``mode``: ``'sum'``, ``'mean'`` or ``'max'``);
    an empty bag (or one of ``padding_idx`` entries only) gives zeros.

    >>> import tracegrad as torch
    >>> w = torch.arange(6.0).reshape(3, 2)
    >>> embedding_bag(torch.tensor([0, 2, 1]), w, torch.tensor([0, 2]), mode="sum").tolist()
    [[4.0, 6.0], [2.0, 3.0]]
    """
    if mode not in _MODES:
        raise ValueError(f"embedding_bag: mode has to be one of sum, mean or max, got {mode!r}")
    if weight.ndim != 2:
        raise ShapeError(f"embedding_bag: weight has to be a 2D Tensor, but got a "
                         f"{weight.ndim}D weight of shape {tuple(weight.shape)}")
    if input._data.dtype.kind not in "iu":
        raise TypeError(f"embedding_bag: expected an integer (long) input, got {input.dtype}")
    if per_sample_weights is not None:
        if mode != "sum":
            raise NotImplementedError(
                f"embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                f"supported for mode='sum' (got mode='{mode}'). Please open a feature "
                f"request on GitHub.")
        if tuple(per_sample_weights.shape) != tuple(input.shape):
            raise ValueError(f"embedding_bag: embedding_bag: If per_sample_weights "
                             f"({tuple(per_sample_weights.shape)}) is not None, then it must "
                             f"have the same shape as the input ({tuple(input.shape)})")
    n_rows = weight.shape[0]
    if padding_idx is not None:
        if not -n_rows <= padding_idx < n_rows:
            raise ValueError(f"embedding_bag: padding_idx must be within the number of "
                             f"embeddings {n_rows}, got {padding_idx}")
        padding_idx = padding_idx % n_rows
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError(f"embedding_bag: if input is 2D, then offsets has to be None, as "
                             f"input is treated is a mini-batch of fixed length sequences. "
                             f"However, found offsets of type {type(offsets).__name__}")
        idx, psw, mask = input, per_sample_weights, None
    elif input.ndim == 1:
        if offsets is None:
            raise ValueError("embedding_bag: offsets has to be a 1D Tensor but got None")
        if offsets.ndim != 1:
            raise ValueError(f"embedding_bag: offsets has to be a 1D Tensor, got shape "
                             f"{tuple(offsets.shape)}")
        pos, valid = _bag_positions(input, offsets, include_last_offset)
        pos_t = tensor(pos)
        idx = input[pos_t] if input.shape[0] else tensor(np.zeros(pos.shape, np.int64))
        psw = per_sample_weights[pos_t] if per_sample_weights is not None else None
        mask = tensor(valid)
    else:
        raise ValueError(f"embedding_bag: input has to be 1D or 2D Tensor, but got Tensor of "
                         f"dimension {input.ndim} (shape {tuple(input.shape)})")
    from .functional import embedding
    rows = embedding(idx, weight, None, max_norm, norm_type, scale_grad_by_freq)
    if padding_idx is not None:
        keep = idx != padding_idx
        mask = keep if mask is None else mask & keep
    if psw is not None:
        rows = rows * psw.unsqueeze(-1)
    return _reduce_bags(rows, mask, mode)


def _reduce_bags(rows: Tensor, mask: Tensor | None, mode: str) -> Tensor:
    """``rows``: ``(bags, longest, dim)``; ``mask``: ``(bags, longest)`` or None (all)."""
    if mask is None:
        if mode == "sum":
            return rows.sum(1)
        return rows.mean(1) if mode == "mean" else rows.amax(1)
    m = mask.unsqueeze(-1)
    if mode == "max":
        # NOTE: -inf fills the holes; a bag with none left is 0 (PyTorch's empty bag)
        top = M.where(m, rows, float("-inf")).amax(1)
        return M.where(mask.any(1).unsqueeze(-1), top, 0.0)
    total = M.where(m, rows, 0.0).sum(1)
    if mode == "sum":
        return total
    count = mask.sum(1, keepdim=True).to(rows.dtype)
    return total / count.clamp(min=1.0)
