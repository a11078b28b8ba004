"""Traced update rules of NAdam, RAdam, Rprop and ASGD (the rules of ``_capture``, whose
docstring says what is a runtime input and what is a guard).

These four keep values derived from the step count in their state (NAdam's running
product of momentum factors, ASGD's ``eta`` and ``mu``) or switch rules on it (RAdam's
rectification, ASGD's averaging): each such value is computed on the host at every call
from the state as it is before the step, exactly as the eager rule computes it (float64,
then rounded to the state's float32), and a switch is a ``where`` over a runtime flag,
never a Python branch, so that one program serves every step.

>>> import tracegrad as torch
>>> w = torch.tensor([1.0, -1.0], requires_grad=True)
>>> opt = torch.optim.Rprop([w], lr=0.1)
>>> step = torch.compile(lambda: opt.step(), fullgraph=True)
>>> w.grad = torch.tensor([1.0, -1.0]); _ = step(); _ = step(); w
tensor([ 0.7800, -0.7800], requires_grad=True)
"""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from ._capture import (Hyper, _decayed, _scalar, _signed_decayed, _step_count,
                       adam_moments, grads, new_adam_state)


def _float(t: Tensor) -> float:
    """The value a 0-d state tensor holds now (before this call's program writes it)."""
    return float(np.asarray(t._data))


def nadam(opt, group: dict) -> None:
    for p, g in grads(group):
        _nadam_param(opt, group, p, g)


def _once_per_call(compute, key):
    """``compute()``'s result, shared by several readers of one call: recomputed only
    when ``key()`` (the state and options it derives from) changed since the last read."""
    memo = [None, None]

    def read():
        now = key()
        if now != memo[0]:
            memo[0], memo[1] = now, compute()
        return memo[1]
    return read


def _nadam_param(opt, group: dict, p: Tensor, g: Tensor) -> None:
    # NOTE (one function per parameter) in _capture.py: the readers close over this
    # parameter's state
    h = Hyper(group, p._data.dtype)
    state = opt.state[p]
    if not state:
        new_adam_state(h, state, p)
        state["mu_product"] = h.new_state(np.zeros(()), fill=1.0, dtype=np.float32)
    h.guard_state(opt, p)
    step_count, mu_product = state["step"], state["mu_product"]

    def options() -> tuple:
        return (_scalar(group["lr"]), _scalar(group["betas"][0]),
                _scalar(group["betas"][1]), _scalar(group["momentum_decay"]))

    def host() -> tuple[float, float, float, float]:
        """(mu_product after this step, 1 - beta2**t, the gradient's and the momentum's
        coefficients), as the eager rule computes them."""
        lr, beta1, beta2, psi = options()
        t = _float(step_count) + 1
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        # NOTE: the eager rule's float32 ``mu_product *= mu``, rounded the same way
        prod = float(np.float32(_float(mu_product)) * np.float32(mu))
        return (prod, 1 - beta2 ** t, lr * (1 - mu) / (1 - prod),
                lr * mu_next / (1 - prod * mu_next))
    shared = _once_per_call(host, lambda: (_float(step_count), _float(mu_product), options()))
    step_count.add_(1)
    g = _decayed(h, group, p, g, group["decoupled_weight_decay"])
    m, v = adam_moments(h, group, state, g)
    mu_product.copy_(h.value(lambda: shared()[0], np.float32))
    denom = (v / h.value(lambda: shared()[1])).sqrt() + h.option("eps")
    p.sub_(h.value(lambda: shared()[2]) * (g / denom))
    p.sub_(h.value(lambda: shared()[3]) * (m / denom))


def radam(opt, group: dict) -> None:
    for p, g in grads(group):
        _radam_param(opt, group, p, g)


