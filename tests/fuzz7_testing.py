"""Shared by tests/test_fuzz7_*: seeded random programs the way users write them, called
repeatedly through ``tracegrad.compile`` with what changes between calls (batch sizes
including 0 and 1, argument layouts, dtypes, Python int and float arguments, and the
state the function reads: a config object's attributes, a dict, a list, a module global),
and the comparison of each compiled call with eager run on copies of its arguments.

A program is a list of step names over ``h`` (a (B, C) float tensor); every step keeps
that shape so any sequence composes. The same program text runs on tracegrad and on
PyTorch (``m`` is either module) for a third opinion on shapes, dtypes and errors."""
from __future__ import annotations

import copy
import math
import warnings

import numpy as np

from tracegrad._errors import TraceError

GLOBAL_K = 1.5   # a module global the programs read; tests rebind it between calls


class Config:
    """What a user's function reads besides its arguments: attributes, a dict, a list."""

    def __init__(self, rng):
        self.scale = 2.0
        self.d = {"bias": 0.5, "flag": True, "thr": 0.0, "fill": -1.0}
        self.lst = [1.0, 0.25]
        self.ignore = -100
        self.rng = rng
        self.buf = None
        self.torch_buf = None

    def mutate(self):
        """Change one piece of state the way a user's loop would."""
        r = self.rng
        kind = int(r.integers(0, 9))
        if kind == 0:
            self.scale = [2, 2.0, -0.5, 3, 0.0, -0.0][int(r.integers(0, 6))]
        elif kind == 1:
            self.d["bias"] = [0.5, 1, -2.0, 0, float("inf")][int(r.integers(0, 5))]
        elif kind == 2:
            self.d["flag"] = not self.d["flag"]
        elif kind == 3:
            self.d["thr"] = [0.0, 0.5, -1, float("nan")][int(r.integers(0, 4))]
        elif kind == 4:
            self.lst[int(r.integers(0, 2))] = [1.0, 2, -0.75, 0.0][int(r.integers(0, 4))]
        elif kind == 5:
            self.lst.append(0.5) if len(self.lst) < 4 else self.lst.pop()
        elif kind == 7:
            self.ignore = [-100, 0, 1][int(r.integers(0, 3))]
        elif kind == 8:
            return "buffer"   # the caller replaces or edits the buffer tensor
        else:
            global GLOBAL_K
            GLOBAL_K = [1.5, 2, -1.0, 0.5][int(r.integers(0, 4))]


def _roll(m, h, n):
    c = h.shape[-1]
    k = n % (c + 1)
    return m.cat([h[:, k:], h[:, :k]], -1)


def _inplace_col(m, h, s):
    h = h.clone()
    if h.shape[-1]:
        h[:, 0] += s
    return h


def _inplace_mul(m, h, cfg):
    h = h.clone()
    h.mul_(cfg.scale)
    h.add_(1)
    return h


def _scale_prefix(m, h, n):
    h = h.clone()
    h[:, :n] = h[:, :n] * 2   # NOTE: n < 0 and n > C are legal slice bounds
    return h


def _branch_rows(m, h):
    if h.shape[0] > 4:
        return h * 2
    return h - 1 if len(h) else h + 3


