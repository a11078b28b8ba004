"""Adam and AdamW (decoupled weight decay), with AMSGrad."""
from __future__ import annotations

import math

import numpy as np

from .._tensor import _wrap
from . import _capture
from .optimizer import (Optimizer, _array, _bump_step, _check_float, _params_with_grad, _scalar,
                        _step_tensor, _touch)


def _check_betas(betas) -> None:
    for i, b in enumerate(betas):
        if not 0.0 <= _scalar(b) < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {b}")


class Adam(Optimizer):
    """PyTorch's ``torch.optim.Adam``; per parameter, with ``t`` the step count::

        g = -g if maximize;  g = g + weight_decay * p
            (decoupled_weight_decay=True: p = p * (1 - lr * weight_decay) instead, AdamW)
        m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g * g
        v_hat = max(v_hat, v) if amsgrad else v
        p = p - lr / (1 - beta1**t) * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps)

    >>> import tracegrad as torch
    >>> w = torch.tensor([1.0], requires_grad=True)
    >>> opt = Adam([w], lr=0.1)
    >>> w.grad = torch.tensor([3.0]); opt.step(); w
    tensor([0.9000], requires_grad=True)
    """

    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, foreach=None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused=None, decoupled_weight_decay: bool = False) -> None:
        _check_float("learning rate", lr)
        _check_float("epsilon", eps)
        _check_betas(betas)
        _check_float("weight_decay", weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, foreach=foreach, maximize=maximize,
                        capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay or self._decoupled)
        super().__init__(params, defaults)

    def _trace_group(self, group: dict) -> None:
        _capture.adam(self, group, self._decoupled)

    def _update_group(self, group: dict) -> None:
        lr = _scalar(group["lr"])
        beta1, beta2 = (_scalar(b) for b in group["betas"])
        eps = group["eps"]
        wd = group["weight_decay"]
        amsgrad = group["amsgrad"]
        maximize = group["maximize"]
        # a group loaded from a state dict saved before the option existed lacks the key
        decoupled = group.get("decoupled_weight_decay", self._decoupled)
        for p, w, g in _params_with_grad(group):
            state = self.state[p]
            if not state:
                state["step"] = _step_tensor()
                state["exp_avg"] = _wrap(np.zeros_like(w))
                state["exp_avg_sq"] = _wrap(np.zeros_like(w))
                if amsgrad:
                    state["max_exp_avg_sq"] = _wrap(np.zeros_like(w))
            step = _bump_step(state)
            if maximize:
                g = np.negative(g)
            if wd != 0:
                if decoupled:
                    w *= 1 - lr * wd
                else:
                    g = g + wd * w
            m = state["exp_avg"]._data
            v = state["exp_avg_sq"]._data
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * (g * g)
            bias_correction1 = 1 - beta1 ** step
            bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
            if amsgrad:
                vmax = state["max_exp_avg_sq"]._data
                np.maximum(vmax, v, out=vmax)
                denom = _array(np.sqrt(vmax))
            else:
                denom = _array(np.sqrt(v))
            denom /= bias_correction2_sqrt
            denom += eps
            np.divide(m, denom, out=denom)
            denom *= -(lr / bias_correction1)
            w += denom
            _touch(p)


class AdamW(Adam):
    """PyTorch's ``torch.optim.AdamW``: Adam with decoupled weight decay,
    ``p = p * (1 - lr * weight_decay)`` before the Adam step (default 1e-2).

    >>> import tracegrad as torch
    >>> w = torch.tensor([1.0], requires_grad=True)
    >>> opt = AdamW([w], lr=0.1, weight_decay=0.5)
    >>> w.grad = torch.tensor([3.0]); opt.step(); w
    tensor([0.8500], requires_grad=True)
    """

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach=None, capturable: bool = False, differentiable: bool = False,
                 fused=None) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused)
