"""Hypothesis: random small training-shaped programs (matmuls through transposes and
slices, in-place ops on views of intermediates, row reductions, softmax, cross_entropy
with ignore_index, weights and label smoothing, conv and pooling) compiled with each
``dynamic`` mode and called at three batch sizes, against eager: results, the gradients
of every argument, and results held from earlier calls (replays recycle buffers)."""
from __future__ import annotations

import warnings

import numpy as np
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import tracegrad as tg
import tracegrad.nn.functional as F

C, D = 6, 5   # feature sizes; the batch size varies per call

# each stage maps (h: (B, C) float32, w: (C, D), t: (B,) int64 targets) -> (B, C) float32
STAGES = {
    "matmul": lambda h, w, t: (h @ w) @ w.t(),
    "matmul_t": lambda h, w, t: (w.t() @ h.t()).t() @ w.t(),
    "tanh": lambda h, w, t: tg.tanh(h),
    "relu_scale": lambda h, w, t: F.relu(h) * 1.5 - 0.25,
    "softmax": lambda h, w, t: F.softmax(h, 1),
    "log_softmax": lambda h, w, t: F.log_softmax(h, -1),
    "layer_norm": lambda h, w, t: F.layer_norm(h, (C,)),
    "row_center": lambda h, w, t: h - h.mean(1, keepdim=True),
    "row_max": lambda h, w, t: h - h.amax(1, keepdim=True),
    "slice_cat": lambda h, w, t: tg.cat([h[:, 2:], h[:, :2] * 2], 1),
    "flip_cols": lambda h, w, t: h[:, ::-1] + h,
    "inplace_slice": lambda h, w, t: _inplace_slice(h),
    "inplace_col": lambda h, w, t: _inplace_column(h),
    "masked_fill": lambda h, w, t: h.masked_fill(h > 0.5, -1.0),
    "where": lambda h, w, t: tg.where(h > 0, h, h * 0.1),
    "conv1d": lambda h, w, t: F.conv1d(h.unsqueeze(1), w[:3, :1].t().unsqueeze(1),
                                       padding=1).squeeze(1),
    "max_pool": lambda h, w, t: F.max_pool1d(h.unsqueeze(1), 3, stride=1,
                                             padding=1).squeeze(1),
    "avg_pool": lambda h, w, t: F.avg_pool1d(h.unsqueeze(1), 3, stride=1, padding=1,
                                             count_include_pad=False).squeeze(1),
}


# NOTE: an in-place op on a view (y[:, 1:4].mul_(2)) makes the trace fall back to eager;
# writes by item assignment are traced
def _inplace_slice(h):
    y = h * 1.0
    y[:, 1:4] = y[:, 1:4] * -2.0
    return y


def _inplace_column(h):
    y = h.clone()
    y[:, 0] = y[:, 0] + 3.0
    return y


def _loss(kind, h, t, weight):
    if kind == "sum":
        return h.sum()
    if kind == "mean_sq":
        return (h * h).mean()
    ignore, smoothing, reduction, use_weight = kind
    return F.cross_entropy(h, t, weight=weight if use_weight else None, ignore_index=ignore,
                           label_smoothing=smoothing, reduction=reduction)


@st.composite
def programs(draw):
    stages = draw(st.lists(st.sampled_from(sorted(STAGES)), min_size=1, max_size=4))
    loss = draw(st.one_of(
        st.sampled_from(["sum", "mean_sq"]),
        st.tuples(st.sampled_from([-100, 0, 3]), st.sampled_from([0.0, 0.2]),
                  st.sampled_from(["mean", "sum", "none"]), st.booleans())))
    dynamic = draw(st.sampled_from([False, True, None]))
    batches = draw(st.lists(st.integers(1, 7), min_size=3, max_size=3))
    return stages, loss, dynamic, batches


def _run(fn, x, w, t):
    xs = tg.tensor(x, requires_grad=True)
    ws = tg.tensor(w, requires_grad=True)
    out, h = fn(xs, ws, tg.tensor(t))
    scale = np.linspace(-1.0, 1.0, out.numel(), dtype=np.float32).reshape(out.shape)
    (out * tg.tensor(scale)).sum().backward()
    return out, h, xs.grad, ws.grad


def _close(got, want, what):
    finite = np.abs(want[np.isfinite(want)])
    scale = float(finite.max()) if finite.size else 0.0
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5 * max(scale, 1.0),
                               err_msg=what)


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.integers(0, 2**31 - 1))
def test_random_program_compiled_equals_eager(program, seed):
    stages, loss, dynamic, batches = program
    note(f"stages={stages} loss={loss} dynamic={dynamic} batches={batches}")
    weight = tg.tensor(np.linspace(0.5, 2.0, C, dtype=np.float32))

    def fn(x, w, t):
        h = x
        for name in stages:
            h = STAGES[name](h, w, t)
        return _loss(loss, h, t, weight), h

    compiled = tg.compile(fn, dynamic=dynamic)
    rng = np.random.default_rng(seed)
    held = []
    for b in batches:
        x = rng.standard_normal((b, C)).astype(np.float32)
        w = rng.standard_normal((C, D)).astype(np.float32) * 0.5
        t = rng.integers(0, C, b)
        want = _run(fn, x, w, t)
        with warnings.catch_warnings():
            warnings.simplefilter("error")   # a fallback to eager would compare eager twice
            got = _run(compiled, x, w, t)
        for k, what in enumerate(("loss", "h", "x.grad", "w.grad")):
            g, e = got[k], want[k]
            assert (g is None) == (e is None), what   # an unused w gets no gradient
            if e is not None:
                _close(g.detach().numpy(), e.detach().numpy(), f"{what} at batch {b}")
        held.append((got[0], got[0].detach().numpy().copy()))
    for out, value in held:   # replays must not reuse a buffer the caller still holds
        np.testing.assert_array_equal(out.detach().numpy(), value)