def _radam_param(opt, group: dict, p: Tensor, g: Tensor) -> None:
    def rho(t: float) -> tuple[float, float]:
        beta2 = _scalar(group["betas"][1])
        rho_inf = 2 / (1 - beta2) - 1
        return rho_inf, rho_inf - 2 * t * beta2 ** t / (1 - beta2 ** t)

    def rectification(t: float) -> float:
        """``r_t`` once the variance estimate is tractable (rho_t > 5), else 0 (the
        ``where`` below then takes the momentum-only step)."""
        rho_inf, rho_t = rho(t)
        if rho_t <= 5.0:
            return 0.0
        return math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                         / ((rho_inf - 4) * (rho_inf - 2) * rho_t))

    h = Hyper(group, p._data.dtype)
    state = opt.state[p]
    if not state:
        new_adam_state(h, state, p)
    h.guard_state(opt, p)
    step = _step_count(state)
    state["step"].add_(1)
    g = _decayed(h, group, p, g, group["decoupled_weight_decay"])
    m, v = adam_moments(h, group, state, g)
    m_hat = m / h.value(lambda: 1 - _scalar(group["betas"][0]) ** step())
    rectified = h.value(lambda: float(rho(step())[1] > 5.0)) > 0
    adaptive = (h.value(lambda: math.sqrt(1 - _scalar(group["betas"][1]) ** step()))
                / (v.sqrt() + h.option("eps")))
    lr_rect = h.value(lambda: _scalar(group["lr"]) * rectification(step()))
    p.sub_((lr_rect * (m_hat * adaptive)).where(rectified, h.option("lr") * m_hat))


def rprop(opt, group: dict) -> None:
    for p, g in grads(group):
        h = Hyper(group, p._data.dtype)
        state = opt.state[p]
        if not state:
            state["step"] = h.new_step()
            state["prev"] = h.new_state(p._data)
            state["step_size"] = h.new_state(p._data, fill=_scalar(group["lr"]))
        h.guard_state(opt, p)
        state["step"].add_(1)
        if group["maximize"]:
            g = -g
        prev, size = state["prev"], state["step_size"]
        agree = (g * prev).sign()
        one, zero = h.derived("1", lambda: 1.0), h.derived("0", lambda: 0.0)
        factor = h.option("etas", 1).where(agree > 0, h.option("etas", 0).where(agree < 0, one))
        size.copy_((size * factor).maximum(h.option("step_sizes", 0))
                   .minimum(h.option("step_sizes", 1)))
        # a flipped sign skips this update and is forgotten (prev = 0)
        g = zero.where(agree < 0, g)
        p.sub_(g.sign() * size)
        prev.copy_(g)


def asgd(opt, group: dict) -> None:
    for p, g in grads(group):
        _asgd_param(opt, group, p, g)


def _asgd_param(opt, group: dict, p: Tensor, g: Tensor) -> None:
    h = Hyper(group, p._data.dtype)
    state = opt.state[p]
    if not state:
        state["step"] = h.new_step()
        # NOTE: float32 scalars, as the eager rule (and PyTorch) keeps them
        state["eta"] = h.new_state(np.zeros(()), fill=_scalar(group["lr"]), dtype=np.float32)
        state["mu"] = h.new_state(np.zeros(()), fill=1.0, dtype=np.float32)
        state["ax"] = h.new_state(p._data)
    h.guard_state(opt, p)
    step = _step_count(state)
    eta_state, mu_state, ax = state["eta"], state["mu"], state["ax"]
    state["step"].add_(1)
    g = _signed_decayed(h, group, p, g)
    p.mul_(h.value(lambda: 1 - _scalar(group["lambd"]) * _float(eta_state)))
    p.sub_(h.value(lambda: _float(eta_state)) * g)
    mu = h.value(lambda: _float(mu_state))
    # mu == 1 (every step up to t0): ax = p exactly, not ax + 1 * (p - ax)
    ax.copy_(p.where(mu == 1, ax + mu * (p - ax)))

    def eta_next() -> float:
        lr, lambd = _scalar(group["lr"]), _scalar(group["lambd"])
        return lr / (1 + lambd * lr * step()) ** _scalar(group["alpha"])
    eta_state.copy_(h.value(eta_next, np.float32))
    mu_state.copy_(h.value(lambda: 1 / max(1, step() - _scalar(group["t0"])), np.float32))
