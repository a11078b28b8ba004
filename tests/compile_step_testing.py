"""Shared by the tests of compiled whole training steps (tests/test_compile_step_optimizers*):
small versions of the benchmarks' models (benchmarks/wl_seq_conv.py: the CNN and the
2-layer LSTM), their data, every optimizer configuration, and the eager-vs-compiled
comparison."""
from __future__ import annotations

import warnings

import numpy as np

import tracegrad
import tracegrad.nn as nn
import tracegrad.nn.functional as F

optim = tracegrad.optim

# Every optimizer of tracegrad.optim (LBFGS takes a closure: its own test), with the
# options that change the shape of its update. ASGD's t0=20 makes mu leave 1 mid-run.
CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, maximize=True)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True, capturable=True)),
    ("AdamW", dict(lr=1e-2, amsgrad=True, maximize=True)),
    ("RMSprop", dict(lr=1e-2)),
    ("RMSprop", dict(lr=1e-2, momentum=0.5, centered=True, weight_decay=1e-3)),
    ("Adagrad", dict(lr=1e-1, lr_decay=0.01, weight_decay=1e-3, initial_accumulator_value=0.1)),
    ("Adadelta", dict(lr=1.0, weight_decay=1e-3, maximize=True)),
    ("Adamax", dict(lr=1e-2, weight_decay=1e-3)),
    ("NAdam", dict(lr=1e-2)),
    ("NAdam", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True, momentum_decay=0.01)),
    ("NAdam", dict(lr=1e-2, weight_decay=1e-2, maximize=True)),
    ("RAdam", dict(lr=1e-2)),
    ("RAdam", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=1e-2, weight_decay=1e-2, betas=(0.9, 0.9))),   # rectified from step 6
    ("Rprop", dict(lr=1e-2)),
    ("Rprop", dict(lr=1e-2, etas=(0.3, 1.5), step_sizes=(1e-4, 0.05), maximize=True)),
    ("ASGD", dict(lr=1e-2, t0=20)),
    ("ASGD", dict(lr=1e-2, lambd=1e-2, alpha=0.5, t0=5, weight_decay=1e-3)),
]
CLASSES = sorted({name for name, _ in CONFIGS})


def config_id(config) -> str:
    name, kw = config
    return name + "".join(f"-{k}={v}" for k, v in kw.items() if k != "lr")


def first_config(name: str) -> dict:
    return next(kw for n, kw in CONFIGS if n == name)


def make_mlp():
    tracegrad.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 16), nn.Tanh(), nn.Linear(16, 4))


def make_cnn():
    tracegrad.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 10))


class LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 8, num_layers=2, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0][:, -1]


def make_lstm():
    tracegrad.manual_seed(0)
    return LSTMNet()


def _batches(x_shape, y_of, n=5):
    rng = np.random.default_rng(0)
    return [(tracegrad.from_numpy(rng.standard_normal(x_shape).astype(np.float32)),
             tracegrad.from_numpy(y_of(rng))) for _ in range(n)]


MODELS = {
    "mlp": (make_mlp, _batches((8, 20), lambda r: r.integers(0, 4, 8))),
    "mlp64": (lambda: make_mlp().double(), [(x.double(), y) for x, y in
                                            _batches((8, 20), lambda r: r.integers(0, 4, 8))]),
    "cnn": (make_cnn, _batches((8, 1, 8, 8), lambda r: r.integers(0, 10, 8))),
    "lstm": (make_lstm, _batches((4, 3, 6), lambda r: r.standard_normal((4, 8))
                                 .astype(np.float32))),
}


def loss_of(model, x, y):
    out = model(x)
    return F.cross_entropy(out, y) if y.dtype == tracegrad.int64 else (out - y).pow(2).mean()


def make_step(model, opt, clip=None, set_to_none=True):
    # maximize=True climbs the negated loss: training stays as well-conditioned as
    # descent (climbing the loss itself diverges, and rounding differences with it)
    sign = -1.0 if opt.defaults.get("maximize") else 1.0

    def step(x, y):
        opt.zero_grad(set_to_none=set_to_none)
        loss = loss_of(model, x, y) * sign
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss
    return step


def relative(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-12))


def assert_same_training(model_e, opt_e, model_c, opt_c, tol=1e-4):
    """Parameters, ``.grad`` (None where eager has None) and every optimizer state entry
    agree within ``tol`` (relative to the largest magnitude)."""
    for (name, a), b in zip(model_e.named_parameters(), model_c.parameters()):
        assert relative(a.detach().numpy(), b.detach().numpy()) < tol, name
        assert (a.grad is None) == (b.grad is None), name
        if a.grad is not None:
            assert relative(a.grad.numpy(), b.grad.numpy()) < tol, name
        # .get: indexing the defaultdict would add the empty entries this compares
        se, sc = opt_e.state.get(a, {}), opt_c.state.get(b, {})
        assert se.keys() == sc.keys(), name
        for k in se:
            assert relative(np.asarray(se[k].numpy()), np.asarray(sc[k].numpy())) < tol, (name, k)


class Pair:
    """The same model and optimizer twice: one trained eagerly, one by the compiled step."""

    def __init__(self, model, cls, kw, clip=None, set_to_none=True, schedule=None,
                 select=lambda model: model.parameters()):
        build, self.data = MODELS[model]
        self.models = build(), build()
        self.opts = [getattr(optim, cls)(select(m), **kw) for m in self.models]
        self.scheds = [schedule(o) for o in self.opts] if schedule else []
        self.eager = make_step(self.models[0], self.opts[0], clip, set_to_none)
        self.compiled = tracegrad.compile(make_step(self.models[1], self.opts[1], clip,
                                                    set_to_none), fullgraph=True)

    def run(self, steps, every_step=False, tol=1e-4, between=None):
        """``steps`` steps of both; the losses compared at each, everything else at each
        step (``every_step``) or at the end. No call may fall back or warn about it."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for i in range(steps):
                x, y = self.data[i % len(self.data)]
                le, lc = self.eager(x, y), self.compiled(x, y)
                assert relative(le.item(), lc.item()) < tol, i
                if every_step:
                    assert_same_training(self.models[0], self.opts[0], self.models[1],
                                         self.opts[1], tol)
                for s in self.scheds:
                    s.step()
                if between is not None:
                    for opt in self.opts:
                        between(i, opt)
        compile_warnings = [str(w.message) for w in caught if "compile" in str(w.message)]
        assert not compile_warnings, compile_warnings
        assert_same_training(self.models[0], self.opts[0], self.models[1], self.opts[1], tol)
        return self.compiled.cache_info()
