"""The digits MLP epoch trained with Adam, and the Adam update alone.

Row 1, digits MLP epoch (Adam): eager (plain eager training), whole step (zero_grad, forward, backward and ``optim.Adam``'s step compiled as one program) and
numpy (hand-written forward, backward and Adam with PyTorch's formulas).
Row 2, Adam update: eager = the per-parameter loop of ``optim.Adam`` (``fused=None``),
compiled = ``Adam(fused=True)`` (one compiled update over all parameters).
"""
from __future__ import annotations

import math

import numpy as np

import tracegrad

from .harness import Config, Row, close, measure
from .training import digits, load_state, state_numpy
from .wl_digits import numpy_mlp_grads

NAME = "digits_adam"
BATCH = 64
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8


def _numpy_adam_epoch(params, batches):
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    count = [0]

    def epoch():
        for x, y in batches:
            grads = numpy_mlp_grads(params, x, y)
            count[0] += 1
            c1 = 1 - BETAS[0] ** count[0]
            c2 = math.sqrt(1 - BETAS[1] ** count[0])
            for w, gw, (m, v) in zip(params, grads, moments):
                m *= BETAS[0]
                m += (1 - BETAS[0]) * gw
                v *= BETAS[1]
                v += (1 - BETAS[1]) * (gw * gw)
                denom = np.sqrt(v)
                denom /= c2
                denom += EPS
                np.divide(m, denom, out=denom)
                denom *= -(LR / c1)
                w += denom
    return epoch


def run(cfg: Config) -> list[Row]:
    n = cfg.pick(None, 512, tiny=256)
    x_np, y_np = digits(n)
    nb = len(x_np) // BATCH
    nn, F = tracegrad.nn, tracegrad.nn.functional
    perm = np.random.default_rng(0).permutation(len(x_np))[: nb * BATCH]
    np_batches = [(x_np[perm[i:i + BATCH]], y_np[perm[i:i + BATCH]])
                  for i in range(0, nb * BATCH, BATCH)]
    tg_batches = [(tracegrad.from_numpy(x), tracegrad.from_numpy(y)) for x, y in np_batches]
    tracegrad.manual_seed(0)
    init = state_numpy(nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)))

    def arm(whole: bool, fused: bool = False):
        model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        load_state(model, init)
        opt = tracegrad.optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS,
                                   fused=fused or None)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss
        step = tracegrad.compile(step, fullgraph=True) if whole else step

        def epoch():
            for x, y in tg_batches:
                step(x, y)
        return model, opt, epoch

    size = f"{nb * BATCH} samples, batch {BATCH}"
    epoch_row = Row(NAME, "digits MLP epoch (Adam)", size, "ms")
    (m_e, _, e_epoch), (m_w, _, w_epoch) = arm(False), arm(True)
    e_epoch()
    w_epoch()   # one epoch each from the same start: the whole step must agree with eager
    epoch_row.correct = all(close(a.detach().numpy(), b.detach().numpy(), rtol=1e-4)
                            for a, b in zip(m_e.parameters(), m_w.parameters()))
    epoch_row.times = measure({"eager": e_epoch, "whole step": w_epoch,
                               "numpy": _numpy_adam_epoch([a.copy() for a in init],
                                                          np_batches)}, cfg)

    update_row = Row(NAME, "Adam update (loop vs fused=True)", "64-128-10 params", "us")
    models = {}
    for fused in (False, True):
        model, opt, _ = arm(False, fused)
        F.cross_entropy(model(tg_batches[0][0]), tg_batches[0][1]).backward()
        models[fused] = (model, opt)
    for _ in range(3):
        for _, opt in models.values():
            opt.step()
    update_row.correct = all(close(a.detach().numpy(), b.detach().numpy(), rtol=1e-5)
                             for a, b in zip(models[False][0].parameters(),
                                             models[True][0].parameters()))
    update_row.times = measure({"eager": models[False][1].step,
                                "compiled": models[True][1].step}, cfg)
    return [epoch_row, update_row]
