"""Hypothesis: random chains of the ops that take a size (``test_symbolic_size_ops``) over
a batch dim ``B``, compiled with a symbolic size (``dynamic=True``), specialised
(``dynamic=False``) and eager, at random sizes that include 0, 1 and sizes that break
guards (a parity for ``chunk(2)``, a size-1 piece of a split): symbolic == specialised ==
eager, values and gradients, or the same error where eager raises.  Once with
``CHECK_INSTANCES`` (every size served is planned for real and compared), once without,
where the sizes served on their guards really run without a trace.

Every value has shape ``(B, *rest)``; a step keeps it.  Steps: a factory of the batch
size (``zeros``/``ones``/``full``/``empty().fill_``/``arange``), ``x / len(x)`` and
``x / B``, rows reversed by ``index_select`` of an ``arange``, rows gathered by an index
tensor of ``B - 1`` ids (an embedding of rows), a rotation through ``split([1, B - 1])``,
halves swapped through ``chunk(2)``, a cumulative sum through a ``tril`` mask, and one of
the unary ops of ``test_compile_random_graphs`` between them.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import tracegrad as torch
from test_compile_random_graphs import UNARY, _close
from tracegrad.compiler import dynamic


def _ones_like_rows(x):
    return (1,) * (x.ndim - 1)


def _cumsum_by_tril(x):
    n = x.shape[0]
    flat = x.reshape(n, -1)
    return (torch.tril(torch.ones(n, n)) @ flat).reshape(x.shape)


def _rotate(x):
    first, rest = x.split([1, x.shape[0] - 1])
    return torch.cat([rest, first * 2])


def _swap_halves(x):
    a, b = x.chunk(2)
    return torch.cat([b, a]) if a.shape[0] == b.shape[0] else torch.cat([b, a * 3])


STEPS = {
    "x + zeros(B, ..)": lambda x: x + torch.zeros(x.shape[0], *_ones_like_rows(x)),
    "x * ones((B, ..))": lambda x: x * torch.ones((x.shape[0], *x.shape[1:])),
    "x - full((B, ..), 0.5)": lambda x: x - torch.full((x.shape[0], *_ones_like_rows(x)), 0.5),
    "empty(B, ..).fill_(2) * x": lambda x: torch.empty(x.shape).fill_(2.0) * x,
    "x * arange(B)": lambda x: x * torch.arange(x.shape[0]).float().reshape(
        -1, *_ones_like_rows(x)),
    "x / len(x)": lambda x: x / len(x),
    "x / B": lambda x: x / x.shape[0],
    "rows reversed by index_select": lambda x: x.index_select(
        0, torch.arange(x.shape[0]).flip(0)),
    "x[ids of B - 1 rows] + x[1:]": lambda x: x[torch.arange(x.shape[0] - 1)] + x[1:],
    "rotate by split([1, B - 1])": _rotate,
    "swap halves by chunk(2)": _swap_halves,
    "cumsum by a tril mask": _cumsum_by_tril,
    "triu(1) of (B, B) rows summed": lambda x: x + torch.triu(
        torch.ones(x.shape[0], x.shape[0]), 1).sum(1).reshape(-1, *_ones_like_rows(x)),
}


@st.composite
def size_programs(draw):
    rest = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    steps = []
    for _ in range(draw(st.integers(1, 4))):
        steps.append(draw(st.sampled_from(sorted(STEPS))))
        if draw(st.booleans()):
            steps.append("unary " + draw(st.sampled_from(["neg", "relu", "log", "scalar",
                                                              "where"])))
    return rest, steps


def _program(steps):
    def fn(x):
        for name in steps:
            x = UNARY[name[6:]](x) if name.startswith("unary ") else STEPS[name](x)
        return x
    return fn


def _run(f, array):
    """(output, gradient) of ``f`` at ``array``, or the exception it raised."""
    x = torch.from_numpy(array.copy()).requires_grad_()
    try:
        out = f(x)
        out.sum().backward()
    except Exception as e:  # noqa: BLE001 - compared with eager's
        return e
    return out, x.grad


def _sizes():
    return st.lists(st.one_of(st.integers(0, 12), st.integers(13, 70)), min_size=3,
                    max_size=6, unique=True)


def _equal_everywhere(program, sizes, seed, check_instances: bool):
    rest, steps = program
    note(f"rest {rest}, sizes {sizes}: " + ", ".join(steps))
    rng = np.random.default_rng(seed)
    fn = _program(steps)
    traces = [0]

    def counted(x):
        traces[0] += 1
        return fn(x)
    symbolic = torch.compile(counted, dynamic=True)
    specialised = torch.compile(fn, dynamic=False)
    served_traces = 0
    for n in sizes:
        array = rng.standard_normal((n, *rest)).astype(np.float32)
        want = _run(fn, array)
        served = sum(g.served_without_retrace for g in symbolic._groups.values())
        before = traces[0]
        for what, f in (("symbolic", symbolic), ("specialised", specialised)):
            got = _run(f, array)
            if isinstance(want, Exception):
                assert isinstance(got, type(want)), (what, n, got, want)
                continue
            assert not isinstance(got, Exception), (what, n, got)
            _close(got[0], want[0], f"{what} output at B={n}")
            _close(got[1], want[1], f"{what} gradient at B={n}")
        if sum(g.served_without_retrace for g in symbolic._groups.values()) > served:
            served_traces += traces[0] - before
    if not check_instances:
        assert served_traces == 0, "a size served on its guards was traced"
    info = symbolic.cache_info()
    note(str(info))
    assert info.misses <= len(sizes)
    event("symbolic" if any(line.startswith("s0 = ") for line in info.symbolic)
          else "specialised")


SETTINGS = settings(max_examples=20, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@SETTINGS
@given(size_programs(), _sizes(), st.integers(0, 2**31 - 1))
def test_planned_at_every_size_served(monkeypatch, program, sizes, seed):
    monkeypatch.setattr(dynamic, "CHECK_INSTANCES", True)
    _equal_everywhere(program, sizes, seed, check_instances=True)


@SETTINGS
@given(size_programs(), _sizes(), st.integers(0, 2**31 - 1))
def test_served_on_guards_without_a_trace(program, sizes, seed):
    _equal_everywhere(program, sizes, seed, check_instances=False)

