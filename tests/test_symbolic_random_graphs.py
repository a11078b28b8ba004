"""Hypothesis: random graphs over a leading batch dimension, compiled with a symbolic size
(``dynamic=True``), specialised (``dynamic=False``) and eager, at several batch sizes:
symbolic == specialised == eager, values and gradients.

Every value has shape ``(B, *rest)``. Ops: the unary and binary ops of
``test_compile_random_graphs`` (binary partners broadcast as ``rest``, ``(1, *rest)`` or a
full ``(B, *rest)`` input), reductions over a non-batch dim or over the batch dim (mean,
unbiased var, softmax, log_softmax: kernel bodies that depend on the size and take it as a
parameter, NOTE (kernel parameters)), a round trip through a transpose of the batch dim
(strides that are multiples of it), permutes and slices of non-batch dims,
``reshape(x.shape[0], -1)`` and a matmul with a fixed weight; and steps that lean on
guards (NOTE (guards instead of a retrace) in tracegrad/compiler/symint.py): slices of
the batch dim (``x[1:] - x[:-1]``), a Python branch on a window of the batch size
through a float comparison (``lo + 0.5 < B < hi``), and a swap of row pairs through
``view(B // 2, 2, -1)`` taken at even sizes only (a residue guard).
"""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import tracegrad as torch
from test_compile_random_graphs import BINARY, UNARY, _close
from tracegrad.compiler import dynamic


@pytest.fixture(autouse=True)
def _check_instances(monkeypatch):
    """Every program a symbolic group serves is also planned for real and compared."""
    monkeypatch.setattr(dynamic, "CHECK_INSTANCES", True)


BATCH_REDUCE = {
    "mean": lambda x: x.mean(0, keepdim=True) * x,
    "var": lambda x: x.var(0, keepdim=True) + x,
    "softmax": lambda x: torch.softmax(x, dim=0),
    "log_softmax": lambda x: torch.log_softmax(x, dim=0),
}


@st.composite
def batched_programs(draw):
    rest = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)))
    extra_inputs = []                # shapes without the batch dim, and whether batched
    steps = []
    shape = rest
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["unary", "binary", "binary", "view", "reduce", "reduce",
                                     "transpose", "matmul", "guarded"]))
        if kind == "unary":
            name = draw(st.sampled_from(sorted(UNARY)))
            steps.append((name, ("unary", name)))
        elif kind == "binary":
            name = draw(st.sampled_from(sorted(BINARY)))
            how = draw(st.sampled_from(["rest", "one", "batched"]))
            extra_inputs.append((shape, how))
            steps.append((f"{name} with input {len(extra_inputs)} ({how})",
                          ("binary", name, len(extra_inputs))))
        elif kind == "view":
            view = draw(st.sampled_from(["flatten", "permute", "slice"]))
            if view == "flatten" or len(shape) == 1 and view == "permute":
                steps.append(("reshape(B, -1)", ("flatten",)))
                shape = (int(np.prod(shape)),)
            elif view == "permute":
                steps.append(("permute rest", ("permute",)))
                shape = shape[::-1]
            else:
                steps.append(("slice [:, ::-1]", ("slice",)))
        elif kind == "reduce":
            if len(shape) > 1 and draw(st.booleans()):
                steps.append(("sum(-1)", ("sum_last",)))
                shape = shape[:-1]
            else:
                name = draw(st.sampled_from(["mean", "var", "softmax", "log_softmax"]))
                steps.append((f"{name} over the batch dim", ("batch_reduce", name)))
        elif kind == "transpose":
            steps.append(("transpose(0, -1) and back", ("transpose",)))
        elif kind == "guarded":
            guarded = draw(st.sampled_from(["shift", "window", "pairs"]))
            if guarded == "window":
                lo = draw(st.integers(2, 300))
                hi = lo + draw(st.integers(1, 60))
                steps.append((f"x * 2 if {lo}.5 < B < {hi} else x - 1", ("window", lo, hi)))
            else:
                steps.append(({"shift": "cat(x[1:] - x[:-1], x[:1])",
                               "pairs": "swap row pairs if B is even"}[guarded], (guarded,)))
        else:
            k = draw(st.integers(1, 4))
            steps.append((f"matmul {shape[-1]}x{k}", ("matmul", shape[-1], k)))
            shape = shape[:-1] + (k,)
    return rest, extra_inputs, steps


