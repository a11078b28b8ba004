"""The digits MLP training epoch: sklearn's 8x8 digits, an MLP 64-128-10 (ReLU) with
``tracegrad.nn`` and ``tracegrad.optim.SGD``, cross-entropy, batches of 64. eager: plain
eager training; compiled: the loss function compiled (forward+backward), eager SGD;
whole step: zero_grad, forward, backward and the SGD step compiled as one program."""
from __future__ import annotations

import numpy as np

import tracegrad

from .harness import CompileClock, Config, Row, check_compiles, measure
from .training import (digits, grads_match, load_state, missing, skipped, state_numpy,
                       tg_train_step)

NAME = "digits_mlp"
BATCH = 64
LR = 0.05


def numpy_mlp_grads(params, x, y) -> tuple:
    """Hand-written forward and backward of the digits MLP (linear, ReLU, linear,
    cross-entropy): the gradients of ``params`` in their order."""
    w1, b1, w2, b2 = params  # tracegrad/PyTorch layout: weight (out, in)
    h = x @ w1.T + b1
    r = np.maximum(h, 0)
    z = r @ w2.T + b2
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    g = p / len(y)
    gh = g @ w2
    gh[h <= 0] = 0
    return gh.T @ x, gh.sum(0), g.T @ r, g.sum(0)


def _numpy_epoch(params, batches):
    def epoch():
        for x, y in batches:
            for w, gw in zip(params, numpy_mlp_grads(params, x, y)):
                np.subtract(w, LR * gw, out=w)
    return epoch


def run(cfg: Config) -> list[Row]:
    n = cfg.pick(None, 512, tiny=256)
    x_np, y_np = digits(n)
    nb = len(x_np) // BATCH  # full batches only: one signature for the compiled arm
    size = f"{nb * BATCH} samples, batch {BATCH}"
    why = missing("nn.Linear", "nn.ReLU", "nn.Sequential", "nn.functional.cross_entropy",
                  "optim.SGD")
    if why:
        return [skipped(NAME, "digits MLP epoch", size, why)]
    nn = tracegrad.nn
    F = tracegrad.nn.functional
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(x_np))[: nb * BATCH]
    np_batches = [(x_np[perm[i:i + BATCH]], y_np[perm[i:i + BATCH]])
                  for i in range(0, nb * BATCH, BATCH)]
    tg_batches = [(tracegrad.from_numpy(x), tracegrad.from_numpy(y)) for x, y in np_batches]

    tracegrad.manual_seed(0)
    init = state_numpy(nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)))
    row = Row(NAME, "digits MLP epoch", size, "ms")

    def tg_arm(compile_it: bool, whole: bool = False):
        model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        load_state(model, init)

        def loss_fn(x, y):
            return F.cross_entropy(model(x), y)
        fn = tracegrad.compile(loss_fn) if compile_it else loss_fn
        step = tg_train_step(model, tracegrad.optim.SGD(model.parameters(), lr=LR), fn)
        if whole:
            step = tracegrad.compile(step, fullgraph=True)

        def epoch():
            for x, y in tg_batches:
                step(x, y)
        return model, loss_fn, fn, epoch

    model_c, loss_c, compiled, epoch_c = tg_arm(True)
    clock = CompileClock()
    with clock.cold():
        compiled(*tg_batches[0]).backward()
    row.correct = grads_match(model_c, loss_c, compiled, tg_batches[0])
    arms = {"eager": tg_arm(False)[3], "compiled": epoch_c, "whole step": tg_arm(False, True)[3],
            "numpy": _numpy_epoch([a.copy() for a in init], np_batches)}
    torch = cfg.peers.get("torch")
    if torch is not None:
        tm = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),
                                 torch.nn.Linear(128, 10))
        load_state(tm, init, torch)
        topt = torch.optim.SGD(tm.parameters(), lr=LR)
        t_batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in np_batches]

        def torch_epoch():
            for x, y in t_batches:
                topt.zero_grad()
                torch.nn.functional.cross_entropy(tm(x), y).backward()
                topt.step()
        arms["torch"] = torch_epoch
    row.times = measure(arms, cfg)
    row.note = check_compiles(compiled, expected_misses=1)

    def first(cf):
        cf(*tg_batches[0]).backward()
    steady = row.times["compiled"].median / nb
    clock.warm(loss_c, first)
    row.compile_cold, row.compile_warm = clock.result(steady)
    return [row]
