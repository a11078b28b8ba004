"""Hypothesis: random graphs of elementwise, broadcast, view and reduction ops through the
real ``tracegrad.compile`` frontend; compiled equals eager, values and gradients.

A program is drawn op by op: each op reads the newest value or an earlier one (so values
get several readers, which is what fusion has to get right), and binary ops broadcast
against an earlier value or a fresh input whose shape drops or shrinks dims to 1. Shapes
have rank 0 to 3 with sizes 1 to 4. Views include negative-step slices, permutes,
reshapes, expands and pads (negative pads crop). One or two values are returned.

Tolerance: float32 rtol 1e-5 plus an absolute 1e-6 times the largest eager magnitude of
that result (a reassociated sum errs relative to the sum of |terms|, not to the result).
"""
from __future__ import annotations

import warnings

import numpy as np
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import tracegrad as torch
import tracegrad.nn.functional as F

SIZES = st.integers(1, 4)
SHAPES = st.lists(SIZES, min_size=0, max_size=3).map(tuple)

UNARY = {
    "exp": lambda x: (x * 0.5).exp(),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "neg": lambda x: -x,
    "abs": lambda x: x.abs(),
    "sin": lambda x: x.sin(),
    "relu": torch.relu,
    "square": lambda x: x * x,
    "sqrt": lambda x: (x.abs() + 1).sqrt(),
    "log": lambda x: (x.abs() + 1).log(),
    "where": lambda x: torch.where(x > 0, x, x * 0.1),
    "mask": lambda x: (x < 0.3).float() * x,
    "scalar": lambda x: x * 1.5 - 0.25,
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b.abs() + 1),
    "maximum": torch.maximum,
    "minimum": torch.minimum,
}


def _broadcastable(draw, shape):
    """A shape that broadcasts against ``shape``: some leading dims dropped, some set to 1."""
    drop = draw(st.integers(0, len(shape)))
    return tuple(1 if draw(st.booleans()) else n for n in shape[drop:])


