"""Symbolic sizes (issue 13): GELU 16M, softmax rows, the seed network's forward and its
whole SGD training step, compiled once as a symbolic size ``s0`` made at another size (the
"compiled" column) and per shape (``dynamic=False``: the "specialised" arm, in the JSON
and the note); and a transformer encoder layer run at 18 sequence lengths (one call at
each per sample), compiled with ``dynamic=None`` (symbolic from the second length) and
specialised.  The note gives symbolic / specialised time and how many compiles each took
(the layer's also the seconds each spent compiling); "not symbolic" says the program
stayed specialised (and why, from cache_info).  The last row is a symbolic INT argument
(NOTE (int arguments)): 12 steps of gradient accumulation, ``step(x, y, i)`` updating
every third step, compiled with ``dynamic=None`` (the step counter symbolic after it
changes) and ``dynamic=False`` (a program per ``i``); its note gives each arm's compiles
(their seconds say little: both arms compile the same kernels, and the second finds them
in the kernel cache)."""
from __future__ import annotations

import warnings

import numpy as np

import tracegrad
import tracegrad.nn.functional as F

from .harness import Config, Row, close, measure, paired_ratio
from .wl_elementwise import gelu
from .wl_seed_mlp import D_IN, D_OUT, H, LR, loss_fn

NAME = "symbolic"


def softmax(x):
    return F.softmax(x, dim=-1)


def _seed_forward(w1, w2):
    def forward(x):
        return x.mm(w1).clamp(min=0).mm(w2)
    return forward


def _what(info) -> str:
    return ("s0" if any(s.startswith("s0") for s in info.symbolic)
            else "; ".join(info.symbolic) or "not symbolic")


def _ratio(row: Row) -> float:
    """symbolic / specialised time: paired per repetition (``harness.paired_ratio``)."""
    return paired_ratio(row.times["compiled"], row.times["specialised"])


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
    ratio = _ratio(row)
    row.note = (f"symbolic/specialised {ratio:.2f}; compiles: symbolic {info.misses}, "
                f"specialised {specialised.cache_info().misses}; {_what(info)}")
    return row


def _seed_step(dynamic, w1: np.ndarray, w2: np.ndarray):
    """The seed network's whole SGD step (wl_seed_mlp.whole_step), on its own weights."""
    params = [tracegrad.from_numpy(w.copy()).requires_grad_() for w in (w1, w2)]
    opt = tracegrad.optim.SGD(params, lr=LR)

    @tracegrad.compile(fullgraph=True, dynamic=dynamic)
    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(x, y, *params)
        loss.backward()
        opt.step()
        return loss
    return step, params


