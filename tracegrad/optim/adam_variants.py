"""Adamax, NAdam and RAdam: Adam's moment estimates with a different step."""
from __future__ import annotations

import math

import numpy as np

from .._tensor import _wrap
from .adam import _check_betas
from . import _capture, _capture_variants
from .optimizer import (Optimizer, _bump_step, _check_float, _params_with_grad, _scalar,
                        _step_tensor, _touch)


def _prepare(p, w, g, group: dict, lr: float, decoupled: bool):
    """The gradient after ``maximize`` and (coupled) weight decay; decoupled decay scales
    the weight in place."""
    if group["maximize"]:
        g = np.negative(g)
    wd = group["weight_decay"]
    if wd != 0:
        if decoupled:
            w *= 1 - lr * wd
        else:
            g = g + wd * w
    return g


def _moments(state: dict, g, beta1: float, beta2: float | None):
    m = state["exp_avg"]._data
    m *= beta1
    m += (1 - beta1) * g
    if beta2 is None:
        return m, None
    v = state["exp_avg_sq"]._data
    v *= beta2
    v += (1 - beta2) * (g * g)
    return m, v


class _AdamFamily(Optimizer):
    def __init__(self, params, lr, betas, eps, weight_decay, **extra) -> None:
        _check_float("learning rate", lr)
        _check_float("epsilon", eps)
        _check_betas(betas)
        _check_float("weight_decay", weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, **extra)
        super().__init__(params, defaults)


class Adamax(_AdamFamily):
    """PyTorch's ``torch.optim.Adamax`` (Adam with the infinity norm)::

        m = beta1 * m + (1 - beta1) * g;   u = max(beta2 * u, |g| + eps)
        p = p - lr / (1 - beta1**t) * m / u

    >>> import tracegrad as torch
    >>> w = torch.tensor([1.0], requires_grad=True)
    >>> opt = torch.optim.Adamax([w], lr=0.1)
    >>> w.grad = torch.tensor([3.0]); opt.step(); w
    tensor([0.9000], requires_grad=True)
    """

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, foreach=None, *, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, foreach=foreach,
                         maximize=maximize, differentiable=differentiable,
                         capturable=capturable)

    def _trace_group(self, group: dict) -> None:
        _capture.adamax(self, group)

    def _update_group(self, group: dict) -> None:
        lr = _scalar(group["lr"])
        beta1, beta2 = (_scalar(b) for b in group["betas"])
        for p, w, g in _params_with_grad(group):
            state = self.state[p]
            if not state:
                state["step"] = _step_tensor()
                state["exp_avg"] = _wrap(np.zeros_like(w))
                state["exp_inf"] = _wrap(np.zeros_like(w))
            step = _bump_step(state)
            g = _prepare(p, w, g, group, lr, decoupled=False)
            m, _ = _moments(state, g, beta1, None)
            u = state["exp_inf"]._data
            u *= beta2
            np.maximum(u, np.abs(g) + group["eps"], out=u)
            w -= (lr / (1 - beta1 ** step)) * (m / u)
            _touch(p)


class NAdam(_AdamFamily):
    """PyTorch's ``torch.optim.NAdam`` (Adam with Nesterov momentum and momentum decay
    ``psi``), with ``mu_t = beta1 * (1 - 0.5 * 0.96**(t * psi))``::

        m, v as in Adam;  denom = sqrt(v / (1 - beta2**t)) + eps
        p = p - lr * (1 - mu_t) / (1 - prod(mu_1..t)) * g / denom
              - lr * mu_{t+1} / (1 - prod(mu_1..t+1)) * m / denom
    """

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach=None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        _check_float("momentum_decay", momentum_decay)
        super().__init__(params, lr, betas, eps, weight_decay, momentum_decay=momentum_decay,
                         decoupled_weight_decay=decoupled_weight_decay, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable)

    def _trace_group(self, group: dict) -> None:
        _capture_variants.nadam(self, group)

    def _update_group(self, group: dict) -> None:
        lr = _scalar(group["lr"])
        beta1, beta2 = (_scalar(b) for b in group["betas"])
        psi = group["momentum_decay"]
        for p, w, g in _params_with_grad(group):
            state = self.state[p]
            if not state:
                state["step"] = _step_tensor()
                state["mu_product"] = _wrap(np.ones((), dtype=np.float32))
                state["exp_avg"] = _wrap(np.zeros_like(w))
                state["exp_avg_sq"] = _wrap(np.zeros_like(w))
            step = _bump_step(state)
            g = _prepare(p, w, g, group, lr, group["decoupled_weight_decay"])
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * psi))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
            mu_product = state["mu_product"]._data
            mu_product *= mu
            prod = float(mu_product)
            m, v = _moments(state, g, beta1, beta2)
            denom = np.sqrt(v / (1 - beta2 ** step))
            denom += group["eps"]
            w -= (lr * (1 - mu) / (1 - prod)) * (g / denom)
            w -= (lr * mu_next / (1 - prod * mu_next)) * (m / denom)
            _touch(p)


class RAdam(_AdamFamily):
    """PyTorch's ``torch.optim.RAdam`` (rectified Adam): plain momentum SGD while the
    variance estimate is unreliable (``rho_t <= 5``), then Adam scaled by the
    rectification term ``r_t``.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled_weight_decay: bool = False, *,
                 foreach=None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay,
                         decoupled_weight_decay=decoupled_weight_decay, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable)

    def _trace_group(self, group: dict) -> None:
        _capture_variants.radam(self, group)

    def _update_group(self, group: dict) -> None:
        lr = _scalar(group["lr"])
        beta1, beta2 = (_scalar(b) for b in group["betas"])
        rho_inf = 2 / (1 - beta2) - 1
        for p, w, g in _params_with_grad(group):
            state = self.state[p]
            if not state:
                state["step"] = _step_tensor()
                state["exp_avg"] = _wrap(np.zeros_like(w))
                state["exp_avg_sq"] = _wrap(np.zeros_like(w))
            step = _bump_step(state)
            g = _prepare(p, w, g, group, lr, group["decoupled_weight_decay"])
            m, v = _moments(state, g, beta1, beta2)
            m_hat = m / (1 - beta1 ** step)
            rho_t = rho_inf - 2 * step * beta2 ** step / (1 - beta2 ** step)
            if rho_t > 5.0:
                rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                                 / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                adaptive = math.sqrt(1 - beta2 ** step) / (np.sqrt(v) + group["eps"])
                w -= (lr * rect) * (m_hat * adaptive)
            else:
                w -= lr * m_hat
            _touch(p)
