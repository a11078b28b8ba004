"""Small functional forms PyTorch scripts use: the in-place activation aliases
(``F.relu_`` ...), ``pixel_unshuffle``, ``channel_shuffle`` and ``gumbel_softmax``."""
from __future__ import annotations

from .._ops import math as M
from .._ops.creation import empty_like, zeros_like
from .._primitives.registry import ShapeError
from .._tensor import Tensor
from . import _activation as A


def relu_(input: Tensor) -> Tensor:
    return A.relu(input, inplace=True)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return A.elu(input, alpha, inplace=True)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return A.leaky_relu(input, negative_slope, inplace=True)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return A.hardtanh(input, min_val, max_val, inplace=True)


def selu_(input: Tensor) -> Tensor:
    return A.selu(input, inplace=True)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return A.celu(input, alpha, inplace=True)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    return A.threshold(input, threshold, value, inplace=True)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
           training: bool = False) -> Tensor:
    return A.rrelu(input, lower, upper, training, inplace=True)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """``(*, C, H * r, W * r) -> (*, C * r * r, H, W)``, the inverse of ``pixel_shuffle``."""
    r = downscale_factor
    *lead, C, H, W = input.shape
    if H % r or W % r:
        raise ShapeError(f"pixel_unshuffle expects height and width to be divisible by "
                         f"downscale_factor ({r}), got shape {tuple(input.shape)}")
    x = input.reshape(tuple(lead) + (C, H // r, r, W // r, r))
    n = len(lead)
    x = x.permute(tuple(range(n)) + (n, n + 2, n + 4, n + 1, n + 3))
    return x.reshape(tuple(lead) + (C * r * r, H // r, W // r))


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """``(N, g * k, *) -> (N, k * g, *)``: channel ``i * k + j`` moves to ``j * g + i``."""
    N, C = input.shape[0], input.shape[1]
    if groups <= 0 or C % groups:
        raise ShapeError(f"channel_shuffle: number of channels ({C}) must be divisible by "
                         f"groups ({groups})")
    rest = tuple(input.shape[2:])
    x = input.reshape((N, groups, C // groups) + rest).transpose(1, 2)
    return x.reshape((N, C) + rest)


def gumbel_softmax(logits: Tensor, tau: float = 1, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1) -> Tensor:
    """A sample from the Gumbel-softmax distribution; ``hard=True`` returns the one-hot
    argmax in the forward pass and the soft sample's gradient (straight-through)."""
    gumbels = -M.log(empty_like(logits).exponential_())
    y_soft = ((logits + gumbels) / tau).softmax(dim)
    if not hard:
        return y_soft
    index = y_soft.argmax(dim, keepdim=True)
    y_hard = zeros_like(logits).scatter_(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft
