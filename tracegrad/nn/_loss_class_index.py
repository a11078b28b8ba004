"""nll_loss and cross_entropy with class-index targets, written so that a compiled
call is one row kernel per direction.

NOTE (one-pass cross entropy): ``cross_entropy(x, t)`` is ``logsumexp(x) - x[t]`` per
row, never ``-log_softmax(x)[t]``: the log-probabilities (a full (N, C) array) are
neither materialised nor saved.  Under ``compile`` the target pick is a masked row sum,
``sum(where(j == t, x, 0))``: it rides the same pass over the row as the max and the
sum of exponentials, reads nothing outside the row (an out-of-range target can never
cause a wild read), and its gradient ``where(j == t, g, 0)`` is elementwise, so the
backward ``(softmax - onehot) * g`` is one row kernel too (the backward recomputes the
exponentials from x and the row max, NOTE (recompute in backward)).  Eagerly the pick
is a gather (O(N) instead of a pass over all N*C logits); both give the same values.

Why not a load at the target's index inside the kernel (GATHER lowered): the forward
would save one compare-select-add per element, measured at 0.3-0.5 ms of ~2.5 ms CPU
for 4096x1024, but (1) a kernel cannot raise: a lowered GATHER would have to clamp a bad
index silently, for every user of gather, until kernels can report an error flag to
the runtime; (2) GATHER's gradient is a SCATTER_ADD into a zero (N, C) array, an extern
NumPy runs, so the backward would be a scatter plus a row kernel unless SCATTER_ADD is
lowered too.  The masked sum gets one kernel per direction from ops codegen fuses.

Bounds: eagerly, the targets are checked before anything else (PyTorch's error).  In a
compile trace the values are unknown, so the clamped target goes through a gather of
the class numbers ``arange(C)`` (an O(N) extern step that raises IndexError on a target
outside [0, C)); the masked pick compares against what it returns, so the check is
never dead code, and the program raises before returning any value.
"""
from __future__ import annotations

import numpy as np

from .._ops import math as M
from .._ops import reduce as R
from .._ops.creation import arange
from .._ops.dtype_names import scalar_type_name
from .._ops.indexing import gather
from .._primitives.registry import ShapeError
from .._tensor import Tensor, has_values

_CLASS_INDEX_DTYPES = (np.dtype(np.int64), np.dtype(np.uint8))  # PyTorch's Long and Byte


def class_dim_last(input: Tensor) -> Tensor:
    """``(N, C, d1, ...)`` to ``(N * d1 * ..., C)``; ``(C,)`` to ``(1, C)``."""
    if input.ndim == 1:
        return input.unsqueeze(0)
    if input.ndim == 2:
        return input
    return input.movedim(1, -1).reshape(-1, input.shape[1])


def check_targets(input: Tensor, target: Tensor, name: str) -> None:
    """Shape and dtype of class-index targets for ``input`` of shape (N, C, ...) or (C,)."""
    if input.ndim == 1:
        ok = target.ndim == 0
    else:
        ok = tuple(target.shape) == (input.shape[0],) + tuple(input.shape[2:])
    if not ok:
        expect = "()" if input.ndim == 1 else str((input.shape[0],) + tuple(input.shape[2:]))
        raise ShapeError(f"{name}: expected target of shape {expect} for input of shape "
                         f"{tuple(input.shape)}, got target shape {tuple(target.shape)}")
    if target._data.dtype not in _CLASS_INDEX_DTYPES:
        raise RuntimeError(f"{name}: expected target dtype to be Long or Byte, but got "
                           f"{scalar_type_name(target._data.dtype)} (class-index target of "
                           f"shape {tuple(target.shape)})")


def _flat_targets(target: Tensor, C: int, ignore_index: int, name: str) -> Tensor:
    """The targets as one int64 vector, range-checked when they hold values."""
    if target._data.dtype == np.uint8:
        target = target.long()  # Byte targets are accepted; gathers take int64
    t = target.reshape(-1)
    if has_values(t):
        tdata = t._data
        bad = (tdata != ignore_index) & ((tdata < 0) | (tdata >= C))
        if bad.any():
            idx = int(tdata[bad][0])
            raise IndexError(f"{name}: target {idx} is out of bounds: expected class "
                             f"indices in [0, {C - 1}] for {C} classes (or "
                             f"ignore_index={ignore_index})")
    return t


