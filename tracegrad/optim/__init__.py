"""Optimizers and learning-rate schedulers with PyTorch's names, defaults and formulas.

>>> import tracegrad as torch
>>> from tracegrad import optim
>>> w = torch.tensor([1.0, -1.0], requires_grad=True)
>>> opt = optim.Adam([w], lr=0.1)
>>> for _ in range(3):
...     opt.zero_grad(); (w * w).sum().backward(); _ = opt.step()
>>> [round(v, 4) for v in w.tolist()]
[0.7016, -0.7016]
"""
from . import lr_scheduler, swa_utils
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adam_variants import Adamax, NAdam, RAdam
from .lbfgs import LBFGS
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .rprop_asgd import ASGD, Rprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax",
           "NAdam", "RAdam", "Rprop", "ASGD", "LBFGS", "lr_scheduler", "swa_utils"]
