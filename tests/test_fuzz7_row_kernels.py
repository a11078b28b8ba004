"""Fuzz 7: row kernels (softmax, log_softmax, layer_norm, cross_entropy with ignore_index,
label_smoothing, weights and each reduction, reductions over any dim with keepdim,
logsumexp, var, prod, cumsum) compiled with dynamic None/True/False and called three times
on odd sizes (1, 2, 15, 17, 1023, 4097 columns), transposed arguments and rows of special
values (all -inf, a NaN, +-inf, -0.0, +-1e30, constant), each call against eager: NaN and
inf positions exactly, values to a few ulps. FUZZ7_ROW_SEEDS=n runs more."""
import os
import warnings

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn.functional as F
from fuzz7_testing import same_values

SEEDS = range(int(os.environ.get("FUZZ7_ROW_SEEDS", "40")))
COLUMNS = (1, 2, 15, 17, 1023, 4097)


def _ce(h, t, w, p):
    return F.cross_entropy(h, t, weight=w, ignore_index=p["ii"], label_smoothing=p["ls"],
                           reduction=p["red"])


KERNELS = {
    "softmax": lambda h, t, w, p: F.softmax(h, p["dim"]),
    "log_softmax": lambda h, t, w, p: F.log_softmax(h, p["dim"]),
    "layer_norm": lambda h, t, w, p: F.layer_norm(h, (h.shape[-1],), eps=p["eps"]),
    "layer_norm_w": lambda h, t, w, p: F.layer_norm(h, (h.shape[-1],), weight=w,
                                                    bias=w * 0.5, eps=p["eps"]),
    "cross_entropy": lambda h, t, w, p: _ce(h, t, None, p),
    "cross_entropy_w": lambda h, t, w, p: _ce(h, t, w.abs() + 0.1, p),
    "sum": lambda h, t, w, p: h.sum(p["dim"], keepdim=p["keep"]),
    "mean": lambda h, t, w, p: h.mean(p["dim"], keepdim=p["keep"]),
    "amax": lambda h, t, w, p: h.amax(p["dim"], keepdim=p["keep"]),
    "max_values": lambda h, t, w, p: h.max(p["dim"], keepdim=p["keep"])[0],
    "argmax": lambda h, t, w, p: h.argmax(p["dim"], keepdim=p["keep"]),
    "min_indices": lambda h, t, w, p: h.min(p["dim"], keepdim=p["keep"])[1],
    "var": lambda h, t, w, p: h.var(p["dim"], keepdim=p["keep"]),
    "logsumexp": lambda h, t, w, p: tg.logsumexp(h, p["dim"], keepdim=p["keep"]),
    "normalised": lambda h, t, w, p: h / (h.norm(dim=p["dim"], keepdim=True) + 1e-6),
    "softmax_scaled": lambda h, t, w, p: F.softmax(h * p["s"], -1) * h.shape[-1],
    # NOTE: within +-1.01, so no order of 4097 products overflows (within +-1.1 the true
    # product -2.3e37 came out -inf eagerly, through NumPy's partial products: seed 4661)
    "prod": lambda h, t, w, p: h.clamp(-1.01, 1.01).prod(p["dim"], keepdim=p["keep"]),
    "any": lambda h, t, w, p: (h > 0).any(p["dim"], keepdim=p["keep"]),
    "cumsum": lambda h, t, w, p: h.cumsum(p["dim"]),
}
# sums over a row: their float32 results are judged per column of the row
SUMMING = {"cross_entropy", "cross_entropy_w", "sum", "mean", "var", "prod", "normalised",
           "cumsum", "logsumexp"}
# NOTE: a constant row's mean rounds (15 copies of -281.54 sum and divide to 1 ulp off), and
# layer_norm or var divide that ulp by sqrt(eps): eager and compiled each round their own way
NO_CONSTANT_ROWS = {"layer_norm", "layer_norm_w", "var"}


def _special_rows(rng, h, constant_rows: bool):
    h = h.copy()
    c = h.shape[-1]
    for i in range(h.shape[-2]):
        row, kind = h[..., i, :], int(rng.integers(0, 9))
        if kind == 0:
            row[...] = -np.inf
        elif kind in (1, 2, 3):
            row[..., rng.integers(0, c)] = (np.nan, np.inf, -np.inf)[kind - 1]
        elif kind == 4:
            row[...] = -0.0
        elif kind == 5:
            row[...] = 1e30 * np.sign(row)
        elif kind == 6 and constant_rows:
            row[...] = row[..., :1]
    return h


def _calls(seed):
    """(kernel name, dynamic, [(h, targets, weight, params)] for three calls)."""
    rng = np.random.default_rng(seed)
    name = list(KERNELS)[int(rng.integers(0, len(KERNELS)))]
    dynamic = (None, True, False)[int(rng.integers(0, 3))]
    calls = []
    for _ in range(3):
        r, c = int(rng.choice((1, 3, 4))), int(rng.choice(COLUMNS))
        dtype = ("float32", "float64")[int(rng.random() < 0.3)]
        three = rng.random() < 0.3 and not name.startswith("cross")
        shape = (2, r, c) if three else (r, c)
        h = (rng.standard_normal(shape) * (1, 10, 100)[int(rng.integers(0, 3))]).astype(dtype)
        if rng.random() < 0.6:
            h = _special_rows(rng, h, name not in NO_CONSTANT_ROWS)
        ignore = int(rng.choice([-100, 0, 1]))
        t = rng.integers(0, c, r)
        if rng.random() < 0.3:
            t[rng.integers(0, r)] = ignore
        p = dict(dim=int(rng.integers(-len(shape), len(shape))), keep=bool(rng.integers(0, 2)),
                 eps=float(rng.choice([1e-5, 0.0, 1e-3])), ii=ignore,
                 ls=float(rng.choice([0.0, 0.1, 0.5])),
                 red=str(rng.choice(["mean", "sum", "none"])),
                 s=float(rng.choice([1.0, 1e5, -1e5, 0.0])), transposed=rng.random() < 0.3)
        calls.append((h, t, rng.standard_normal(c).astype(dtype), p))
    return name, dynamic, calls


def _argument(h, transposed: bool):
    if transposed and h.ndim == 2:
        return tg.tensor(np.ascontiguousarray(h.T)).t()
    return tg.tensor(h.copy())


@pytest.mark.parametrize("seed", SEEDS)
def test_row_kernel_calls_match_eager(seed):
    name, dynamic, calls = _calls(seed)
    fn = KERNELS[name]
    compiled = tg.compile(fn, dynamic=dynamic)
    for k, (h, t, w, p) in enumerate(calls):
        where = (f"seed {seed}: {name} dynamic={dynamic} call {k}: {h.dtype}{h.shape} "
                 f"params {p}")
        args = (tg.tensor(t), tg.tensor(w), p)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                want = fn(tg.tensor(h.copy()), *args)
            except Exception as e:   # compiled must raise as well
                with pytest.raises(type(e)):
                    compiled(_argument(h, p["transposed"]), *args)
                continue
            got = compiled(_argument(h, p["transposed"]), *args)
        want, got = want.numpy(), got.numpy()
        rtol, atol = (3e-5, 1e-6) if want.dtype == np.float32 else (1e-11, 1e-13)
        if name in SUMMING:
            rtol, atol = rtol * 10, atol * 10 * h.shape[-1]
        msg = same_values(got, want, rtol, atol)
        assert msg is None, f"{msg}\n{where}"
