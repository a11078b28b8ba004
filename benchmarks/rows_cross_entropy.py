"""The cross_entropy row of the ``rownorm`` workload: mean cross entropy of (N, C) float32
logits and int64 class targets, forward and the gradient with respect to the logits.

Minimum traffic: the forward reads the logits once, the backward reads them again and
writes their gradient (targets and per-row values are N-sized, ignored): 3 x the logits.
"""
from __future__ import annotations

import numpy as np

import tracegrad
from tracegrad.nn import functional as F

from .harness import CompileClock, Config, Row, check_compiles, close, measure


def numpy_fwd_bwd(x: np.ndarray, t: np.ndarray):
    """Hand-written NumPy: the loss and d loss / d x."""
    n = x.shape[0]
    m = x.max(axis=1, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = (np.log(s[:, 0]) + m[:, 0] - x[rows, t]).mean()
    grad = e * (np.float32(1 / n) / s)
    grad[rows, t] -= np.float32(1 / n)
    return loss, grad


def _grad_arm(lib, fn, x: np.ndarray, t: np.ndarray):
    """Loss and its gradient through ``lib``'s autograd: tracegrad and torch alike (the
    same names, which is the point of the library)."""
    tx = lib.from_numpy(x).requires_grad_()
    tt = lib.from_numpy(t)

    def run():
        loss = fn(tx, tt)
        (grad,) = lib.autograd.grad(loss, tx)
        return loss, grad
    return run


def cross_entropy_row(cfg: Config, workload: str, x: np.ndarray, t: np.ndarray) -> Row:
    size = f"{x.shape[0]}x{x.shape[1]}"
    row = Row(workload, "cross_entropy fwd+bwd", size, "ms", bytes_moved=3 * x.nbytes)
    compiled = tracegrad.compile(F.cross_entropy)
    clock = CompileClock()
    with clock.cold():
        loss, grad = _grad_arm(tracegrad, compiled, x, t)()
    ref_loss, ref_grad = numpy_fwd_bwd(x, t)
    row.correct = (close(loss.detach().numpy(), ref_loss, 1e-4)
                   and close(grad.numpy(), ref_grad, 1e-4))
    del loss, grad
    arms = {"eager": _grad_arm(tracegrad, F.cross_entropy, x, t),
            "compiled": _grad_arm(tracegrad, compiled, x, t),
            "numpy": lambda: numpy_fwd_bwd(x, t)}
    torch = cfg.peers.get("torch")
    if torch is not None:
        arms["torch"] = _grad_arm(torch, torch.nn.functional.cross_entropy, x, t)
        if not cfg.quick:
            arms["torch.compile"] = _grad_arm(
                torch, torch.compile(torch.nn.functional.cross_entropy), x, t)
        else:
            row.notes["torch.compile"] = "skip (quick)"
    jax = cfg.peers.get("jax")
    if jax is not None:
        arms["jax.jit"] = _jax_arm(jax, x, t)
    row.times = measure(arms, cfg)
    row.note = check_compiles(compiled, expected_misses=1)
    clock.warm(F.cross_entropy, lambda cf: _grad_arm(tracegrad, cf, x, t)())
    row.compile_cold, row.compile_warm = clock.result(row.times["compiled"].median)
    return row


def _jax_arm(jax, x: np.ndarray, t: np.ndarray):
    jnp = jax.numpy

    def loss_fn(v, labels):
        logp = jax.nn.log_softmax(v, axis=-1)
        return -jnp.take_along_axis(logp, labels[:, None], axis=1).mean()
    step = jax.jit(jax.value_and_grad(loss_fn))
    jx, jt = jnp.asarray(x), jnp.asarray(t)

    def run():
        loss, grad = step(jx, jt)
        return grad.block_until_ready()
    return run
