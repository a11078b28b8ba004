"""The seed two-layer network training step (PyTorch's classic tensor/autograd example):
N=64, D_in=1000, H=100, D_out=10, ReLU via clamp, summed squared error, SGD lr=1e-4.

eager: tracegrad eager forward, backward, update under no_grad, grads zeroed.
compiled: ``tracegrad.compile`` of the loss function (forward+backward compiled), the same
eager SGD step. whole step: the whole step (zero_grad, forward, backward, ``optim.SGD``
step) compiled as one program. numpy: hand-written forward/backward/update.
"""
from __future__ import annotations

import numpy as np

import tracegrad

from .harness import CompileClock, Config, Row, check_compiles, close, measure

NAME = "seed_mlp"
N, D_IN, H, D_OUT = 64, 1000, 100, 10
LR = 1e-4


def loss_fn(x, y, w1, w2):
    h = x.mm(w1)
    h_relu = h.clamp(min=0)
    y_pred = h_relu.mm(w2)
    return (y_pred - y).pow(2).sum()


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, D_IN)).astype(np.float32)
    y = rng.standard_normal((N, D_OUT)).astype(np.float32)
    w1 = rng.standard_normal((D_IN, H)).astype(np.float32)
    w2 = rng.standard_normal((H, D_OUT)).astype(np.float32)
    return x, y, w1, w2


def _params(lib, x, y, w1, w2):
    """The seed network's tensors in ``lib`` (tracegrad or torch), from copies."""
    return (lib.from_numpy(x.copy()), lib.from_numpy(y.copy()),
            lib.from_numpy(w1.copy()).requires_grad_(),
            lib.from_numpy(w2.copy()).requires_grad_())


def _train_step(lib, f, x, y, w1, w2):
    """The seed document's step, written once for tracegrad and torch alike."""
    def step():
        loss = f(x, y, w1, w2)
        loss.backward()
        with lib.no_grad():
            w1.sub_(LR * w1.grad)
            w2.sub_(LR * w2.grad)
            w1.grad.zero_()
            w2.grad.zero_()
        return loss
    return step


def whole_step(x, y, w1, w2):
    """The seed step with ``optim.SGD``, compiled whole: one program per call."""
    opt = tracegrad.optim.SGD([w1, w2], lr=LR)

    @tracegrad.compile(fullgraph=True)
    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(x, y, w1, w2)
        loss.backward()
        opt.step()
        return loss
    return lambda: step(x, y)


def numpy_step(x, y, w1, w2):
    def step():
        h = x @ w1
        h_relu = np.maximum(h, 0)
        y_pred = h_relu @ w2
        diff = y_pred - y
        loss = np.square(diff).sum()
        grad_y_pred = 2.0 * diff
        grad_w2 = h_relu.T @ grad_y_pred
        grad_h = grad_y_pred @ w2.T
        grad_h[h < 0] = 0
        grad_w1 = x.T @ grad_h
        np.subtract(w1, LR * grad_w1, out=w1)
        np.subtract(w2, LR * grad_w2, out=w2)
        return loss
    return step


def _jax_step(jax, x, y, w1, w2):
    jnp = jax.numpy

    def jloss(w1, w2, x, y):
        h_relu = jnp.maximum(x @ w1, 0)
        return jnp.sum((h_relu @ w2 - y) ** 2)

    @jax.jit
    def update(w1, w2, x, y):
        loss, (g1, g2) = jax.value_and_grad(jloss, argnums=(0, 1))(w1, w2, x, y)
        return loss, w1 - LR * g1, w2 - LR * g2

    state = [jnp.asarray(w1), jnp.asarray(w2)]
    jx, jy = jnp.asarray(x), jnp.asarray(y)

    def step():
        loss, state[0], state[1] = update(state[0], state[1], jx, jy)
        loss.block_until_ready()
    return step


def _grads(f, data):
    x, y, w1, w2 = _params(tracegrad, *data)
    loss = f(x, y, w1, w2)
    loss.backward()
    return loss.item(), w1.grad.numpy().copy(), w2.grad.numpy().copy()


def run(cfg: Config) -> list[Row]:
    row = Row(NAME, "seed MLP train step", f"N={N} {D_IN}-{H}-{D_OUT}", "us")
    data = _data()
    # Small weights keep the loss finite over thousands of SGD steps at lr=1e-4.
    data = (data[0], data[1], data[2] * 0.05, data[3] * 0.05)
    compiled = tracegrad.compile(loss_fn)
    ref = _grads(loss_fn, data)
    clock = CompileClock()
    with clock.cold():
        got = _grads(compiled, data)
    row.correct = all(close(g, r, rtol=1e-3, atol_rel=1e-4) for g, r in zip(got, ref))
    arms = {"eager": _train_step(tracegrad, loss_fn, *_params(tracegrad, *data)),
            "compiled": _train_step(tracegrad, compiled, *_params(tracegrad, *data)),
            "whole step": whole_step(*_params(tracegrad, *data)),
            "numpy": numpy_step(*(a.copy() for a in data))}
    torch = cfg.peers.get("torch")
    if torch is not None:
        arms["torch"] = _train_step(torch, loss_fn, *_params(torch, *data))
        if not cfg.quick:
            arms["torch.compile"] = _train_step(torch, torch.compile(loss_fn), *_params(torch, *data))
        else:
            row.notes["torch.compile"] = "skip (quick)"
    if "jax" in cfg.peers:
        arms["jax.jit"] = _jax_step(cfg.peers["jax"], *data)
    row.times = measure(arms, cfg)
    row.note = check_compiles(compiled, expected_misses=1)

    clock.warm(loss_fn, lambda cf: _grads(cf, data))
    row.compile_cold, row.compile_warm = clock.result(row.times["compiled"].median)
    return [row]
