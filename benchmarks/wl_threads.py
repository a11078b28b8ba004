"""BLAS threads and kernel threads in one program (NOTE (one kind of worker),
``runtime.blas_threads``): four rounds of a gemm (1024x256 @ 256x256) each followed by a
tanh kernel big enough for the thread pool. The compiled arm holds OpenBLAS to one thread
while the program runs and splits the gemms over tracegrad's own pool; eager, NumPy and
PyTorch use their BLAS's threads."""
from __future__ import annotations

import numpy as np

import tracegrad
from tracegrad.runtime import blas_threads

from .harness import Config
from .kernels import kernel_row

NAME = "threads"
ROUNDS = 4


def _chain(tanh):
    def chain(x, w):
        for _ in range(ROUNDS):
            x = tanh(x @ w) * 1.5 + 0.1
        return x
    return chain


def run(cfg: Config) -> list:
    m, k = cfg.pick(1024, 1024, tiny=64), cfg.pick(256, 256, tiny=32)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((m, k)) * 0.5).astype(np.float32)
    w_np = (rng.standard_normal((k, k)) / np.sqrt(k)).astype(np.float32)
    w = tracegrad.from_numpy(w_np)
    tg, np_chain = _chain(tracegrad.tanh), _chain(np.tanh)
    torch = cfg.peers.get("torch")
    tw = torch.from_numpy(w_np) if torch is not None else None
    row = kernel_row(cfg, NAME, f"{ROUNDS} x (gemm, tanh)", f"{m}x{k} @ {k}x{k}", x,
                     lambda t: tg(t, w), lambda a: np_chain(a, w_np),
                     torch_fn=(lambda t: _chain(torch.tanh)(t, tw)) if torch else None)
    row.bytes_moved = None   # compute-bound: no GB/s
    outside = blas_threads.get_blas_threads()
    threads = f"BLAS threads outside programs: {outside}, inside: 1"
    row.note = f"{row.note}; {threads}" if row.note else threads
    return [row]
