"""Margin and likelihood losses: soft margin, hinge embedding, multi-label soft margin,
multi-class margin, triplet margin and Gaussian negative log-likelihood, with PyTorch's
formulas and reductions."""
from __future__ import annotations

import math

import numpy as np

from .._ops import math as M
from .._ops.creation import from_numpy, zeros_like
from .._ops.indexing import gather
from .._primitives.registry import ShapeError
from .._tensor import Tensor
from ._activation import logsigmoid
from ._loss import _reduce, _reduction
from ._norm import pairwise_distance


def soft_margin_loss(input, target, size_average=None, reduce=None,
                     reduction="mean") -> Tensor:
    """``log(1 + exp(-y * x))`` for targets ``y`` in {1, -1}."""
    reduction = _reduction(size_average, reduce, reduction)
    return _reduce(-logsigmoid(target * input), reduction)


def hinge_embedding_loss(input, target, margin: float = 1.0, size_average=None, reduce=None,
                         reduction="mean") -> Tensor:
    """``x`` where ``y == 1``, ``max(0, margin - x)`` where ``y == -1``."""
    reduction = _reduction(size_average, reduce, reduction)
    zero = zeros_like(input)
    loss = (M.where(target != 1, M.relu(margin - input), zero)
            + M.where(target != -1, input, zero))
    return _reduce(loss, reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean") -> Tensor:
    """Per-class binary cross-entropy on logits, averaged over the classes (last dim)."""
    reduction = _reduction(size_average, reduce, reduction)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss.sum(-1) / input.shape[-1], reduction)


def multi_margin_loss(input, target, p: int = 1, margin: float = 1.0, weight=None,
                      size_average=None, reduce=None, reduction="mean") -> Tensor:
    """``sum_{i != y} max(0, margin - x[y] + x[i])^p / C`` per sample (``weight[y]`` scales)."""
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: only p == 1 and p == 2 supported, got p={p}")
    reduction = _reduction(size_average, reduce, reduction)
    unbatched = input.dim() == 1
    x = input.unsqueeze(0) if unbatched else input
    y = target.reshape(-1, 1)
    if x.dim() != 2 or y.shape[0] != x.shape[0]:
        raise ShapeError(f"multi_margin_loss: expected input (N, C) or (C,) and target (N,) "
                         f"or (), got input {tuple(input.shape)}, target {tuple(target.shape)}")
    x_y = gather(x, 1, y)
    hinge = M.relu(margin - x_y + x)
    if p == 2:
        hinge = hinge * hinge
    if weight is not None:
        hinge = hinge * gather(weight.unsqueeze(0).expand(x.shape[0], -1), 1, y)
    not_target = from_numpy(np.arange(x.shape[1])[None, :] != y.numpy())
    loss = M.where(not_target, hinge, zeros_like(hinge)).sum(1) / x.shape[1]
    return _reduce(loss.squeeze(0) if unbatched else loss, reduction)


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, size_average=None, reduce=None,
                        reduction="mean") -> Tensor:
    """``max(0, margin + d(a, p) - d(a, n))`` with ``d`` the p-norm distance."""
    reduction = _reduction(size_average, reduce, reduction)
    d_ap = pairwise_distance(anchor, positive, p, eps)
    d_an = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_an = M.minimum(d_an, pairwise_distance(positive, negative, p, eps))
    return _reduce(M.relu(margin + d_ap - d_an), reduction)


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6,
                      reduction="mean") -> Tensor:
    """``0.5 * (log(var) + (input - target)^2 / var)`` (+ ``0.5 * log(2 pi)`` if ``full``);
    ``var`` may lack the last dim or have size 1 there."""
    if var.dim() == input.dim() - 1 and tuple(var.shape) == tuple(input.shape[:-1]):
        var = var.unsqueeze(-1)
    if M.lt(var.detach(), 0).any().item():
        raise ValueError("var has negative entry/entries")
    # NOTE: PyTorch clamps a copy of var under no_grad: the gradient passes the clamp as if
    # it were the identity, which adding a detached correction reproduces.
    var = var + (M.clamp(var.detach(), min=eps) - var.detach())
    loss = 0.5 * (M.log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)
