"""``F.ctc_loss``: the connectionist temporal classification loss as a composite.

The forward (alpha) recursion runs over time in Python, each step a few tensor ops over
the ``(N, 2 * S + 1)`` blank-extended targets, so autograd derives the gradient
PyTorch computes with its beta recursion. Lengths and targets are read on the host.
"""
from __future__ import annotations

import numpy as np

from .._ops import math as M
from .._ops.creation import tensor
from .._ops.shape import stack
from .._primitives.registry import ShapeError
from .._tensor import Tensor, _concrete
from ._loss import _reduce

# NOTE: unreachable states hold this instead of -inf, so that logsumexp never meets
# (-inf) - (-inf) (a NaN gradient); a final log-likelihood below _IMPOSSIBLE / 2 is
# reported as -inf, as PyTorch does
_IMPOSSIBLE = -1e30


def _as_lengths(v, n: int, what: str) -> np.ndarray:
    arr = np.asarray(_concrete(v._data, f"ctc_loss({what})") if isinstance(v, Tensor) else v)
    arr = arr.astype(np.int64).reshape(-1)
    if arr.shape[0] != n:
        raise ShapeError(f"ctc_loss: expected {what} of length {n} (the batch), got "
                         f"{arr.shape[0]}")
    return arr


def ctc_loss(log_probs: Tensor, targets, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """``-log p(target | input)`` summed over all CTC alignments; ``log_probs`` is
    ``(T, N, C)`` (or ``(T, C)``) log-softmax output, ``targets`` ``(N, S)`` padded or
    the targets concatenated. ``'mean'`` divides each loss by its target length."""
    unbatched = log_probs.ndim == 2
    lp = log_probs.unsqueeze(1) if unbatched else log_probs
    if lp.ndim != 3:
        raise ShapeError(f"ctc_loss: expected log_probs of shape (T, N, C) or (T, C), got "
                         f"{tuple(log_probs.shape)}")
    T_, N, C = lp.shape
    if not 0 <= blank < C:
        raise ValueError(f"ctc_loss: blank must be in label range [0, {C - 1}], got {blank}")
    in_len = _as_lengths(input_lengths, N, "input_lengths")
    tg_len = _as_lengths(target_lengths, N, "target_lengths")
    if np.any(in_len > T_) or np.any(in_len < 0):
        raise ValueError(f"ctc_loss: input_lengths must be in [0, {T_}], got "
                         f"{in_len.tolist()}")
    tgt = np.asarray(_concrete(targets._data, "ctc_loss(targets)")).astype(np.int64)
    if unbatched:
        tgt = tgt.reshape(1, -1)
    S = int(tg_len.max()) if N else 0
    labels = np.full((N, max(S, 1)), blank, np.int64)
    if tgt.ndim == 2:   # (N, S) padded
        for n in range(N):
            if tg_len[n] > tgt.shape[1]:
                raise ValueError(f"ctc_loss: target_lengths[{n}] = {tg_len[n]} exceeds the "
                                 f"padded targets' length {tgt.shape[1]}")
            labels[n, :tg_len[n]] = tgt[n, :tg_len[n]]
    else:
        starts = np.concatenate([[0], np.cumsum(tg_len)[:-1]])
        if tg_len.sum() > tgt.size:
            raise ValueError(f"ctc_loss: target_lengths sum to {int(tg_len.sum())}, more than "
                             f"the {tgt.size} concatenated targets")
        for n in range(N):
            labels[n, :tg_len[n]] = tgt.reshape(-1)[starts[n]:starts[n] + tg_len[n]]
    L = 2 * S + 1
    ext = np.full((N, L), blank, np.int64)
    ext[:, 1::2] = labels[:, :S]
    # a step over s - 2 skips a blank between two different labels
    skip = np.zeros((N, L), bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    emit = lp.gather(2, tensor(np.broadcast_to(ext, (T_, N, L)).copy()))      # (T, N, L)
    start = np.full((N, L), _IMPOSSIBLE)
    start[:, 0] = 0.0
    start[:, 1] = np.where(tg_len > 0, 0.0, _IMPOSSIBLE) if L > 1 else 0.0
    dt = lp.dtype
    alpha = emit[0] + tensor(start).to(dt)
    pad1 = tensor(np.full((N, 1), _IMPOSSIBLE)).to(dt)
    pad2 = tensor(np.full((N, 2), _IMPOSSIBLE)).to(dt)
    skip_t = tensor(skip)
    for t in range(1, T_):
        prev1 = _shift(alpha, pad1, 1, L)
        prev2 = M.where(skip_t, _shift(alpha, pad2, 2, L), _IMPOSSIBLE)
        new = stack([alpha, prev1, prev2], 0).logsumexp(0) + emit[t]
        active = tensor((t < in_len)[:, None])
        alpha = M.where(active, new, alpha)
    last = tensor((2 * tg_len)[:, None])
    end = alpha.gather(1, last).squeeze(1)
    before = alpha.gather(1, (last - 1).clamp(min=0)).squeeze(1)
    before = M.where(tensor(tg_len > 0), before, _IMPOSSIBLE)
    ll = stack([end, before], 0).logsumexp(0)
    # no frames: only the empty target is possible
    ll = M.where(tensor(in_len == 0), tensor(np.where(tg_len == 0, 0.0, _IMPOSSIBLE)).to(dt),
                 ll)
    impossible = ll < _IMPOSSIBLE / 2
    loss = M.where(impossible, float("inf"), -ll)
    if zero_infinity:
        loss = M.where(impossible, 0.0, loss)
    if reduction == "mean":
        return (loss / tensor(np.maximum(tg_len, 1)).to(dt)).mean()
    out = _reduce(loss, reduction)
    return out.squeeze(0) if unbatched and reduction == "none" else out


def _shift(alpha: Tensor, pad: Tensor, k: int, L: int) -> Tensor:
    """``alpha`` moved ``k`` states right along dim 1, ``_IMPOSSIBLE`` filling in."""
    from .._ops.shape import cat
    return cat([pad, alpha[:, :L - k]], 1) if L > k else pad[:, :L]
