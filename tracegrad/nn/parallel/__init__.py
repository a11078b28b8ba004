"""Data parallelism (PyTorch's ``torch.nn.parallel``): across processes, and the
single-device ``DataParallel`` wrapper."""
from .data_parallel import DataParallel
from .distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel"]
