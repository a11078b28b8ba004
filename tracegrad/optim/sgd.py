"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""
from __future__ import annotations

import numpy as np

from .._tensor import _wrap
from . import _capture
from .optimizer import (Optimizer, _array, _check_float, _params_with_grad, _scalar,
                        _touch)


class SGD(Optimizer):
    """PyTorch's ``torch.optim.SGD``; the update per parameter with gradient ``g`` is::

        g = -g if maximize;  g = g + weight_decay * p
        b = g (first step) or momentum * b + (1 - dampening) * g
        g = g + momentum * b if nesterov else b          (when momentum != 0)
        p = p - lr * g

    >>> import tracegrad as torch
    >>> w = torch.tensor([1.0], requires_grad=True)
    >>> opt = SGD([w], lr=0.5, momentum=0.9)
    >>> w.grad = torch.tensor([1.0]); opt.step(); opt.step(); w
    tensor([-0.4500], requires_grad=True)
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 foreach=None, differentiable: bool = False, fused=None) -> None:
        _check_float("learning rate", lr)
        _check_float("momentum", momentum)
        _check_float("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def _trace_group(self, group: dict) -> None:
        _capture.sgd(self, group)

    def _update_group(self, group: dict) -> None:
        lr = _scalar(group["lr"])
        momentum = group["momentum"]
        dampening = group["dampening"]
        wd = group["weight_decay"]
        nesterov = group["nesterov"]
        maximize = group["maximize"]
        for p, w, g in _params_with_grad(group):
            fresh = False  # whether g is our own temporary (safe to overwrite)
            if maximize:
                g = _array(np.negative(g))
                fresh = True
            if wd != 0:
                g = _array(g + wd * w) if not fresh else np.add(g, wd * w, out=g)
                fresh = True
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = _wrap(np.array(g, copy=True))
                    state["momentum_buffer"] = buf
                else:
                    b = buf._data
                    b *= momentum
                    if dampening == 0:
                        b += g
                    else:
                        b += (1 - dampening) * g
                if nesterov:
                    g = np.add(g, momentum * buf._data, out=g if fresh else None)
                    fresh = True
                else:
                    g = buf._data
                    fresh = False
            if fresh:
                g *= -lr
                w += g
            else:
                w -= lr * g
            _touch(p)
