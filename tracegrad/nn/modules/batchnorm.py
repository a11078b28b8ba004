"""PyTorch's module path ``torch.nn.modules.batchnorm``: scripts import the batch-norm
classes (and subclass ``_BatchNorm``) from here; they live in ``normalization``."""
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, _BatchNorm

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "_BatchNorm"]
