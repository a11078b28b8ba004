"""PyTorch's module path ``torch.nn.modules.batchnorm``: scripts import the batch-norm
classes (and subclass ``_BatchNorm``) from here; they live in ``normalization``. Also
``SyncBatchNorm``, which is batch norm over any ``(N, C, ...)`` input."""
from __future__ import annotations

from ..._primitives.registry import ShapeError
from ..._tensor import Tensor
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, _BatchNorm

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "_BatchNorm"]


class SyncBatchNorm(_BatchNorm):
    """Batch norm whose statistics PyTorch reduces over a process group. tracegrad runs
    one process per device and no group is synchronised here: without a process group
    (or with one of one rank) this is exactly ``BatchNorm`` over ``(N, C, *)``; with more
    ranks it refuses, rather than normalise each rank by its own statistics."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, process_group=None,
                 device=None, dtype=None, *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)
        self.process_group = process_group

    def _check_input_dim(self, input: Tensor) -> None:
        if input.ndim < 2:
            raise ValueError(f"SyncBatchNorm: expected at least 2D input (got {input.ndim}D "
                             f"input)")
        if input.shape[1] == 0:
            raise ValueError("SyncBatchNorm number of input channels should be non-zero")
        if input.shape[1] != self.num_features:
            raise ShapeError(f"{self!r}: expected input of shape (N, C, *) with C = "
                             f"num_features = {self.num_features}, got shape "
                             f"{tuple(input.shape)}")

    def forward(self, input: Tensor) -> Tensor:
        if self.training:
            from ...distributed import process_group as pg
            if pg.is_initialized() and pg.get_world_size(self.process_group) > 1:
                raise NotImplementedError(
                    f"SyncBatchNorm: synchronising batch statistics over "
                    f"{pg.get_world_size(self.process_group)} ranks is not supported; use "
                    f"BatchNorm (per-rank statistics) or one rank")
        return super().forward(input)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """``module`` with every ``_BatchNorm`` layer replaced by a ``SyncBatchNorm`` that
        shares its parameters and buffers (PyTorch's recursive conversion)."""
        out = module
        if isinstance(module, _BatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine,
                      module.track_running_stats, process_group)
            if module.affine:
                out.weight = module.weight
                out.bias = module.bias
            out.running_mean = module.running_mean
            out.running_var = module.running_var
            out.num_batches_tracked = module.num_batches_tracked
            out.training = module.training
            if hasattr(module, "qconfig"):
                out.qconfig = module.qconfig
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return out
