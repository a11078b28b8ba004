"""``tracegrad.nn``: modules, parameters, functional forms, init and utils, with
PyTorch's names, defaults and semantics. Every layer is a composite of tensor ops.

>>> import tracegrad as torch
>>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
>>> net(torch.zeros(3, 4)).shape
tracegrad.Size([3, 2])
"""
from . import common_types, functional, grad, init, parallel, utils  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import __dict__ as _mods
from .parallel import DataParallel  # noqa: F401
from .parameter import (Buffer, Parameter, UninitializedBuffer,  # noqa: F401
                        UninitializedParameter)

__all__ = ["Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer",
           "DataParallel", "common_types", "functional", "grad", "init", "parallel",
           "utils"] + sorted(
    n for n, v in _mods.items() if isinstance(v, type) and not n.startswith("_"))
del _mods
