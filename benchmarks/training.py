"""Shared pieces of the training workloads (digits MLP, LSTM, CNN): feature checks,
parameter copies between arms, and the gradient check of compiled against eager."""
from __future__ import annotations

import numpy as np

import tracegrad

from .harness import Row, close


def missing(*names: str) -> str | None:
    """None when every dotted name under ``tracegrad`` exists, else what is missing."""
    absent = []
    for name in names:
        obj = tracegrad
        try:
            for part in name.split("."):
                obj = getattr(obj, part) if hasattr(obj, part) else __import__(
                    f"{obj.__name__}.{part}", fromlist=[part])
        except Exception:  # noqa: BLE001 - absent or broken counts as missing
            absent.append(f"tracegrad.{name}")
    return ", ".join(absent) or None


def skipped(workload: str, name: str, size: str, why: str) -> Row:
    return Row(workload, name, size, status="skipped", note=f"skipped: not available ({why})")


def digits(n: int | None = None):
    """sklearn's 8x8 digits, scaled to [0, 1]: (x float32 (N, 64), y int64 (N,))."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    if n is not None:
        x, y = x[:n], y[:n]
    return x, y


def state_numpy(model) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in model.parameters()]


def load_state(model, arrays, torch=None) -> None:
    """Copy arrays into a tracegrad (or PyTorch, with ``torch``) model's parameters."""
    lib = torch or tracegrad
    with lib.no_grad():
        for p, a in zip(model.parameters(), arrays):
            p.copy_(lib.from_numpy(a.copy()))


def grads_match(model, eager_loss, compiled_loss, args) -> bool:
    """compiled loss and parameter gradients equal eager ones (float32 tolerances)."""
    results = []
    for fn in (eager_loss, compiled_loss):
        for p in model.parameters():
            p.grad = None
        loss = fn(*args)
        loss.backward()
        results.append([loss.detach().numpy().copy()] +
                       [p.grad.numpy().copy() for p in model.parameters()])
    for p in model.parameters():
        p.grad = None
    return all(close(c, e, rtol=1e-3, atol_rel=1e-4) for e, c in zip(*results))


def tg_train_step(model, opt, loss_fn):
    def step(*args):
        opt.zero_grad()
        loss = loss_fn(*args)
        loss.backward()
        opt.step()
        return loss
    return step
