"""Row-wise softmax, log_softmax and layer_norm over the last dimension of a (rows, 1024)
float32 matrix (a reduction with elementwise producers and consumers, one kernel when
fused), and cross_entropy forward+backward over such logits (``rows_cross_entropy``)."""
from __future__ import annotations

import numpy as np

import tracegrad

from .harness import Config
from .kernels import kernel_row
from .rows_cross_entropy import cross_entropy_row

NAME = "rownorm"
EPS = 1e-5


def softmax(x):
    return tracegrad.softmax(x, dim=-1)


def _layer_norm_impl():
    """``tracegrad.nn.functional.layer_norm`` when it exists, else the formula."""
    try:
        from tracegrad.nn import functional as F
        if hasattr(F, "layer_norm"):
            return F.layer_norm, "nn.functional.layer_norm"
    except Exception:  # noqa: BLE001 - nn may not exist yet
        pass

    def layer_norm(x, shape, weight, bias, eps):
        mean = x.mean(dim=-1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
        return (x - mean) / tracegrad.sqrt(var + eps) * weight + bias
    return layer_norm, "x-mean/sqrt(var+eps)*w+b"


def softmax_np(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(x):
    return tracegrad.log_softmax(x, dim=-1)


def log_softmax_np(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def run(cfg: Config) -> list:
    rows_n = cfg.pick(4096, 1024, tiny=64)
    cols = 1024 if not cfg.tiny else 128
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows_n, cols), dtype=np.float32)
    w_np = rng.standard_normal(cols, dtype=np.float32)
    b_np = rng.standard_normal(cols, dtype=np.float32)
    size = f"{rows_n}x{cols}"
    torch = cfg.peers.get("torch")
    jax = cfg.peers.get("jax")
    out = [kernel_row(
        cfg, NAME, "softmax", size, x, softmax, softmax_np,
        torch_fn=(lambda t: torch.softmax(t, dim=-1)) if torch else None,
        jax_fn=(lambda v: jax.nn.softmax(v, axis=-1)) if jax else None)]
    out.append(kernel_row(
        cfg, NAME, "log_softmax", size, x, log_softmax, log_softmax_np,
        torch_fn=(lambda t: torch.log_softmax(t, dim=-1)) if torch else None,
        jax_fn=(lambda v: jax.nn.log_softmax(v, axis=-1)) if jax else None))

    ln, how = _layer_norm_impl()
    w, b = tracegrad.from_numpy(w_np), tracegrad.from_numpy(b_np)

    def layer_norm(x):
        return ln(x, (cols,), w, b, EPS)

    def layer_norm_np(x):
        mean = x.mean(axis=-1, keepdims=True)
        var = x.var(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + np.float32(EPS)) * w_np + b_np

    tw = torch.from_numpy(w_np) if torch else None
    tb = torch.from_numpy(b_np) if torch else None

    def jax_ln(v):
        mean = v.mean(axis=-1, keepdims=True)
        var = ((v - mean) ** 2).mean(axis=-1, keepdims=True)
        return (v - mean) * jax.lax.rsqrt(var + EPS) * w_np + b_np

    row = kernel_row(
        cfg, NAME, "layer_norm", size, x, layer_norm, layer_norm_np,
        torch_fn=(lambda t: torch.nn.functional.layer_norm(t, (cols,), tw, tb, EPS))
        if torch else None,
        jax_fn=jax_ln if jax else None, rtol=1e-3, atol_rel=1e-4)
    row.note = "; ".join(p for p in (row.note, f"via {how}") if p)
    out.append(row)
    targets = rng.integers(0, cols, rows_n)
    out.append(cross_entropy_row(cfg, NAME, x, targets))
    return out
