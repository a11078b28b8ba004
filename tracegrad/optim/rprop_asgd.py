"""Rprop (sign-based steps with per-weight step sizes) and ASGD (averaged SGD)."""
from __future__ import annotations

import numpy as np

from .._tensor import _wrap
from ..codegen.scalar_ops import sign as _sign
from . import _capture_variants
from .optimizer import (Optimizer, _bump_step, _check_float, _params_with_grad, _scalar,
                        _step_tensor, _touch)


class Rprop(Optimizer):
    """PyTorch's ``torch.optim.Rprop``: each weight moves by its own step size against the
    gradient's sign; the step grows by ``etas[1]`` while the sign holds and shrinks by
    ``etas[0]`` (skipping that update) when it flips, within ``step_sizes``.

    >>> import tracegrad as torch
    >>> w = torch.tensor([1.0], requires_grad=True)
    >>> opt = torch.optim.Rprop([w], lr=0.1)
    >>> w.grad = torch.tensor([3.0]); opt.step(); w
    tensor([0.9000], requires_grad=True)
    """

    def __init__(self, params, lr: float = 1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *,
                 capturable: bool = False, foreach=None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        _check_float("learning rate", lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes),
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        super().__init__(params, defaults)

    def _trace_group(self, group: dict) -> None:
        _capture_variants.rprop(self, group)

    def _update_group(self, group: dict) -> None:
        eta_minus, eta_plus = group["etas"]
        lo, hi = group["step_sizes"]
        for p, w, g in _params_with_grad(group):
            state = self.state[p]
            if not state:
                state["step"] = _step_tensor()
                state["prev"] = _wrap(np.zeros_like(w))
                state["step_size"] = _wrap(np.full_like(w, _scalar(group["lr"])))
            _bump_step(state)
            if group["maximize"]:
                g = np.negative(g)
            prev = state["prev"]._data
            size = state["step_size"]._data
            agree = _sign(g * prev)   # torch.sign: 0 for NaN, so a NaN gradient moves nothing
            factor = np.where(agree > 0, eta_plus, np.where(agree < 0, eta_minus, 1.0))
            np.clip(size * factor.astype(w.dtype), lo, hi, out=size)
            g = np.where(agree < 0, 0, g).astype(w.dtype)  # a flipped sign skips this update
            w -= _sign(g) * size
            prev[...] = g
            _touch(p)


class ASGD(Optimizer):
    """PyTorch's ``torch.optim.ASGD``: SGD with a decaying step ``eta`` and a running
    average ``ax`` of the weights (kept in the state, as PyTorch does)::

        p = p * (1 - lambd * eta) - eta * g
        ax = p if mu == 1 else ax + mu * (p - ax)
        eta = lr / (1 + lambd * lr * t) ** alpha;   mu = 1 / max(1, t - t0)
    """

    def __init__(self, params, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75,
                 t0: float = 1e6, weight_decay: float = 0.0, foreach=None,
                 maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False) -> None:
        _check_float("learning rate", lr)
        _check_float("weight_decay", weight_decay)
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        super().__init__(params, defaults)

    def _trace_group(self, group: dict) -> None:
        _capture_variants.asgd(self, group)

    def _update_group(self, group: dict) -> None:
        lr = _scalar(group["lr"])
        lambd, alpha, t0, wd = group["lambd"], group["alpha"], group["t0"], group["weight_decay"]
        for p, w, g in _params_with_grad(group):
            state = self.state[p]
            if not state:
                state["step"] = _step_tensor()
                # NOTE: float32 scalars, as PyTorch keeps them (its eta is rounded too)
                state["eta"] = _wrap(np.array(lr, dtype=np.float32))
                state["mu"] = _wrap(np.ones((), dtype=np.float32))
                state["ax"] = _wrap(np.zeros_like(w))
            step = _bump_step(state)
            if group["maximize"]:
                g = np.negative(g)
            if wd != 0:
                g = g + wd * w
            eta = float(state["eta"]._data)
            mu = float(state["mu"]._data)
            w *= 1 - lambd * eta
            w -= eta * g
            ax = state["ax"]._data
            if mu != 1:
                ax += mu * (w - ax)
            else:
                ax[...] = w
            state["eta"]._data[...] = lr / (1 + lambd * lr * step) ** alpha
            state["mu"]._data[...] = 1 / max(1, step - t0)
            _touch(p)
