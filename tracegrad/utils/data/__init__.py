"""Datasets, samplers and the DataLoader (PyTorch's ``torch.utils.data``).

>>> import tracegrad as torch
>>> from tracegrad.utils.data import DataLoader, TensorDataset
>>> loader = DataLoader(TensorDataset(torch.arange(6.0)), batch_size=4, shuffle=True,
...                     generator=torch.Generator().manual_seed(0))
>>> [len(x) for (x,) in loader]
[4, 2]
"""
from ._collate import default_collate, default_convert
from ._worker import WorkerInfo, get_worker_info
from .dataloader import DataLoader
from .dataset import (ChainDataset, ConcatDataset, Dataset, IterableDataset, StackDataset,
                      Subset, TensorDataset, random_split)
from .distributed import DistributedSampler
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler,
                      SubsetRandomSampler, WeightedRandomSampler)

__all__ = ["DataLoader", "Dataset", "IterableDataset", "TensorDataset", "StackDataset",
           "Subset", "ConcatDataset", "ChainDataset", "random_split", "Sampler",
           "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
           "BatchSampler", "DistributedSampler", "default_collate", "default_convert", "get_worker_info",
           "WorkerInfo"]
