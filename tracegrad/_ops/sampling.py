"""``multinomial`` and ``bernoulli`` with PyTorch's argument checks, as functions and
Tensor methods, over the samplers in ``creation.py`` (same generators and seeds as
``rand``)."""
from __future__ import annotations

import numpy as np

from .._dispatch import is_tracing
from .._errors import ShapeError
from .math import _describe as describe
from .._tensor import Tensor
from . import creation


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,
                generator=None) -> Tensor:
    """Indices drawn from each row's (unnormalised) probabilities; int64.

    >>> import tracegrad as torch
    >>> torch.multinomial(torch.tensor([0.0, 1.0, 0.0]), 2, replacement=True)
    tensor([1, 1])
    """
    if input.ndim not in (1, 2):
        raise ShapeError(f"multinomial: probabilities must be 1-D or 2-D, got {describe(input)}")
    if input._data.dtype.kind != "f":
        raise TypeError(f"multinomial: probabilities must be floating point, got "
                        f"{describe(input)}")
    if num_samples <= 0:
        raise ValueError(f"multinomial: cannot sample num_samples={num_samples} <= 0 samples")
    p = input.detach().numpy()
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"multinomial: probability tensor {describe(input)} contains inf, "
                         f"nan or an element < 0")
    rows = p.reshape(-1, p.shape[-1])
    if np.any(rows.sum(axis=1) <= 0):
        raise ValueError(f"multinomial: invalid distribution in {describe(input)}: a row's "
                         f"probabilities sum to <= 0")
    if not replacement and num_samples > int(np.min((rows > 0).sum(axis=1))):
        raise ValueError(f"multinomial: cannot sample {num_samples} samples without "
                         f"replacement from {describe(input)}: too few nonzero categories")
    return creation.multinomial(input, num_samples, replacement, generator=generator)


def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:
    """0/1 draws with probabilities ``input`` (or the scalar ``p``), in ``input``'s dtype."""
    if p is None:
        if is_tracing():   # no values to check; the draw itself traces as before
            return creation.bernoulli(input.detach(), generator=generator)
        probs = input.detach().numpy()
        if probs.size and (np.any(np.isnan(probs)) or probs.min() < 0 or probs.max() > 1):
            raise ValueError(f"bernoulli: probabilities {describe(input)} must be in [0, 1]")
        return creation.bernoulli(input.detach(), generator=generator)
    if isinstance(p, Tensor):
        return bernoulli(p.expand_as(input).to(input.dtype), generator=generator)
    if not 0 <= p <= 1:
        raise ValueError(f"bernoulli: p must be in [0, 1], got {p}")
    return creation.bernoulli(creation.full_like(input.detach(), p), generator=generator)


__all__ = ["multinomial", "bernoulli"]
