"""GELU (tanh form) and SiLU on 1M and 16M float32: memory-bound elementwise chains that
fuse into one kernel when compiled. Both arms run the same Python function."""
from __future__ import annotations

import math

import numpy as np

import tracegrad

from .harness import Config
from .kernels import kernel_row

NAME = "elementwise"
C = math.sqrt(2.0 / math.pi)


def gelu(x):
    return 0.5 * x * (1.0 + tracegrad.tanh(C * (x + 0.044715 * x * x * x)))


def silu(x):
    return x * tracegrad.sigmoid(x)


def gelu_np(x):
    return (0.5 * x * (1.0 + np.tanh(np.float32(C) * (x + np.float32(0.044715) * x * x * x)))
            ).astype(np.float32, copy=False)


def silu_np(x):
    return x / (np.float32(1.0) + np.exp(-x))


def run(cfg: Config) -> list:
    if cfg.tiny:
        sizes = [(1 << 12, "4K")]
    elif cfg.quick:
        sizes = [(1 << 20, "1M")]  # --quick: 1M instead of 16M
    else:
        sizes = [(1 << 20, "1M"), (1 << 24, "16M")]
    torch = cfg.peers.get("torch")
    jax = cfg.peers.get("jax")
    rows = []
    rng = np.random.default_rng(0)
    for n, label in sizes:
        x = (rng.standard_normal(n, dtype=np.float32) * 3).astype(np.float32)
        rows.append(kernel_row(
            cfg, NAME, "GELU (tanh)", label, x, gelu, gelu_np,
            torch_fn=(lambda t: torch.nn.functional.gelu(t, approximate="tanh")) if torch else None,
            jax_fn=(lambda v: jax.nn.gelu(v, approximate=True)) if jax else None))
        rows.append(kernel_row(
            cfg, NAME, "SiLU", label, x, silu, silu_np,
            torch_fn=torch.nn.functional.silu if torch else None,
            jax_fn=jax.nn.silu if jax else None))
    return rows
