"""A two-layer LSTM training step on variable sequence lengths (counting compiles per
length) and a small CNN training step on 8x8 digits; each only when tracegrad has the
layer (``nn.LSTM``, ``nn.Conv2d``). The "whole step" arm compiles zero_grad, forward,
backward and the SGD step as one program."""
from __future__ import annotations

import types

import numpy as np

import tracegrad

from . import jax_steps
from .harness import CompileClock, Config, Row, check_compiles, measure
from .training import (digits, grads_match, load_state, missing, skipped, state_numpy,
                       tg_train_step)

LSTM_NAME = "lstm"
CNN_NAME = "cnn"
LR = 0.05


# ---- LSTM -------------------------------------------------------------------------------
def run_lstm(cfg: Config) -> list[Row]:
    batch, feat, hidden = cfg.pick((16, 32, 64), (8, 16, 32), tiny=(4, 8, 16))
    # Each distinct length is one signature, so one trace and one compile of the unrolled
    # loop; the cycle revisits lengths so the replays are timed too.
    lengths = cfg.pick([4, 8, 12, 8, 4, 16], [3, 6, 3, 6], tiny=[2, 3])
    distinct = sorted(set(lengths))
    size = f"B={batch} in={feat} h={hidden} T={'/'.join(map(str, distinct))}"
    name = "LSTM 2-layer step"
    why = missing("nn.LSTM", "nn.Linear", "optim.SGD")
    if why:
        return [skipped(LSTM_NAME, name, size, why)]
    nn = tracegrad.nn
    rng = np.random.default_rng(0)
    seqs = {t: (rng.standard_normal((batch, t, feat), dtype=np.float32),
                rng.standard_normal((batch, hidden), dtype=np.float32)) for t in distinct}
    tracegrad.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(feat, hidden, num_layers=2, batch_first=True)

        def forward(self, x):
            out, _ = self.lstm(x)
            return out[:, -1]

    init = state_numpy(Net())
    row = Row(LSTM_NAME, name, size, "ms")

    def arm(compile_it, whole=False):
        model = Net()
        load_state(model, init)

        def loss_fn(x, y):
            return (model(x) - y).pow(2).mean()
        fn = tracegrad.compile(loss_fn) if compile_it else loss_fn
        step = tg_train_step(model, tracegrad.optim.SGD(model.parameters(), lr=LR), fn)
        if whole:
            step = tracegrad.compile(step, fullgraph=True)
        data = [(tracegrad.from_numpy(seqs[t][0]), tracegrad.from_numpy(seqs[t][1]))
                for t in lengths]

        def cycle():
            for x, y in data:
                step(x, y)
        return model, loss_fn, fn, cycle, data

    model_c, loss_c, compiled, cycle_c, data_c = arm(True)

    def first(cf):  # one compile per distinct length
        for t in distinct:
            cf(*data_c[lengths.index(t)]).backward()
    clock = CompileClock()
    with clock.cold():
        first(compiled)
    row.correct = all(grads_match(model_c, loss_c, compiled, data_c[lengths.index(t)])
                      for t in distinct)
    arms = {"eager": arm(False)[3], "compiled": cycle_c, "whole step": arm(False, True)[3]}
    torch = cfg.peers.get("torch")
    if torch is not None:
        lstm = torch.nn.LSTM(feat, hidden, num_layers=2, batch_first=True)
        load_state(lstm, init, torch)
        topt = torch.optim.SGD(lstm.parameters(), lr=LR)
        tdata = [(torch.from_numpy(seqs[t][0]), torch.from_numpy(seqs[t][1])) for t in lengths]

        def torch_cycle():
            for x, y in tdata:
                topt.zero_grad()
                (lstm(x)[0][:, -1] - y).pow(2).mean().backward()
                topt.step()
        arms["torch"] = torch_cycle
    jax = cfg.peers.get("jax")
    if jax is not None:  # its first call traces and compiles every length, like ours
        arms["jax.jit"] = jax_steps.lstm_cycle(jax, init, 2, LR, [seqs[t] for t in lengths])
    row.times = measure(arms, cfg, ops_per_call=len(lengths))
    info = compiled.cache_info()
    row.note = "; ".join(p for p in (
        check_compiles(compiled, expected_misses=len(distinct)),
        f"{info.misses} compiles for {len(distinct)} lengths, "
        f"{info.hits} replays; time per step over the length cycle") if p)
    clock.warm(loss_c, first)
    row.compile_cold, row.compile_warm = clock.result(row.times["compiled"].median * len(distinct))
    return [row]


# ---- CNN --------------------------------------------------------------------------------
def run_cnn(cfg: Config) -> list[Row]:
    batch = cfg.pick(64, 32, tiny=16)
    size = f"batch {batch}, 1x8x8"
    name = "CNN train step"
    why = missing("nn.Conv2d", "nn.Linear", "nn.ReLU", "nn.Flatten", "nn.Sequential",
                  "nn.functional.cross_entropy", "optim.SGD")
    if why:
        return [skipped(CNN_NAME, name, size, why)]
    F = tracegrad.nn.functional
    x_np, y_np = digits(batch)
    x_np = x_np.reshape(batch, 1, 8, 8)

    def build(lib):
        return lib.nn.Sequential(lib.nn.Conv2d(1, 16, 3, padding=1), lib.nn.ReLU(),
                                 lib.nn.Conv2d(16, 16, 3, stride=2, padding=1), lib.nn.ReLU(),
                                 lib.nn.Flatten(), lib.nn.Linear(16 * 4 * 4, 10))
    tracegrad.manual_seed(0)
    init = state_numpy(build(tracegrad))
    x, y = tracegrad.from_numpy(x_np), tracegrad.from_numpy(y_np)
    row = Row(CNN_NAME, name, size, "ms")

    def arm(compile_it, whole=False):
        model = build(tracegrad)
        load_state(model, init)

        def loss_fn(x, y):
            return F.cross_entropy(model(x), y)
        fn = tracegrad.compile(loss_fn) if compile_it else loss_fn
        step = tg_train_step(model, tracegrad.optim.SGD(model.parameters(), lr=LR), fn)
        if whole:
            step = tracegrad.compile(step, fullgraph=True)
        return model, loss_fn, fn, (lambda: step(x, y))

    model_c, loss_c, compiled, step_c = arm(True)
    clock = CompileClock()
    with clock.cold():
        compiled(x, y).backward()
    row.correct = grads_match(model_c, loss_c, compiled, (x, y))
    arms = {"eager": arm(False)[3], "compiled": step_c, "whole step": arm(False, True)[3]}
    torch = cfg.peers.get("torch")
    if torch is not None:
        tm = build(torch)
        load_state(tm, init, torch)
        topt = torch.optim.SGD(tm.parameters(), lr=LR)
        tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np)

        def torch_step():
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tm(tx), ty).backward()
            topt.step()
        arms["torch"] = torch_step
    jax = cfg.peers.get("jax")
    if jax is not None:
        arms["jax.jit"] = jax_steps.cnn_step(jax, init, LR, x_np, y_np.astype(np.int32))
    row.times = measure(arms, cfg)
    row.note = check_compiles(compiled, expected_misses=1)
    clock.warm(loss_c, lambda cf: cf(x, y).backward())
    row.compile_cold, row.compile_warm = clock.result(row.times["compiled"].median)
    return [row]


LSTMWorkload = types.SimpleNamespace(__doc__="Two-layer LSTM train step, variable lengths.",
                                     run=run_lstm)
CNNWorkload = types.SimpleNamespace(__doc__="Small CNN train step on 8x8 digits.", run=run_cnn)
