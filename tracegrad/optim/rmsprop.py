"""RMSprop, optionally centered and with momentum."""
from __future__ import annotations

import numpy as np

from .._tensor import _wrap
from . import _capture
from .optimizer import (Optimizer, _array, _bump_step, _check_float, _params_with_grad, _scalar,
                        _step_tensor, _touch)


class RMSprop(Optimizer):
    """PyTorch's ``torch.optim.RMSprop``; per parameter::

        g = -g if maximize;  g = g + weight_decay * p
        s = alpha * s + (1 - alpha) * g * g
        centered: a = alpha * a + (1 - alpha) * g;  d = sqrt(s - a * a) + eps
        otherwise d = sqrt(s) + eps
        momentum > 0: b = momentum * b + g / d;  p = p - lr * b
        otherwise p = p - lr * g / d

    >>> import tracegrad as torch
    >>> w = torch.tensor([1.0], requires_grad=True)
    >>> opt = RMSprop([w], lr=0.01, alpha=0.75, eps=0.0)
    >>> w.grad = torch.tensor([2.0]); opt.step(); w
    tensor([0.9800], requires_grad=True)
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 capturable: bool = False, foreach=None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        _check_float("learning rate", lr)
        _check_float("epsilon", eps)
        _check_float("momentum", momentum)
        _check_float("weight_decay", weight_decay)
        _check_float("alpha", alpha)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _trace_group(self, group: dict) -> None:
        _capture.rmsprop(self, group)

    def _update_group(self, group: dict) -> None:
        lr = _scalar(group["lr"])
        alpha = group["alpha"]
        eps = group["eps"]
        wd = group["weight_decay"]
        momentum = group["momentum"]
        centered = group["centered"]
        maximize = group["maximize"]
        for p, w, g in _params_with_grad(group):
            state = self.state[p]
            if not state:
                state["step"] = _step_tensor()
                state["square_avg"] = _wrap(np.zeros_like(w))
                if momentum > 0:
                    state["momentum_buffer"] = _wrap(np.zeros_like(w))
                if centered:
                    state["grad_avg"] = _wrap(np.zeros_like(w))
            _bump_step(state)
            if maximize:
                g = np.negative(g)
            if wd != 0:
                g = g + wd * w
            s = state["square_avg"]._data
            s *= alpha
            s += (1 - alpha) * (g * g)
            if centered:
                a = state["grad_avg"]._data
                a *= alpha
                a += (1 - alpha) * g
                avg = _array(s - a * a)
                np.sqrt(avg, out=avg)
            else:
                avg = _array(np.sqrt(s))
            avg += eps
            if momentum > 0:
                b = state["momentum_buffer"]._data
                b *= momentum
                b += g / avg
                w -= lr * b
            else:
                np.divide(g, avg, out=avg)
                avg *= -lr
                w += avg
            _touch(p)
