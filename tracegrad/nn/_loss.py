"""Loss functions as composites, with ``reduction`` and PyTorch's legacy
``size_average`` / ``reduce`` arguments."""
from __future__ import annotations

import warnings

import numpy as np

from .._ops import math as M
from .._ops import reduce as R
from .._primitives.registry import ShapeError
from .._tensor import Tensor
from .._untraced import untraced
from . import _loss_class_index as _class_index
from ._activation import _softplus_stable


def legacy_get_string(size_average, reduce, emit_warning: bool = True) -> str:
    """PyTorch's mapping of the old ``size_average``/``reduce`` flags to ``reduction``."""
    if size_average is None:
        size_average = True
    if reduce is None:
        reduce = True
    if size_average and reduce:
        ret = "mean"
    elif reduce:
        ret = "sum"
    else:
        ret = "none"
    if emit_warning:
        warnings.warn(f"size_average and reduce args will be deprecated, please use "
                      f"reduction='{ret}' instead.", UserWarning, stacklevel=3)
    return ret


def _reduction(size_average, reduce, reduction: str) -> str:
    if size_average is not None or reduce is not None:
        return legacy_get_string(size_average, reduce)
    if reduction not in ("mean", "sum", "none", "batchmean"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _check_same_shape(input: Tensor, target: Tensor, name: str) -> None:
    if tuple(input.shape) != tuple(target.shape):
        warnings.warn(f"{name}: using a target size ({tuple(target.shape)}) that is different "
                      f"to the input size ({tuple(input.shape)}). This will likely lead to "
                      f"incorrect results due to broadcasting. Please ensure they have the "
                      f"same size.", UserWarning, stacklevel=3)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean") -> Tensor:
    """Mean squared error."""
    _check_same_shape(input, target, "mse_loss")
    d = input - target
    return _reduce(d * d, _reduction(size_average, reduce, reduction))


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean") -> Tensor:
    _check_same_shape(input, target, "l1_loss")
    return _reduce(M.abs(input - target), _reduction(size_average, reduce, reduction))


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean",
                   beta: float = 1.0) -> Tensor:
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta``."""
    _check_same_shape(input, target, "smooth_l1_loss")
    reduction = _reduction(size_average, reduce, reduction)
    ad = M.abs(input - target)
    if beta == 0:
        return _reduce(ad, reduction)
    loss = M.where(ad < beta, ad * ad * (0.5 / beta), ad - 0.5 * beta)
    return _reduce(loss, reduction)


def huber_loss(input, target, reduction="mean", delta: float = 1.0, weight=None) -> Tensor:
    """``0.5 d^2`` where ``|d| <= delta``, else ``delta (|d| - 0.5 delta)``."""
    _check_same_shape(input, target, "huber_loss")
    ad = M.abs(input - target)
    loss = M.where(ad <= delta, ad * ad * 0.5, (ad - 0.5 * delta) * delta)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100,
             reduce=None, reduction="mean") -> Tensor:
    """Negative log-likelihood of class indices given log-probabilities ``(N, C, ...)``."""
    reduction = _reduction(size_average, reduce, reduction)
    return _class_index.nll_loss(input, target, weight, ignore_index, reduction)


@untraced   # NOTE (untraced stretches) in tracegrad/_untraced.py
def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100,
                  reduce=None, reduction="mean", label_smoothing: float = 0.0) -> Tensor:
    """``nll_loss(log_softmax(input, 1), target)`` for class indices (one row kernel per
    direction when compiled, see ``_loss_class_index``); for a floating ``target`` of
    the input's shape, the soft-label cross entropy."""
    reduction = _reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if not target.is_floating_point():
        return _class_index.cross_entropy_class_index(input, target, weight, ignore_index,
                                                      reduction, label_smoothing)
    class_dim = 0 if input.ndim == 1 else 1
    C = input.shape[class_dim]
    logp = R.log_softmax(input, class_dim)
    wshape = (C,) + (1,) * (input.ndim - 2) if input.ndim > 1 else (C,)
    if tuple(target.shape) != tuple(input.shape):
        raise ShapeError(f"cross_entropy: class-probability targets must have the "
                         f"input's shape {tuple(input.shape)}, got {tuple(target.shape)}")
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / C
    prod = logp * target
    if weight is not None:
        prod = prod * weight.reshape(wshape)
    loss = -prod.sum(class_dim)
    if reduction == "mean":
        return loss.sum() / float(max(input.numel() // C, 1)) if input.ndim > 1 \
            else loss.sum()
    return _reduce(loss, reduction)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean") -> Tensor:
    """``-(t log x + (1 - t) log(1 - x))`` with each log clamped to >= -100."""
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({tuple(target.shape)}) that is different to "
                         f"the input size ({tuple(input.shape)}) is deprecated. Please ensure "
                         f"they have the same size.")
    data = input._data
    if isinstance(data, np.ndarray) and data.size and (data.min() < 0 or data.max() > 1):
        raise RuntimeError("binary_cross_entropy: all elements of input should be between 0 "
                           "and 1")
    # NOTE: clamp the log itself (not x): log(0) = -inf becomes -100 like PyTorch, and
    # clamp passes no gradient where it clips.
    log_x = M.clamp(M.log(input), min=-100.0)
    log_1mx = M.clamp(M.log(1.0 - input), min=-100.0)
    loss = -(target * log_x + (1.0 - target) * log_1mx)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None) -> Tensor:
    """``BCE(sigmoid(x), t)`` computed stably: ``(1-t) x + (1 + (pw-1) t) softplus(-x)``."""
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({tuple(target.shape)}) must be the same as input size "
                         f"({tuple(input.shape)})")
    sp = _softplus_stable(-input)
    if pos_weight is not None:
        log_weight = (pos_weight - 1.0) * target + 1.0
        loss = (1.0 - target) * input + log_weight * sp
    else:
        loss = (1.0 - target) * input + sp
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean",
           log_target: bool = False) -> Tensor:
    """Pointwise ``target * (log target - input)`` (``input`` holds log-probabilities)."""
    if size_average is not None or reduce is not None:
        reduction = legacy_get_string(size_average, reduce)
    if log_target:
        loss = M.exp(target) * (target - input)
    else:
        # NOTE: xlogy: 0 * log 0 = 0; the log reads a safe value where target <= 0.
        positive = target > 0
        safe = M.where(positive, target, 1.0)
        loss = M.where(positive, target * (M.log(safe) - input), 0.0)
    if reduction == "batchmean":
        return loss.sum() / float(input.shape[0]) if input.ndim else loss.sum()
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and "
                      "the support size.'batchmean' divides only by the batch size, and "
                      "aligns with the KL div math definition.'mean' will be changed to "
                      "behave the same as 'batchmean' in the next major release.",
                      UserWarning, stacklevel=2)
    return _reduce(loss, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean") -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    if log_input:
        loss = M.exp(input) - target * input
    else:
        loss = input - target * M.log(input + eps)
    if full:
        safe = M.where(target > 1, target, 2.0)
        stirling = safe * M.log(safe) - safe + M.log(safe * 2 * np.pi) * 0.5
        loss = loss + M.where(target > 1, stirling, 0.0)
    return _reduce(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                        reduction="mean") -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    return _reduce(M.relu(-target * (input1 - input2) + margin), reduction)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                          reduction="mean") -> Tensor:
    from ._norm import cosine_similarity
    reduction = _reduction(size_average, reduce, reduction)
    cos = cosine_similarity(input1, input2, dim=-1)
    loss = M.where(target > 0, 1.0 - cos, M.relu(cos - margin))
    return _reduce(loss, reduction)