def _view(draw, shape):
    """(label, fn) of one movement op valid for ``shape``."""
    nd = len(shape)
    kinds = ["reshape_flat", "unsqueeze_expand"]
    if nd >= 1:
        kinds += ["slice", "flip", "pad", "expand_ones"]
    if nd >= 2:
        kinds += ["permute", "merge"]
    kind = draw(st.sampled_from(kinds))
    if kind == "reshape_flat":
        return "reshape(-1)", lambda x: x.reshape(-1)
    if kind == "unsqueeze_expand":
        d = draw(st.integers(0, nd))
        k = draw(st.integers(1, 3))
        new = shape[:d] + (k,) + shape[d:]
        return f"unsqueeze({d}).expand{new}", lambda x: x.unsqueeze(d).expand(*new)
    if kind == "expand_ones":
        new = tuple(draw(st.integers(1, 3)) if n == 1 else n for n in shape)
        return f"expand{new}", lambda x: x.expand(*new)
    if kind == "slice":
        index = []
        for n in shape:
            step = draw(st.sampled_from([1, 2, -1, -2]))
            if step > 0:
                start = draw(st.integers(0, n - 1))
                stop = draw(st.integers(start + 1, n))
            else:
                start = draw(st.integers(0, n - 1))
                stop = draw(st.integers(-1, start - 1))
                stop = None if stop < 0 else stop
            index.append(slice(start, stop, step))
        index = tuple(index)
        return f"[{index}]", lambda x: x[index]
    if kind == "flip":
        dims = tuple(sorted(set(draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd)))))
        return f"flip{dims}", lambda x: x.flip(dims)
    if kind == "pad":
        last = min(nd, draw(st.integers(1, 2)))
        pads = []
        for n in shape[::-1][:last]:  # F.pad: last dim first
            lo = draw(st.integers(-(n - 1) // 2, 2))
            hi = draw(st.integers(-(n - 1 - max(-lo, 0)) // 2 if n > 1 else 0, 2))
            pads += [lo, hi]
        value = draw(st.sampled_from([0.0, 0.5]))
        return f"pad{pads},{value}", lambda x: F.pad(x, pads, value=value)
    if kind == "permute":
        perm = tuple(draw(st.permutations(range(nd))))
        return f"permute{perm}", lambda x: x.permute(*perm)
    d = draw(st.integers(0, nd - 2))  # merge
    new = shape[:d] + (shape[d] * shape[d + 1],) + shape[d + 2:]
    return f"reshape{new}", lambda x: x.reshape(*new)


def _reduction(draw, shape):
    nd = len(shape)
    kind = draw(st.sampled_from(["sum", "mean", "amax", "amin", "softmax", "log_softmax"]))
    if nd == 0:
        return f"{kind}()", (lambda x: getattr(x, kind)() if kind in ("sum", "mean") else x * 2)
    if kind in ("softmax", "log_softmax"):
        d = draw(st.integers(0, nd - 1))
        return f"{kind}({d})", lambda x: getattr(torch, kind)(x, d)
    dims = tuple(sorted(set(draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd)))))
    keep = draw(st.booleans())
    return f"{kind}({dims}, keepdim={keep})", lambda x: getattr(x, kind)(dims, keepdim=keep)


@st.composite
def programs(draw):
    """(input shapes, steps, outputs): step = (label, fn, operand value indices)."""
    inputs = [draw(SHAPES)]
    shapes = [inputs[0]]            # shape of every value: inputs first, then step results
    values_of = [("in", 0)]
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        src = draw(st.one_of(st.just(len(shapes) - 1), st.integers(0, len(shapes) - 1)))
        shape = shapes[src]
        kind = draw(st.sampled_from(["unary", "binary", "view", "view", "reduce"]))
        operands = [src]
        if kind == "unary":
            name = draw(st.sampled_from(sorted(UNARY)))
            label, fn = name, UNARY[name]
        elif kind == "binary":
            name = draw(st.sampled_from(sorted(BINARY)))
            label, fn = name, BINARY[name]
            others = [k for k, s in enumerate(shapes) if _broadcasts(s, shape)]
            if others and draw(st.booleans()):
                operands.append(draw(st.sampled_from(others)))
            else:
                inputs.append(_broadcastable(draw, shape))
                shapes.append(inputs[-1])
                values_of.append(("in", len(inputs) - 1))
                operands.append(len(shapes) - 1)
            if draw(st.booleans()):
                operands.reverse()
        elif kind == "view":
            label, fn = _view(draw, shape)
        else:
            label, fn = _reduction(draw, shape)
        out = fn(*[torch.zeros(*shapes[k]) for k in operands])
        steps.append((label, fn, operands))
        shapes.append(tuple(out.shape))
        values_of.append(("step", len(steps) - 1))
    outputs = [len(shapes) - 1]
    if draw(st.booleans()):
        outputs.append(draw(st.integers(0, len(shapes) - 1)))
    return inputs, values_of, steps, outputs


def _broadcasts(a, b) -> bool:
    try:
        return np.broadcast_shapes(a, b) == tuple(b)
    except ValueError:
        return False


def _runner(values_of, steps, outputs):
    def fn(*xs):
        vals = []
        for kind, k in values_of:
            if kind == "in":
                vals.append(xs[k])
            else:
                _, f, operands = steps[k]
                vals.append(f(*[vals[i] for i in operands]))
        return tuple(vals[k] for k in outputs)
    return fn


def _close(got, want, what):
    g, w = got.detach().numpy(), want.detach().numpy()
    assert g.shape == w.shape and g.dtype == w.dtype, (what, g.shape, w.shape, g.dtype, w.dtype)
    scale = max(1.0, float(np.max(np.abs(w)))) if w.size else 1.0
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6 * scale, err_msg=what)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs(), st.integers(0, 2**31 - 1))
def test_random_graph_compiled_equals_eager(program, seed):
    inputs, values_of, steps, outputs = program
    note("inputs: " + ", ".join(str(s) for s in inputs))
    for label, _, operands in steps:
        note(f"  {label}{tuple(operands)}")
    note(f"outputs: {outputs}")
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(rng.standard_normal(s), dtype=np.float32) for s in inputs]
    xs = [torch.from_numpy(a.copy()).requires_grad_() for a in arrays]
    xs_eager = [torch.from_numpy(a.copy()).requires_grad_() for a in arrays]
    fn = _runner(values_of, steps, outputs)
    compiled = torch.compile(fn, fullgraph=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = compiled(*xs)
    want = fn(*xs_eager)
    for k, (g, w) in enumerate(zip(got, want)):
        _close(g, w, f"output {k}")
    weights = [torch.from_numpy(np.asarray(rng.uniform(0.5, 1.5, tuple(w.shape)), np.float32))
               for w in want]
    sum((g * w).sum() for g, w in zip(got, weights)).backward()
    sum((e * w).sum() for e, w in zip(want, weights)).backward()
    for k, (x, xe) in enumerate(zip(xs, xs_eager)):
        assert (x.grad is None) == (xe.grad is None), k
        if x.grad is not None:
            _close(x.grad, xe.grad, f"gradient of input {k}")
