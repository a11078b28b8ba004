"""Stochastic weight averaging and EMA of a model (PyTorch's ``torch.optim.swa_utils``):
``AveragedModel``, ``SWALR``, ``update_bn`` and the averaging functions.

>>> import tracegrad as torch
>>> from tracegrad.optim.swa_utils import AveragedModel
>>> net = torch.nn.Linear(1, 1, bias=False)
>>> swa = AveragedModel(net)
>>> for w in (1.0, 2.0, 6.0):
...     _ = net.weight.data.fill_(w); swa.update_parameters(net)
>>> swa.module.weight.item(), int(swa.n_averaged)
(3.0, 3)
"""
from __future__ import annotations

import copy
import itertools
import math

from .._ops.creation import tensor
from .._tensor import Tensor
from ..autograd.grad_mode import no_grad
from ..nn.modules.module import Module
from ..nn.modules.normalization import _BatchNorm
from ._lr_base import LRScheduler
from .optimizer import Optimizer

__all__ = ["AveragedModel", "SWALR", "update_bn", "get_ema_avg_fn", "get_swa_avg_fn",
           "get_ema_multi_avg_fn", "get_swa_multi_avg_fn"]


def get_swa_avg_fn():
    """``avg + (current - avg) / (n + 1)``: the running mean of every model seen."""
    def swa_update(averaged_param: Tensor, current_param: Tensor, num_averaged) -> Tensor:
        with no_grad():
            return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


def get_ema_avg_fn(decay: float = 0.999):
    """``decay * ema + (1 - decay) * current``."""
    def ema_update(ema_param: Tensor, current_param: Tensor, num_averaged) -> Tensor:
        with no_grad():
            return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_multi_avg_fn():
    """The SWA mean over lists of tensors, in place (``lerp`` by ``1 / (n + 1)``)."""
    def swa_update(averaged_params: list, current_params: list, num_averaged) -> None:
        weight = 1.0 / (float(num_averaged) + 1)
        with no_grad():
            for p, c in zip(averaged_params, current_params):
                if p.is_floating_point():
                    p.lerp_(c, weight)
                else:
                    p.copy_(p + (c - p) / (float(num_averaged) + 1))
    return swa_update


def get_ema_multi_avg_fn(decay: float = 0.999):
    """The EMA over lists of tensors, in place (``lerp`` by ``1 - decay``)."""
    def ema_update(ema_params: list, current_params: list, num_averaged) -> None:
        with no_grad():
            for p, c in zip(ema_params, current_params):
                if p.is_floating_point():
                    p.lerp_(c, 1 - decay)
                else:
                    p.copy_(p * decay + c * (1 - decay))
    return ema_update


class AveragedModel(Module):
    """A copy of ``model`` whose parameters (and with ``use_buffers`` its buffers) are the
    running average of the models passed to ``update_parameters``: the SWA mean by
    default, or ``avg_fn(avg, current, n)`` / ``multi_avg_fn(avgs, currents, n)``."""

    def __init__(self, model: Module, device=None, avg_fn=None, multi_avg_fn=None,
                 use_buffers: bool = False) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", tensor(0, dtype=None))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def update_parameters(self, model: Module) -> None:
        """Average ``model``'s current values in (the first call copies them)."""
        if self.use_buffers:
            mine = list(itertools.chain(self.module.parameters(), self.module.buffers()))
            theirs = list(itertools.chain(model.parameters(), model.buffers()))
        else:
            mine, theirs = list(self.module.parameters()), list(model.parameters())
        mine = [p.detach() for p in mine]
        theirs = [p.detach().to(p_mine.device) for p, p_mine in zip(theirs, mine)]
        n = int(self.n_averaged)
        with no_grad():
            if n == 0:
                for p, c in zip(mine, theirs):
                    p.copy_(c)
            elif self.multi_avg_fn is not None:
                self.multi_avg_fn(mine, theirs, self.n_averaged)
            else:
                # NOTE: PyTorch's CPU path is the per-tensor SWA formula, not lerp (its
                # foreach kernels are for CUDA): the same rounding as PyTorch's on CPU
                avg_fn = self.avg_fn if self.avg_fn is not None else get_swa_avg_fn()
                for p, c in zip(mine, theirs):
                    p.copy_(avg_fn(p, c, self.n_averaged))
            if not self.use_buffers:
                # buffers (BatchNorm statistics) follow the model, not its average
                for b_mine, b_model in zip(self.module.buffers(), model.buffers()):
                    b_mine.copy_(b_model.detach().to(b_mine.device))
            self.n_averaged += 1


def update_bn(loader, model: Module, device=None) -> None:
    """Recompute every BatchNorm's running statistics with one pass over ``loader`` (an
    iterable of inputs, or of tuples/lists whose first item is the input): the
    cumulative average of the batches' statistics (``momentum=None``)."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    with no_grad():
        for inputs in loader:
            if isinstance(inputs, (list, tuple)):
                inputs = inputs[0]
            if device is not None:
                inputs = inputs.to(device)
            model(inputs)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr to ``swa_lr`` over ``anneal_epochs`` steps ('cos' or
    'linear'), then hold it."""

    def __init__(self, optimizer: Optimizer, swa_lr, anneal_epochs: int = 10,
                 anneal_strategy: str = "cos", last_epoch: int = -1) -> None:
        groups = optimizer.param_groups if isinstance(optimizer, Optimizer) else []
        if isinstance(swa_lr, (list, tuple)):
            if len(swa_lr) != len(groups):
                raise ValueError(f"swa_lr must have the same length as optimizer.param_groups: "
                                 f"swa_lr has {len(swa_lr)}, optimizer.param_groups has "
                                 f"{len(groups)}")
            swa_lrs = list(swa_lr)
        else:
            swa_lrs = [swa_lr] * len(groups)
        for lr, group in zip(swa_lrs, groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must by one of 'cos' or 'linear', instead got "
                             f"{anneal_strategy}")
        self._anneal_strategy = anneal_strategy
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got "
                             f"{anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def anneal_func(self, t: float) -> float:
        if self._anneal_strategy == "linear":
            return t
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self) -> list:
        # NOTE: PyTorch's form: recover the lr before annealing from the current one
        # (so a user's change to group["lr"] carries on), then anneal one step further
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        groups = self.optimizer.param_groups
        prev_lrs = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in groups]
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(groups, prev_lrs)]
