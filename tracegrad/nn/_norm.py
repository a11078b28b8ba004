"""Normalisation composites: batch_norm (with running statistics), layer_norm,
group_norm, instance_norm, normalize."""
from __future__ import annotations

from .._ops import math as M
from .._ops.pytorch_args import write_out
from .._primitives.registry import ShapeError
from .._tensor import Tensor
from ..autograd.grad_mode import no_grad


def _channel_shape(x: Tensor) -> tuple:
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _channel_affine(out: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    """``out * weight + bias`` with per-channel (dim 1) ``weight`` and ``bias``."""
    shape = _channel_shape(out)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise over every dim but the channel dim (1).

    In training the batch statistics are used and the running ones (if given) are
    updated in place: ``running = (1 - momentum) * running + momentum * batch``, with the
    unbiased variance, as in PyTorch.
    """
    if input.ndim < 2:
        raise ShapeError(f"batch_norm: expected an input with at least 2 dims (N, C, ...), "
                         f"got shape {tuple(input.shape)}")
    axes = (0,) + tuple(range(2, input.ndim))
    shape = _channel_shape(input)
    if training:
        n = input.numel() // input.shape[1]
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got "
                             f"input size {tuple(input.shape)}")
        mean = input.mean(axes, keepdim=True)
        centered = input - mean
        var = (centered * centered).mean(axes, keepdim=True)
        if running_mean is not None or running_var is not None:
            with no_grad():
                m = float(momentum)
                if running_mean is not None:
                    running_mean.mul_(1.0 - m).add_(mean.detach().reshape(-1) * m)
                if running_var is not None:
                    # times n, then times 1 / (n - 1), as var() does: a compile guard
                    # trace then follows a symbolic batch size (n / (n - 1) is no form
                    # the fit knows, so every batch size compiled again)
                    unbiased = var.detach().reshape(-1) * n * (1 / (n - 1))
                    running_var.mul_(1.0 - m).add_(unbiased * m)
        out = centered * M.rsqrt(var + eps)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are required when "
                             "training=False")
        out = (input - running_mean.reshape(shape)) * M.rsqrt(running_var.reshape(shape) + eps)
    return _channel_affine(out, weight, bias)


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dims (biased variance)."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) \
        else tuple(normalized_shape)
    k = len(normalized_shape)
    if tuple(input.shape[input.ndim - k:]) != normalized_shape or input.ndim < k:
        raise ShapeError(f"layer_norm: expected input with trailing shape "
                         f"{list(normalized_shape)}, got shape {tuple(input.shape)}")
    axes = tuple(range(input.ndim - k, input.ndim))
    mean = input.mean(axes, keepdim=True)
    centered = input - mean
    var = (centered * centered).mean(axes, keepdim=True)
    out = centered * M.rsqrt(var + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) \
        else tuple(normalized_shape)
    axes = tuple(range(input.ndim - len(normalized_shape), input.ndim))
    if eps is None:
        import numpy as np
        eps = float(np.finfo(np.dtype(input._data.dtype)).eps)
    out = input * M.rsqrt((input * input).mean(axes, keepdim=True) + eps)
    return out if weight is None else out * weight


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise each of ``num_groups`` channel groups per sample."""
    if input.ndim < 2 or input.shape[1] % num_groups:
        raise ShapeError(f"group_norm: expected an input (N, C, ...) with C divisible by "
                         f"num_groups={num_groups}, got shape {tuple(input.shape)}")
    N = input.shape[0]
    x = input.reshape(N, num_groups, -1)
    mean = x.mean(-1, keepdim=True)
    centered = x - mean
    var = (centered * centered).mean(-1, keepdim=True)
    out = (centered * M.rsqrt(var + eps)).reshape(tuple(input.shape))
    return _channel_affine(out, weight, bias)


def instance_norm(input: Tensor, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats: bool = True, momentum: float = 0.1,
                  eps: float = 1e-5) -> Tensor:
    # NOTE: the running statistics were ignored: use_input_stats=False (an InstanceNorm
    # with track_running_stats in eval mode) normalised with the input's own statistics
    axes = tuple(range(2, input.ndim))
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: running_mean and running_var are required when "
                             "use_input_stats=False")
        shape = _channel_shape(input)
        out = (input - running_mean.reshape(shape)) * M.rsqrt(running_var.reshape(shape) + eps)
        return _channel_affine(out, weight, bias)
    mean = input.mean(axes, keepdim=True)
    centered = input - mean
    var = (centered * centered).mean(axes, keepdim=True)
    if running_mean is not None or running_var is not None:
        # PyTorch: the per-instance statistics averaged over the batch, variance unbiased
        n = input.numel() // (input.shape[0] * input.shape[1])
        with no_grad():
            m = float(momentum)
            if running_mean is not None:
                running_mean.mul_(1.0 - m).add_(mean.detach().mean(0).reshape(-1) * m)
            if running_var is not None:
                unbiased = var.detach().mean(0).reshape(-1) * (n / max(n - 1, 1))
                running_var.mul_(1.0 - m).add_(unbiased * m)
    out = centered * M.rsqrt(var + eps)
    return _channel_affine(out, weight, bias)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out=None) -> Tensor:
    """``x / max(||x||_p, eps)`` along ``dim``; with ``out`` the result is written there
    (PyTorch's ``out=`` rules: resized if needed, refused under autograd)."""
    norm = input.norm(p, dim, keepdim=True)
    result = input / M.maximum(norm, eps)
    if out is not None:
        return write_out("normalize", out, result)
    return result


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``x1 . x2 / max(||x1|| * ||x2||, eps)`` along ``dim`` (PyTorch 2's formula)."""
    n1 = (x1 * x1).sum(dim)
    n2 = (x2 * x2).sum(dim)
    denom = M.sqrt(M.maximum(n1 * n2, eps * eps))
    return (x1 * x2).sum(dim) / denom


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    return (x1 - x2 + eps).norm(p, -1, keepdim=keepdim)