class _Picker:
    """Reads one class per row of (M, C) values: ``x[i, t[i]]`` (see the module NOTE)."""

    def __init__(self, t: Tensor, valid: Tensor, C: int, like: Tensor):
        safe = M.where(valid, t, 0)
        self.eager = has_values(t) and has_values(like)
        if self.eager:
            self.index = safe.unsqueeze(1)
            return
        # NOTE: a negative target (not ignored) must fail the gather's check too, which
        # accepts -C <= i < C: it is moved to C first.
        self.index = M.where(safe < 0, C, safe).unsqueeze(1)
        # NOTE: the row loop compares float32 class numbers (exact below 2**24 classes):
        # 8 lanes per AVX2 compare where int64 has 4.  Measured (4096x1024, CPU time of
        # the compiled forward, same process): int64 compare 3.9-4.2 ms, float32 2.3-3.1
        # ms, the same kernel without any pick 1.9-2.6 ms.
        classes = arange(C, dtype=np.float32 if C < 2 ** 24 else np.float64,
                         device=like.device).unsqueeze(0)
        target = gather(classes.expand(t.shape[0], C), 1, self.index)
        self.onehot = classes == target

    def pick(self, rows: Tensor) -> Tensor:
        """``rows[i, t[i]]`` for every row ``i`` of ``rows`` (M, C)."""
        if self.eager:
            return gather(rows, 1, self.index).squeeze(1)
        return R.sum(M.where(self.onehot, rows, 0.0), 1)

    def pick_class(self, values: Tensor) -> Tensor:
        """``values[t[i]]`` for every row ``i``: an O(M) gather from a (C,) vector (each
        row's weight), never a pass over (M, C)."""
        rows = values.unsqueeze(0).expand(self.index.shape[0], values.shape[0])
        return gather(rows, 1, self.index).squeeze(1)


def _reduced(loss: Tensor, denom, reduction: str, shape) -> Tensor:
    if reduction == "none":
        return loss.reshape(tuple(shape))
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / denom


def _check_weight(weight, C: int, name: str) -> None:
    if weight is not None and tuple(weight.shape) != (C,):
        raise RuntimeError(f"{name}: weight tensor should be defined either for all {C} "
                           f"classes or no classes but got weight tensor of shape: "
                           f"{list(weight.shape)}")


def _weighted(per_row: Tensor, valid: Tensor, picker: _Picker, weight, reduction: str):
    """(per-row losses, the mean's denominator): ignored rows are 0 (NaN logits there
    included, as in PyTorch), the others times their class weight; the denominator
    counts or weighs the rows that are not ignored."""
    if weight is None:
        loss = M.where(valid, per_row, 0.0)
        return loss, (valid.sum().to(loss.dtype) if reduction == "mean" else None)
    w_t = M.where(valid, picker.pick_class(weight), 0.0)
    return M.where(valid, per_row * w_t, 0.0), (w_t.sum() if reduction == "mean" else None)


def _rows_and_targets(input, target, weight, ignore_index: int, name: str):
    """What both losses start from, after checking their arguments: the scores as (N, C)
    rows, which rows count (target != ignore_index), and the picker of each row's class."""
    check_targets(input, target, name)
    C = input.shape[0] if input.ndim == 1 else input.shape[1]
    _check_weight(weight, C, name)
    rows = class_dim_last(input)
    t = _flat_targets(target, C, ignore_index, name)
    valid = t != ignore_index
    return rows, valid, _Picker(t, valid, C, rows)


def nll_loss(input, target, weight=None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """``-input[i, t[i]]`` (times ``weight[t[i]]``) over rows of log-probabilities."""
    logp, valid, picker = _rows_and_targets(input, target, weight, ignore_index, "nll_loss")
    loss, denom = _weighted(-picker.pick(logp), valid, picker, weight, reduction)
    return _reduced(loss, denom, reduction, target.shape)


def cross_entropy_class_index(input, target, weight, ignore_index: int, reduction: str,
                              label_smoothing: float) -> Tensor:
    """``cross_entropy`` for class-index targets (NOTE (one-pass cross entropy))."""
    x, valid, picker = _rows_and_targets(input, target, weight, ignore_index, "cross_entropy")
    C = x.shape[1]
    # NOTE: the max is detached, as in log_softmax: its gradient through ``x - m`` and
    # ``+ m`` cancels exactly in the math, and would only add rounding noise
    m = R.amax(x, 1, keepdim=True).detach()
    shifted = x - m
    log_sum = M.log(R.sum(M.exp(shifted), 1))          # logsumexp(x) - m, per row
    nll = log_sum - picker.pick(shifted)                # = -log_softmax(x)[t]
    loss, denom = _weighted(nll, valid, picker, weight, reduction)
    if label_smoothing > 0:
        # -sum_c w_c log_softmax(x)_c = sum(w) * log_sum - sum_c w_c (x_c - m): one more
        # row sum in the same pass as the sum of exponentials
        if weight is not None:
            smooth = weight.sum() * log_sum - R.sum(shifted * weight, 1)
        else:
            smooth = C * log_sum - R.sum(shifted, 1)
        smooth = M.where(valid, smooth, 0.0)
        loss = loss * (1 - label_smoothing) + smooth * (label_smoothing / C)
    return _reduced(loss, denom, reduction, target.shape)
