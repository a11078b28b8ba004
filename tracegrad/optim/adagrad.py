"""Adagrad with learning-rate decay."""
from __future__ import annotations

import numpy as np

from .._tensor import _wrap
from . import _capture
from .optimizer import (Optimizer, _array, _bump_step, _check_float, _params_with_grad, _scalar,
                        _step_tensor, _touch)


class Adagrad(Optimizer):
    """PyTorch's ``torch.optim.Adagrad``; per parameter, with ``t`` the step count::

        g = -g if maximize;  g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g            (s starts at initial_accumulator_value)
        p = p - clr * g / (sqrt(s) + eps)

    >>> import tracegrad as torch
    >>> w = torch.tensor([1.0], requires_grad=True)
    >>> opt = Adagrad([w], lr=0.5, eps=0.0)
    >>> w.grad = torch.tensor([2.0]); opt.step(); w
    tensor([0.5000], requires_grad=True)
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, foreach=None, *, maximize: bool = False,
                 differentiable: bool = False, fused=None) -> None:
        _check_float("learning rate", lr)
        _check_float("lr_decay", lr_decay)
        _check_float("weight_decay", weight_decay)
        _check_float("initial_accumulator_value", initial_accumulator_value)
        _check_float("epsilon", eps)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _init_state(self, p, group: dict) -> None:
        state = self.state[p]
        if not state:
            state["step"] = _step_tensor()
            state["sum"] = _wrap(np.full_like(p._data, group["initial_accumulator_value"]))

    def _trace_group(self, group: dict) -> None:
        _capture.adagrad(self, group)

    def _update_group(self, group: dict) -> None:
        lr = _scalar(group["lr"])
        lr_decay = group["lr_decay"]
        eps = group["eps"]
        wd = group["weight_decay"]
        maximize = group["maximize"]
        for p, w, g in _params_with_grad(group):
            self._init_state(p, group)  # parameters added later by add_param_group
            state = self.state[p]
            step = _bump_step(state)
            if maximize:
                g = np.negative(g)
            if wd != 0:
                g = g + wd * w
            clr = lr / (1 + (step - 1) * lr_decay)
            s = state["sum"]._data
            s += g * g
            std = _array(np.sqrt(s))
            std += eps
            np.divide(g, std, out=std)
            std *= -clr
            w += std
            _touch(p)