def _program(steps, weights):
    def fn(x, *extra):
        for _, step in steps:
            kind = step[0]
            if kind == "unary":
                x = UNARY[step[1]](x)
            elif kind == "binary":
                x = BINARY[step[1]](x, extra[step[2] - 1])
            elif kind == "flatten":
                x = x.reshape(x.shape[0], -1)
            elif kind == "permute":
                x = x.permute(0, *range(x.ndim - 1, 0, -1))
            elif kind == "slice":
                x = x.flip(1) if hasattr(x, "flip") else x[:, ::-1]
            elif kind == "sum_last":
                x = x.sum(-1)
            elif kind == "batch_reduce":
                x = BATCH_REDUCE[step[1]](x)
            elif kind == "transpose":
                x = (x.transpose(0, -1).contiguous() * 1.5).transpose(0, -1)
            elif kind == "shift":
                x = torch.cat([x[1:] - x[:-1], x[:1]], 0)
            elif kind == "window":
                x = x * 2 if step[1] + 0.5 < x.shape[0] < step[2] else x - 1
            elif kind == "pairs":
                if x.shape[0] % 2 == 0:
                    x = x.reshape(x.shape[0] // 2, 2, -1).flip(1).reshape(x.shape)
            else:
                x = x @ weights[(step[1], step[2])]
        return x
    return fn


def program_and_inputs(program, rng):
    """The function of a drawn program (its matmul weights drawn from ``rng``) and
    ``make_inputs(n)``: its input arrays at batch size ``n`` (unbatched ones fixed)."""
    rest, extra_inputs, steps = program
    weights = {(s[1], s[2]): torch.from_numpy(rng.standard_normal((s[1], s[2]))
                                              .astype(np.float32))
               for _, s in steps if s[0] == "matmul"}
    fixed = {k: rng.standard_normal(shape).astype(np.float32)
             for k, (shape, how) in enumerate(extra_inputs) if how != "batched"}

    def make_inputs(n: int) -> list:
        arrays = [rng.standard_normal((n, *rest)).astype(np.float32)]
        for k, (shape, how) in enumerate(extra_inputs):
            arrays.append(rng.standard_normal((n, *shape)).astype(np.float32)
                          if how == "batched" else
                          fixed[k][None] if how == "one" else fixed[k])
        return arrays
    return _program(steps, weights), make_inputs


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(batched_programs(), st.lists(st.integers(2, 9), min_size=3, max_size=4, unique=True),
       st.integers(0, 2**31 - 1))
def test_symbolic_equals_specialised_equals_eager(program, sizes, seed):
    rest, extra_inputs, steps = program
    note(f"rest {rest}, sizes {sizes}: " + ", ".join(label for label, _ in steps))
    rng = np.random.default_rng(seed)
    fn, make_inputs = program_and_inputs(program, rng)
    symbolic = torch.compile(fn, dynamic=True, fullgraph=True)
    specialised = torch.compile(fn, dynamic=False, fullgraph=True)
    for n in sizes:
        arrays = make_inputs(n)
        results = []
        for f in (symbolic, specialised, fn):
            xs = [torch.from_numpy(a.copy()).requires_grad_() for a in arrays]
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                out = f(*xs)
            out.sum().backward()
            results.append((out, xs[0].grad))
        for what, (out, grad) in zip(("symbolic", "specialised"), results[:2]):
            _close(out, results[2][0], f"{what} output at B={n}")
            _close(grad, results[2][1], f"{what} gradient at B={n}")
    info = symbolic.cache_info()
    note(str(info))
    assert info.misses <= len(sizes)
    event("symbolic" if any(line.startswith("s0 = ") for line in info.symbolic)
          else "specialised")
    if any(line.startswith("s0 = ") for line in info.symbolic):
        # symbolic from the first call on, but for a size whose trace differs: the tracer
        # shares equal constants, and a mean's 1/2 at s0=2 is the graph's own 0.5
        # (a square first input binds both its dims under dynamic=True; a later size
        # that changes one of them only is another group's first trace: a miss each)
        groups = [line for line in info.symbolic if line.startswith("s0 = ")]
        retraced = {m for line in groups for m in re.findall(r"retraced s0=(\d+)", line)}
        assert info.misses == len(groups) + len(retraced), info
