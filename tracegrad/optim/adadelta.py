"""Adadelta: a step size from running averages of squared gradients and squared steps."""
from __future__ import annotations

import numpy as np

from .._tensor import _wrap
from . import _capture
from .optimizer import (Optimizer, _bump_step, _check_float, _params_with_grad, _scalar,
                        _step_tensor, _touch)


class Adadelta(Optimizer):
    """PyTorch's ``torch.optim.Adadelta``::

        g = -g if maximize;  g = g + weight_decay * p
        v = rho * v + (1 - rho) * g * g
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        p = p - lr * delta

    >>> import tracegrad as torch
    >>> w = torch.tensor([1.0], requires_grad=True)
    >>> opt = torch.optim.Adadelta([w], rho=0.0, eps=0.0)
    >>> w.grad = torch.tensor([3.0]); opt.step(); w
    tensor([1.], requires_grad=True)
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, foreach=None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False) -> None:
        _check_float("learning rate", lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        _check_float("epsilon value", eps)
        _check_float("weight_decay", weight_decay)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, foreach=foreach,
                        capturable=capturable, maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _trace_group(self, group: dict) -> None:
        _capture.adadelta(self, group)

    def _update_group(self, group: dict) -> None:
        lr = _scalar(group["lr"])
        rho, eps, wd = group["rho"], group["eps"], group["weight_decay"]
        for p, w, g in _params_with_grad(group):
            state = self.state[p]
            if not state:
                state["step"] = _step_tensor()
                state["square_avg"] = _wrap(np.zeros_like(w))
                state["acc_delta"] = _wrap(np.zeros_like(w))
            _bump_step(state)
            if group["maximize"]:
                g = np.negative(g)
            if wd != 0:
                g = g + wd * w
            v = state["square_avg"]._data
            u = state["acc_delta"]._data
            v *= rho
            v += (1 - rho) * (g * g)
            delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
            u *= rho
            u += (1 - rho) * (delta * delta)
            w -= lr * delta
            _touch(p)