def _branch_n(m, h, n, s):
    if n > 2:
        h = h * 0.5
    for _ in range(n % 3):
        h = h + 0.25
    # NOTE: not "* (s > 0)": fuzz7-float-argument-weak (tests/test_fuzz7_float_arguments.py)
    return h * (n / 3) + h * (n // 2) + (n % 3) + math.sqrt(abs(n)) * (1 if n > 0 else -1)


def _buffer(m, h, c):
    return h + c.buf[: h.shape[-1]] if c.buf.shape[0] >= h.shape[-1] else h * c.buf.sum()


def _reshape_flat(m, h):
    return h.reshape(-1).reshape(h.shape[0], -1) if h.shape[0] else h.reshape(0, -1)


def _rows_n(m, h, n):
    h = h.clone()
    h[n % 2::2] = -h[n % 2::2]
    return h


def _cross_entropy(m, h, n, c):
    b, k = h.shape
    t = (m.arange(b) * (n + 1)) % k
    loss = m.nn.functional.cross_entropy(h, t, ignore_index=c.ignore, reduction="sum")
    return h + loss


def _gram(m, h):
    return h @ (h.t() @ h) * 0.01


# each step: (m, h, x, y, n, s, cfg) -> same-shaped float tensor
STEPS = {
    "scale_s": lambda m, h, x, y, n, s, c: h * s,
    "add_n": lambda m, h, x, y, n, s, c: h + n,
    "div_n": lambda m, h, x, y, n, s, c: h / n,
    "rsub_n": lambda m, h, x, y, n, s, c: n - h,
    "pow_n": lambda m, h, x, y, n, s, c: h ** (n % 3),
    "cfg_scale": lambda m, h, x, y, n, s, c: h * c.scale,
    "cfg_bias": lambda m, h, x, y, n, s, c: h + c.d["bias"],
    "cfg_flag": lambda m, h, x, y, n, s, c: m.relu(h) if c.d["flag"] else h.abs() - 1,
    "cfg_list": lambda m, h, x, y, n, s, c: h * c.lst[0] - c.lst[-1] * len(c.lst),
    "cfg_global": lambda m, h, x, y, n, s, c: h * GLOBAL_K,
    "masked_fill": lambda m, h, x, y, n, s, c: h.masked_fill(h < c.d["thr"], c.d["fill"]),
    "softmax": lambda m, h, x, y, n, s, c: m.softmax(h, -1),
    "log_softmax": lambda m, h, x, y, n, s, c: m.log_softmax(h, -1),
    "layer_norm": lambda m, h, x, y, n, s, c: m.nn.functional.layer_norm(h, (h.shape[-1],)),
    "row_center": lambda m, h, x, y, n, s, c: h - h.mean(-1, keepdim=True),
    "col_center": lambda m, h, x, y, n, s, c: h - h.mean(0, keepdim=True),
    "col_max": lambda m, h, x, y, n, s, c: h - h.amax(0, keepdim=True),
    "row_max": lambda m, h, x, y, n, s, c: h - h.max(-1, keepdim=True)[0],
    "row_var": lambda m, h, x, y, n, s, c: h * h.var(-1, keepdim=True),
    "col_sum": lambda m, h, x, y, n, s, c: h + h.sum(0),
    "cumsum": lambda m, h, x, y, n, s, c: h.cumsum(-1),
    "flip": lambda m, h, x, y, n, s, c: h.flip(-1) + h,
    "where_y": lambda m, h, x, y, n, s, c: m.where(h > y, h, y),
    "mul_y": lambda m, h, x, y, n, s, c: h * y,
    "index_n": lambda m, h, x, y, n, s, c: h + h[:, n % h.shape[-1]].unsqueeze(-1),
    "roll_n": lambda m, h, x, y, n, s, c: _roll(m, h, n),
    "exp": lambda m, h, x, y, n, s, c: m.exp(h.clamp(-30, 30)),
    "tanh": lambda m, h, x, y, n, s, c: m.tanh(h),
    "sigmoid": lambda m, h, x, y, n, s, c: m.sigmoid(h),
    # NOTE: float64 sin of huge arguments is a known difference (trig64): float32 only
    "sin": lambda m, h, x, y, n, s, c: m.sin(h if h.dtype == m.float32 else h.clamp(-1e5, 1e5)),
    "gram": lambda m, h, x, y, n, s, c: _gram(m, h),
    "int_mix": lambda m, h, x, y, n, s, c: h + (h > 0).int() * n,
    "bool_mix": lambda m, h, x, y, n, s, c: h * (h != 0) + (h < 1),
    "double_back": lambda m, h, x, y, n, s, c: (h.double() * s).to(h.dtype),
    "inplace_col": lambda m, h, x, y, n, s, c: _inplace_col(m, h, s),
    "inplace_mul": lambda m, h, x, y, n, s, c: _inplace_mul(m, h, c),
    "expand_first": lambda m, h, x, y, n, s, c: h + h[:1].expand(h.shape[0], h.shape[1]),
    "add_x": lambda m, h, x, y, n, s, c: h + x,
    "len_div": lambda m, h, x, y, n, s, c: h / (len(h) + 1) + h.shape[-1],
    "size_mul": lambda m, h, x, y, n, s, c: h * h.size(0) - h.numel(),
    "floordiv_s": lambda m, h, x, y, n, s, c: h // 0.75,
    "clamp_y": lambda m, h, x, y, n, s, c: h.clamp(min=-1.0, max=2.0) + y.abs(),
    "sum_int": lambda m, h, x, y, n, s, c: h + (h > 0).sum(-1, keepdim=True),
    "scale_prefix": lambda m, h, x, y, n, s, c: _scale_prefix(m, h, n),
    "branch_rows": lambda m, h, x, y, n, s, c: _branch_rows(m, h),
    "branch_n": lambda m, h, x, y, n, s, c: _branch_n(m, h, n, s),
    "buffer": lambda m, h, x, y, n, s, c: _buffer(m, h, c),
    "reshape_flat": lambda m, h, x, y, n, s, c: _reshape_flat(m, h),
    "rows_n": lambda m, h, x, y, n, s, c: _rows_n(m, h, n),
    "arange_n": lambda m, h, x, y, n, s, c: h + m.arange(h.shape[-1]) * n,
    "min_builtin": lambda m, h, x, y, n, s, c: h * min(n, h.shape[-1]) + max(s, n),
    "view_t": lambda m, h, x, y, n, s, c: h.t().contiguous().t() * 3,
    "as_strided": lambda m, h, x, y, n, s, c: h.contiguous().as_strided(h.shape, (h.shape[1], 1)),
    "unfold": lambda m, h, x, y, n, s, c: h.unfold(1, 1, 1).squeeze(-1) + 1,
    "cross_entropy": lambda m, h, x, y, n, s, c: _cross_entropy(m, h, n, c),
    "mean_keep0": lambda m, h, x, y, n, s, c: h * h.abs().mean((0, 1), keepdim=True),
}

STEP_NAMES = tuple(STEPS)
BATCHES = (0, 1, 2, 3, 5, 8, 16, 17)
COLUMNS = (1, 4, 7, 15, 17)
LAYOUTS = ("contiguous", "transposed", "strided", "expanded", "offset", "negative")
INTS = (0, 1, 2, 3, -1, 5, 7, -4)
# NOTE: not inf: a cancellation that rounds to 0 eagerly and to 1e-7 compiled (a column
# minus its mean over 17 equal rows) times inf is NaN against inf; 1e30 keeps the scale
FLOATS = (0.5, 2.0, -0.0, 1e-3, -3.25, 1.0, 1e30)


STATE_STEPS = ("cfg_scale", "cfg_bias", "cfg_flag", "cfg_list", "cfg_global", "masked_fill",
               "buffer", "cross_entropy", "inplace_mul")
INT_STEPS = ("add_n", "div_n", "rsub_n", "int_mix", "branch_n", "arange_n", "index_n")


def random_program(rng, n_steps: int) -> list[str]:
    """``n_steps`` random steps; half the programs also read state and an int argument,
    where guards and symbolic ints meet."""
    steps = [STEP_NAMES[int(i)] for i in rng.integers(0, len(STEP_NAMES), n_steps)]
    if rng.random() < 0.5:
        for extra in (STATE_STEPS, INT_STEPS):
            steps.insert(int(rng.integers(0, len(steps) + 1)), str(rng.choice(extra)))
    return steps


def run(m, steps, x, y, n, s, cfg):
    """The user's function, written once for either module."""
    h = x * 1.0
    for name in steps:
        h = STEPS[name](m, h, x, y, n, s, cfg)
    return h, h.sum(0)


def random_base(rng, shape, dtype, layout) -> np.ndarray:
    """The array behind an argument of ``shape`` in ``layout`` (see ``view``): ordinary
    values with some special ones."""
    b, c = shape
    base_shape = {"transposed": (c, b), "strided": (b, 2 * c), "expanded": (1, c),
                  "offset": (b + 1, c)}.get(layout, (b, c))
    vals = np.round(rng.standard_normal(base_shape) * 2, 2)
    specials = rng.random(vals.shape) < 0.05
    vals[specials] = rng.choice([np.inf, -np.inf, np.nan, -0.0, 0.0], int(specials.sum()))
    return vals.astype(dtype)


def view(t, shape, layout):
    """``t`` (a tensor of either module, made from ``random_base``) seen as ``shape``."""
    if layout == "transposed":
        return t.t()
    if layout == "strided":
        return t[:, ::2]
    if layout == "expanded":
        return t.expand(*shape)
    if layout == "offset":
        return t[1:]
    if layout == "negative":
        return t.flip(0)
    return t


def describe(seed, steps, calls) -> str:
    lines = [f"seed {seed}: steps {steps}"]
    lines += [f"  call {i}: {c}" for i, c in enumerate(calls)]
    return "\n".join(lines)


def same_values(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> str | None:
    """None where ``got`` matches ``want`` (dtype, shape, NaN and inf positions, values
    within the tolerances), else what differs."""
    if got.dtype != want.dtype or got.shape != want.shape:
        return f"dtype/shape {got.dtype}{got.shape} vs {want.dtype}{want.shape}"
    if got.dtype.kind in "biu":
        return None if np.array_equal(got, want) else "integer values differ"
    gn, wn = np.isnan(got), np.isnan(want)
    if not np.array_equal(gn, wn):
        return f"NaN positions differ at {np.argwhere(gn != wn)[:3].tolist()}"
    gi, wi = np.isinf(got), np.isinf(want)
    if not np.array_equal(gi, wi) or not np.array_equal(got[gi], want[wi]):
        return f"inf positions differ at {np.argwhere((gi != wi) | (got != want) & gi)[:3].tolist()}"
    fin = np.isfinite(want)
    scale = float(np.abs(want[fin]).max()) if fin.any() else 0.0
    with np.errstate(over="ignore"):   # (1e30 scales: the tolerance itself may overflow)
        bad = ~np.isclose(got[fin], want[fin], rtol=rtol, atol=atol * max(scale, 1.0))
    if bad.any():
        i = int(np.argmax(bad))
        return f"values differ: {got[fin][i]!r} vs {want[fin][i]!r} ({int(bad.sum())} of {bad.size})"
    return None


# -- one seed: a compiled function called repeatedly, each call against eager -------------

def _outcome(fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    except Exception as e:   # compared with eager's (and PyTorch's) own outcome
        return e


def _numpy(t) -> np.ndarray:
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _scale(m, steps, x, y, n, s, cfg) -> float:
    """The largest finite magnitude any step makes eagerly: a cancellation (a row minus its
    maximum) is judged against it, not against its own near-zero result."""
    big = float(np.abs(np.nan_to_num(_numpy(x), posinf=0, neginf=0)).max(initial=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = x * 1.0
        for name in steps:
            h = STEPS[name](m, h, x, y, n, s, cfg)
            v = _numpy(h)
            big = max(big, float(np.abs(v[np.isfinite(v)]).max(initial=0)))
    return big * max(x.shape[0], 1)


def _mutate(rng, tg, cfg):
    """Change the state the function reads, as a user's loop would."""
    if cfg.mutate() != "buffer":
        return
    kind = int(rng.integers(0, 4))
    if kind == 0:
        cfg.buf.add_(1.0)
    elif kind == 1:
        cfg.buf = tg.tensor(np.round(rng.standard_normal(int(rng.integers(1, 20))), 2)
                            .astype(np.float32))
    elif kind == 2:
        cfg.buf = cfg.buf.double()
    else:
        cfg.buf[::2] = -cfg.buf[::2]


def program_problems(seed: int, tg, torch, calls: int = 6) -> list[str]:
    """Run seed's program compiled ``calls`` times against eager (and eager against
    PyTorch); the differences found, each with the seed and every call so far."""
    rng = np.random.default_rng(seed)
    steps = random_program(rng, int(rng.integers(1, 6)))
    cfg = Config(rng)
    cfg.buf = tg.tensor(np.round(rng.standard_normal(17), 2).astype(np.float32))
    dynamic = (None, True, False)[int(rng.integers(0, 3))]
    fullgraph = bool(rng.integers(0, 2))
    vary_c, c = rng.random() < 0.3, int(rng.choice(COLUMNS))

    def fn(x, y, n, s):
        return run(tg, steps, x, y, n, s, cfg)
    compiled = tg.compile(fn, dynamic=dynamic, fullgraph=fullgraph)
    done, problems = [], []
    for call in range(calls):
        for _ in range(3 if call else 0):
            _mutate(rng, tg, cfg)
        c = int(rng.choice(COLUMNS)) if vary_c else c
        b, layout = int(rng.choice(BATCHES)), str(rng.choice(LAYOUTS))
        dtype = ("float32", "float64")[int(rng.random() < 0.25)]
        n, s, ys = int(rng.choice(INTS)), float(rng.choice(FLOATS)), int(rng.integers(0, 3))
        if call >= 2 and rng.random() < 0.7:
            # an earlier call's signature again, as epochs of full and short batches do
            old = done[int(rng.integers(0, min(len(done), 2)))]
            b, c, layout, dtype, n, s, ys = (old[k] for k in ("b", "c", "layout", "dtype",
                                                              "n", "s", "ys"))
        base = random_base(rng, (b, c), dtype, layout)
        y = np.round(rng.standard_normal([(c,), (1, c), (b, c)][ys]), 2).astype(dtype)
        marked = dynamic is not False and rng.random() < 0.2
        done.append(dict(b=b, c=c, layout=layout, dtype=dtype, ys=ys, n=n, s=s,
                         dynamic=dynamic, fullgraph=fullgraph, mark_dynamic=marked,
                         state=(cfg.scale, dict(cfg.d), list(cfg.lst), GLOBAL_K, cfg.ignore,
                                tuple(cfg.buf.shape), str(cfg.buf.dtype))))
        where = describe(seed, steps, done)
        x = view(tg.tensor(base.copy()), (b, c), layout)
        if marked:
            tg.compiler.mark_dynamic(x, 0)
        got = _outcome(lambda: compiled(x, tg.tensor(y), n, s))
        want = _outcome(lambda: fn(view(tg.tensor(base.copy()), (b, c), layout),
                                   tg.tensor(y), n, s))
        if torch is not None:
            problems += _against_torch(torch, cfg, steps, base, (b, c), layout, y, n, s,
                                       want, where)
        if isinstance(got, TraceError) and fullgraph and not isinstance(want, Exception):
            break   # what fullgraph cannot trace (x % n, max(s, n)) it refuses: no answer
        if isinstance(got, Exception) or isinstance(want, Exception):
            if isinstance(got, Exception) != isinstance(want, Exception):
                problems.append(f"compiled {got!r}, eager {want!r}\n{where}")
            continue
        float32 = dtype == "float32" or "buffer" in steps
        rtol, atol = (3e-5, 1e-6) if float32 else (1e-11, 1e-13)
        scale = _scale(tg, steps, x, tg.tensor(y), n, s, cfg)
        for k, (g, w) in enumerate(zip(got, want)):
            msg = same_values(_numpy(g), _numpy(w), rtol, atol * max(scale, 1.0))
            if msg:
                problems.append(f"output {k}: {msg}\n{where}")
        if problems:
            break
    return problems


def _against_torch(torch, cfg, steps, base, shape, layout, y, n, s, want, where):
    tcfg = copy.copy(cfg)
    tcfg.buf = torch.tensor(cfg.buf.numpy())
    x = view(torch.tensor(base.copy()), shape, layout)
    theirs = _outcome(lambda: run(torch, steps, x, torch.tensor(y), n, s, tcfg))
    if isinstance(theirs, Exception) or isinstance(want, Exception):
        if isinstance(theirs, Exception) != isinstance(want, Exception):
            return [f"eager {want!r}, torch {theirs!r}\n{where}"]
        return []
    for k, (g, w) in enumerate(zip(want, theirs)):
        g, w = _numpy(g), _numpy(w)
        if g.shape != w.shape or g.dtype != w.dtype:
            return [f"output {k}: eager {g.dtype}{g.shape}, torch {w.dtype}{w.shape}\n{where}"]
    return []


# -- gradients: the same programs, compiled with backward, at varying batch sizes ---------

# steps that write into a clone or divide by a constant floor: no gradient to compare there;
# and abs after a centred row: eagerly -1.1e-16, compiled 0, so abs' is -1 against 0 (a
# rounding tie at the kink, offline gradient seed 680)
NO_GRADIENT_STEPS = {"inplace_col", "inplace_mul", "scale_prefix", "rows_n", "floordiv_s",
                     "cross_entropy", "cfg_flag"}


def _gradients(fn, base, shape, layout, y, n, s, tg):
    xb = tg.tensor(base.copy(), requires_grad=True)
    yt = tg.tensor(y.copy(), requires_grad=True)
    out = fn(view(xb, shape, layout), yt, n, s)
    loss = (out[0] * 0.5).sum() + out[1].sum() * 0.25
    if not loss.requires_grad:
        return None
    loss.backward()
    # the loss is judged against the sum of magnitudes it adds up (a centred column sums
    # to 3e-5 compiled and -2e-4 eagerly: offline gradient seed 299)
    scale = float(np.nansum(np.abs(_numpy(out[0]))) + np.nansum(np.abs(_numpy(out[1]))))
    return [np.array([float(loss.item()), scale])] + [
        None if t.grad is None else t.grad.numpy() for t in (xb, yt)]


def gradient_problems(seed: int, tg, calls: int = 6) -> list[str]:
    """Seed's program (without in-place steps) compiled and differentiated ``calls`` times
    at varying batch sizes, layouts and state, each call's loss and the gradients of both
    arguments against eager's."""
    rng = np.random.default_rng(seed)
    steps = [s for s in random_program(rng, int(rng.integers(1, 5)))
             if s not in NO_GRADIENT_STEPS] or ["tanh"]
    cfg = Config(rng)
    cfg.buf = tg.tensor(np.round(rng.standard_normal(17), 2).astype(np.float32))
    dynamic = (None, True, False)[int(rng.integers(0, 3))]
    c = int(rng.choice(COLUMNS))

    def fn(x, y, n, s):
        return run(tg, steps, x, y, n, s, cfg)
    compiled, pool = tg.compile(fn, dynamic=dynamic), []
    for call in range(calls):
        for _ in range(2 if call else 0):
            _mutate(rng, tg, cfg)
        if call >= 2 and rng.random() < 0.6:
            b, layout, dtype, n, s = pool[int(rng.integers(0, 2))]
        else:
            b = int(rng.choice([1, 2, 3, 5, 8]))
            layout = str(rng.choice(["contiguous", "transposed", "strided", "offset"]))
            dtype = ("float32", "float64")[int(rng.random() < 0.3)]
            n, s = int(rng.choice(INTS)), float(rng.choice([0.5, 2.0, -3.25]))
        pool.append((b, layout, dtype, n, s))
        base = np.round(rng.standard_normal({"transposed": (c, b), "strided": (b, 2 * c),
                                             "offset": (b + 1, c)}.get(layout, (b, c))), 2)
        base, y = base.astype(dtype), np.round(rng.standard_normal(c), 2).astype(dtype)
        where = f"seed {seed}: steps {steps}, dynamic={dynamic}, calls {pool}"
        want = _outcome(lambda: _gradients(fn, base, (b, c), layout, y, n, s, tg))
        got = _outcome(lambda: _gradients(compiled, base, (b, c), layout, y, n, s, tg))
        if isinstance(want, Exception) or isinstance(got, Exception) or want is None:
            if type(want) is not type(got):
                return [f"eager {want!r}, compiled {got!r}\n{where}"]
            continue
        want_scale = want[0][1]
        if not np.isfinite(want[0][0]):
            continue   # an inf loss: its gradients are NaN up to the order of the sums
        tol = 1e-4 if dtype == "float32" or "buffer" in steps else 1e-9
        want[0], got[0] = want[0][:1], got[0][:1]
        for k, (w, g) in enumerate(zip(want, got)):
            w, g = np.asarray(w, dtype=float), np.asarray(g, dtype=float)
            fin = np.isfinite(w)
            scale = max(1.0, float(np.abs(w[fin]).max(initial=0)))
            if k == 0:
                scale = max(scale, float(np.nan_to_num(want_scale)))
            if not np.array_equal(fin, np.isfinite(g)) or not np.allclose(
                    g[fin], w[fin], rtol=tol, atol=tol * scale):
                return [f"{('loss', 'x.grad', 'y.grad')[k]} differs\n{where}"]
    return []
