"""One row for a function of one tensor: tracegrad eager vs ``tracegrad.compile`` of the
same Python function, plus NumPy and (when importable) PyTorch / JAX peers."""
from __future__ import annotations

from typing import Callable

import numpy as np

import tracegrad

from .harness import CompileClock, Config, Row, check_compiles, close, measure


def _sync(cfg: Config):
    if cfg.device != "cuda":
        return None
    return getattr(tracegrad.cuda, "synchronize", None)


def kernel_row(cfg: Config, workload: str, name: str, size: str, x: np.ndarray,
               tg_fn: Callable, np_fn: Callable, torch_fn: Callable | None = None,
               jax_fn: Callable | None = None, rtol: float = 1e-4,
               atol_rel: float = 1e-5) -> Row:
    """``x``'s bytes are read once and an output of the same size written: that is the
    minimum traffic GB/s is computed from."""
    row = Row(workload, name, size, "ms", bytes_moved=2 * x.nbytes)
    tx = tracegrad.from_numpy(x)
    if cfg.device != "cpu":
        tx = tx.to(cfg.device)
    compiled = tracegrad.compile(tg_fn)
    clock = CompileClock()
    with clock.cold():
        got = compiled(tx)
    row.correct = close(got.numpy(), tg_fn(tx).numpy(), rtol, atol_rel)
    del got
    arms = {"eager": lambda: tg_fn(tx), "compiled": lambda: compiled(tx),
            "numpy": lambda: np_fn(x)}
    torch = cfg.peers.get("torch")
    if torch is not None and torch_fn is not None:
        t = torch.from_numpy(x)
        arms["torch"] = lambda: torch_fn(t)
        if not cfg.quick:
            tc = torch.compile(torch_fn)
            arms["torch.compile"] = lambda: tc(t)
        else:
            row.notes["torch.compile"] = "skip (quick)"
    jax = cfg.peers.get("jax")
    if jax is not None and jax_fn is not None:
        jx = jax.numpy.asarray(x)
        jf = jax.jit(jax_fn)
        arms["jax.jit"] = lambda: jf(jx).block_until_ready()
    row.times = measure(arms, cfg, sync=_sync(cfg))
    row.note = check_compiles(compiled, expected_misses=1)
    clock.warm(tg_fn, lambda cf: cf(tx))
    row.compile_cold, row.compile_warm = clock.result(row.times["compiled"].median)
    return row
