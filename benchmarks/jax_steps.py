"""``jax.jit`` arms of the training-step workloads (LSTM, CNN): the same model, loss and
SGD update as the tracegrad step, written with jax.numpy, so a row shows jax.jit's first
call (its trace and XLA compile) beside tracegrad's cold compile in the same run.

Parameters come in PyTorch's order (what ``training.state_numpy`` returns)."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def _sgd_step(jax, loss_fn, params: Sequence[np.ndarray], lr: float, data: list):
    """A step function over ``data`` (one tuple of arrays per call, cycled) that updates
    ``params`` in place of a jitted value_and_grad + SGD update."""
    jnp = jax.numpy

    @jax.jit
    def update(params, *batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
        return loss, [p - lr * g for p, g in zip(params, grads)]

    state = [[jnp.asarray(p) for p in params]]
    batches = [tuple(jnp.asarray(a) for a in b) for b in data]

    def cycle():
        for batch in batches:
            loss, state[0] = update(state[0], *batch)
        loss.block_until_ready()
    return cycle


def lstm_cycle(jax, params: Sequence[np.ndarray], layers: int, lr: float,
               data: list) -> Callable[[], None]:
    """Two-layer ``batch_first`` LSTM (PyTorch's gate order i, f, g, o), loss
    mean((h_T - y)^2), over ``data`` = [(x[B, T, F], y[B, H]), ...]; the time loop is
    unrolled, so each length is its own XLA program, as it is a trace for tracegrad."""
    jnp, nn = jax.numpy, jax.nn

    def loss_fn(p, x, y):
        seq = [x[:, t] for t in range(x.shape[1])]
        for layer in range(layers):
            w_ih, w_hh, b_ih, b_hh = p[4 * layer:4 * layer + 4]
            hidden = w_hh.shape[1]
            h = jnp.zeros((x.shape[0], hidden), x.dtype)
            c = jnp.zeros_like(h)
            out = []
            for xt in seq:
                gates = xt @ w_ih.T + b_ih + h @ w_hh.T + b_hh
                i, f, g, o = (gates[:, k * hidden:(k + 1) * hidden] for k in range(4))
                c = nn.sigmoid(f) * c + nn.sigmoid(i) * jnp.tanh(g)
                h = nn.sigmoid(o) * jnp.tanh(c)
                out.append(h)
            seq = out
        return jnp.mean((seq[-1] - y) ** 2)
    return _sgd_step(jax, loss_fn, params, lr, data)


def cnn_step(jax, params: Sequence[np.ndarray], lr: float, x: np.ndarray,
             y: np.ndarray) -> Callable[[], None]:
    """Conv(1->16, 3, pad 1) ReLU Conv(16->16, 3, stride 2, pad 1) ReLU Flatten Linear,
    cross-entropy loss, one SGD step per call."""
    jnp, lax = jax.numpy, jax.lax
    dims = ("NCHW", "OIHW", "NCHW")

    def loss_fn(p, x, y):
        w1, b1, w2, b2, w3, b3 = p
        h = lax.conv_general_dilated(x, w1, (1, 1), [(1, 1), (1, 1)], dimension_numbers=dims)
        h = jnp.maximum(h + b1[:, None, None], 0)
        h = lax.conv_general_dilated(h, w2, (2, 2), [(1, 1), (1, 1)], dimension_numbers=dims)
        h = jnp.maximum(h + b2[:, None, None], 0)
        logits = h.reshape(h.shape[0], -1) @ w3.T + b3
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
    return _sgd_step(jax, loss_fn, params, lr, [(x, y)])
