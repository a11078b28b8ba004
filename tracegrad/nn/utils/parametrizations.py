"""``torch.nn.utils.parametrizations.weight_norm``: the weight as a magnitude
(``parametrizations.weight.original0``) times a direction (``original1``), through
``parametrize`` (the form PyTorch recommends over the hook-based ``nn.utils.weight_norm``).
"""
from __future__ import annotations

from ..modules.module import Module
from . import parametrize
from .weight_norm import _weight_norm, norm_except_dim

__all__ = ["weight_norm"]


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight):
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """``module.<name> = g * v / ||v||`` with ``g`` and ``v`` trained in its place; the
    norm is over every dimension but ``dim`` (``None``: the whole tensor)."""
    weight = getattr(module, name)
    if dim is not None and dim != -1:
        dim = dim % weight.ndim
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module
