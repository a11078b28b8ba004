"""Symbolic sizes (issue 13): GELU 16M, softmax rows and the seed network's forward,
compiled once as a symbolic size ``s0`` made at another size (the "compiled" column) and
per shape (``dynamic=False``: the "specialised" arm, in the JSON and the note).  The note
gives symbolic / specialised time and how many compiles each took; "not symbolic" says
the program stayed specialised (and why, from cache_info)."""
from __future__ import annotations

import numpy as np

import tracegrad
import tracegrad.nn.functional as F

from .harness import Config, Row, close, measure
from .wl_elementwise import gelu
from .wl_seed_mlp import D_IN, D_OUT, H

NAME = "symbolic"


def softmax(x):
    return F.softmax(x, dim=-1)


def _seed_forward(w1, w2):
    def forward(x):
        return x.mm(w1).clamp(min=0).mm(w2)
    return forward


def _row(cfg: Config, name: str, size: str, fn, x: np.ndarray, other: np.ndarray) -> Row:
    row = Row(NAME, name, size, "ms", bytes_moved=2 * x.nbytes)
    tx = tracegrad.from_numpy(x)
    specialised = tracegrad.compile(fn, dynamic=False)
    symbolic = tracegrad.compile(fn, dynamic=True)
    symbolic(tracegrad.from_numpy(other))   # the symbolic program is made at another size
    got = symbolic(tx)
    row.correct = close(got.numpy(), specialised(tx).numpy(), 1e-5, 1e-6)
    del got
    row.times = measure({"eager": lambda: fn(tx), "compiled": lambda: symbolic(tx),
                         "specialised": lambda: specialised(tx)}, cfg)
    info = symbolic.cache_info()
    ratio = row.times["compiled"].median / row.times["specialised"].median
    what = ("s0" if any(s.startswith("s0") for s in info.symbolic)
            else "; ".join(info.symbolic) or "not symbolic")
    row.note = (f"symbolic/specialised {ratio:.2f}; compiles: symbolic {info.misses}, "
                f"specialised {specialised.cache_info().misses}; {what}")
    return row


def run(cfg: Config) -> list:
    rng = np.random.default_rng(0)
    n = cfg.pick(1 << 24, 1 << 20, 1 << 12)
    rows_, cols = cfg.pick((4096, 1024), (1024, 1024), (64, 128))
    batch = cfg.pick(64, 64, 8)
    w1 = tracegrad.from_numpy(rng.standard_normal((D_IN, H)).astype(np.float32))
    w2 = tracegrad.from_numpy(rng.standard_normal((H, D_OUT)).astype(np.float32))
    f32 = np.float32
    return [
        _row(cfg, "GELU (tanh) s0", f"{n >> 20}M" if n >= 1 << 20 else str(n), gelu,
             rng.standard_normal(n, dtype=f32), rng.standard_normal(n // 2 + 3, dtype=f32)),
        _row(cfg, "softmax rows s0", f"{rows_}x{cols}", softmax,
             rng.standard_normal((rows_, cols), dtype=f32),
             rng.standard_normal((rows_ // 2 + 3, cols), dtype=f32)),
        _row(cfg, "seed forward s0", f"{batch}x{D_IN}", _seed_forward(w1, w2),
             rng.standard_normal((batch, D_IN), dtype=f32),
             rng.standard_normal((batch // 2 + 3, D_IN), dtype=f32)),
    ]