def _seed_step_row(cfg: Config, rng, batch: int) -> Row:
    f32 = np.float32
    w1 = rng.standard_normal((D_IN, H), dtype=f32) * f32(0.05)
    w2 = rng.standard_normal((H, D_OUT), dtype=f32) * f32(0.05)
    x, y = (tracegrad.from_numpy(rng.standard_normal((batch, d), dtype=f32))
            for d in (D_IN, D_OUT))
    ox, oy = (tracegrad.from_numpy(rng.standard_normal((batch // 2 + 3, d), dtype=f32))
              for d in (D_IN, D_OUT))
    row = Row(NAME, "seed whole step s0", f"{batch}x{D_IN}", "us")
    symbolic, sym_params = _seed_step(True, w1, w2)
    specialised, spec_params = _seed_step(False, w1, w2)
    eager = _seed_step(False, w1, w2)[0].fn   # the same step, not compiled
    symbolic(ox, oy)     # the symbolic program is made at another size,
    specialised(ox, oy)  # and both arms take the same first step there
    row.correct = close(symbolic(x, y).item(), specialised(x, y).item(), 1e-4) and all(
        close(a.detach().numpy(), b.detach().numpy(), 1e-4)
        for a, b in zip(sym_params, spec_params))
    row.times = measure({"eager": lambda: eager(x, y), "compiled": lambda: symbolic(x, y),
                         "specialised": lambda: specialised(x, y)}, cfg)
    info = symbolic.cache_info()
    ratio = _ratio(row)
    row.note = (f"symbolic/specialised {ratio:.2f}; compiles: symbolic {info.misses}, "
                f"specialised {specialised.cache_info().misses}; {_what(info)}")
    return row


def _transformer_row(cfg: Config, rng) -> Row:
    """A TransformerEncoderLayer over 18 sequence lengths: one call at each per sample."""
    width, heads, batch = cfg.pick((64, 4, 8), (32, 4, 4), (16, 2, 2))
    lengths = [int(t) for t in cfg.pick(range(40, 58), range(20, 38), range(3, 21))]
    tracegrad.manual_seed(0)
    layer = tracegrad.nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width,
                                                 dropout=0.0, batch_first=True)
    xs = [tracegrad.from_numpy(rng.standard_normal((batch, t, width), dtype=np.float32))
          for t in lengths]
    row = Row(NAME, "transformer layer, 18 lengths", f"{batch}x[{lengths[0]}..{lengths[-1]}]"
              f"x{width}", "ms")
    symbolic = tracegrad.compile(layer)
    specialised = tracegrad.compile(layer, dynamic=False)

    def run(f):
        def all_lengths():
            with tracegrad.no_grad():
                return [f(x) for x in xs]
        return all_lengths
    row.correct = all(close(a.numpy(), b.numpy(), 1e-4) for a, b in
                      zip(run(symbolic)(), run(layer)()))
    row.times = measure({"eager": run(layer), "compiled": run(symbolic),
                         "specialised": run(specialised)}, cfg)
    info, spec = symbolic.cache_info(), specialised.cache_info()
    ratio = _ratio(row)
    row.compile_cold = info.compile_seconds
    row.note = (f"symbolic/specialised {ratio:.2f}; compiles: symbolic {info.misses} "
                f"({info.compile_seconds:.2f} s), specialised {spec.misses} "
                f"({spec.compile_seconds:.2f} s); {_what(info)}")
    return row


def _accumulation_row(cfg: Config, rng) -> Row:
    """Gradient accumulation over 12 steps with a step counter argument, each arm on its
    own copy of the model; the time is per 12 steps."""
    k, steps = 3, 12
    batch, width = cfg.pick((64, 256), (32, 128), (8, 16))
    f32 = np.float32
    xs = [tracegrad.from_numpy(rng.standard_normal((batch, width), dtype=f32))
          for _ in range(steps)]
    ys = [tracegrad.from_numpy(rng.integers(0, 10, batch)) for _ in range(steps)]

    def arm(dynamic):
        tracegrad.manual_seed(0)
        model = tracegrad.nn.Sequential(tracegrad.nn.Linear(width, width),
                                        tracegrad.nn.ReLU(), tracegrad.nn.Linear(width, 10))
        opt = tracegrad.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step(x, y, i):
            loss = F.cross_entropy(model(x), y) / k
            loss.backward()
            if (i + 1) % k == 0:
                opt.step()
                opt.zero_grad(set_to_none=False)
            return loss
        fn = step if dynamic == "eager" else tracegrad.compile(step, dynamic=dynamic)

        def twelve_steps():
            return [fn(x, y, i) for i, (x, y) in enumerate(zip(xs, ys))]
        return fn, twelve_steps, model

    row = Row(NAME, "grad accumulation, int step", f"12x{batch}x{width}", "ms")
    arms = {name: arm(d) for name, d in (("eager", "eager"), ("compiled", None),
                                         ("specialised", False))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # (12 signatures: the point)
        losses = {}
        for name, (_, twelve, _) in arms.items():
            losses[name] = [float(v) for v in twelve()]
        compiles = {name: fn.cache_info().misses for name, (fn, _, _) in arms.items()
                    if name != "eager"}
        row.correct = close(np.array(losses["compiled"]), np.array(losses["eager"]), 1e-4) \
            and all(close(a.detach().numpy(), b.detach().numpy(), 1e-4) for a, b in zip(
                arms["compiled"][2].parameters(), arms["eager"][2].parameters()))
        row.times = measure({name: twelve for name, (_, twelve, _) in arms.items()}, cfg)
    info, spec = arms["compiled"][0].cache_info(), arms["specialised"][0].cache_info()
    ratio = _ratio(row)
    # (the timed repeats trace once or twice more: their first step finds .grad set)
    row.note = (f"symbolic/specialised {ratio:.2f}; compiles in the first 12 steps: symbolic "
                f"{compiles['compiled']}, specialised {compiles['specialised']}; after the "
                f"timed repeats {info.misses} and {spec.misses}")
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
        _seed_step_row(cfg, rng, batch),
        _transformer_row(cfg, rng),
        _accumulation_row(cfg, rng),
    ]
