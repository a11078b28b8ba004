"""One lowering cache serves every plan of the process (NOTE (buffer sizes in group keys)
in codegen.lower): an RNN cell planned at another sequence length reuses its kernel, with
the new buffer sizes bound, while kernels whose loop IR depends on a shape or a constant
never share."""
import numpy as np
import pytest

from tracegrad.codegen import schedule
from tracegrad.codegen.lower import LoweringCache, lower_group
from tracegrad.codegen.schedule import plan
from tracegrad.runtime.cpu_program import CompiledProgram

from codegen_testing import Builder, eval_graph, extern_eval

B, F = 3, 8


@pytest.fixture
def fresh_cache(monkeypatch):
    """A fresh process-wide cache in check mode: every reuse is compared with a fresh
    lowering of its group (same text, buffers and offsets)."""
    cache = LoweringCache(check=True)
    monkeypatch.setattr(schedule, "_LOWERING", cache)
    monkeypatch.setattr(schedule, "CHECK_REUSE", True)
    return cache


def _rnn(T: int, batch_first: bool = False):
    """h_t = tanh(x[t] * w + h_{t-1} @ u), unrolled over T steps: x grows with T.  Time
    major, x[t] is read with the same index math at every length; batch first, x[:, t]
    strides by T * F, so each length lowers its own kernels."""
    b = Builder()
    x, w, u = b.input((B, T, F) if batch_first else (T, B, F)), b.input((F,)), b.input((F, F))
    h, outs = None, []
    for t in range(T):
        window = (slice(None), slice(t, t + 1)) if batch_first else (slice(t, t + 1),)
        xt = b.reshape(b.slice(x, index=window + (slice(None),) * (3 - len(window))),
                       shape=(B, F))
        z = b.mul(xt, w)
        h = b.tanh(z if h is None else b.add(z, b.matmul(h, u)))
        outs.append(h)
    rng = np.random.default_rng(T)
    inputs = [rng.standard_normal(b.shape(x)).astype(np.float32),
              rng.standard_normal(F).astype(np.float32),
              rng.standard_normal((F, F)).astype(np.float32) / F]
    return b.graph(*outs), inputs


def _run(g, inputs):
    p = plan(g)
    for got, want in zip(CompiledProgram(p, extern_eval)(inputs), eval_graph(g, inputs)):
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-6, atol=1e-6)
    return p


def test_a_cell_planned_at_another_length_reuses_its_kernel(fresh_cache):
    _run(*_rnn(4))
    lowered = fresh_cache.lowered
    p = _run(*_rnn(7))
    assert fresh_cache.lowered == lowered  # every step of length 7 reused a length-4 kernel
    x = p.graph.inputs[0]
    for step in p.kernels:  # x's size is length 7's, in the kernel and in its loop IR
        arg = step.kernel.buffers[step.kernel.buffer_nodes.index(x)]
        assert arg.size == B * 7 * F
        assert f"float32[{B * 7 * F}]" in step.loop_ir
    assert p.lowered == 2  # the first step (no h term) and the others: bodies of the program


@pytest.mark.parametrize("batch_first", [False, True])
def test_reused_kernels_equal_fresh_lowerings_at_every_length(fresh_cache, batch_first):
    for T in (2, 5, 3):
        g, inputs = _rnn(T, batch_first)
        p = _run(g, inputs)
        for step, group in zip(p.kernels, p.fusion.groups):
            fresh = lower_group(p.graph, group, step.name, p.fusion.edges)
            assert str(fresh) == str(step.kernel) and fresh.buffers == step.kernel.buffers


@pytest.mark.parametrize("n", [8, 16])
def test_a_reduction_over_a_plain_buffer_keeps_its_extent(fresh_cache, n):
    """The sum reads x without a view: its row length is x's shape, which must stay in the
    key (a kernel summing 8 columns must never serve 16).  Both the group's row length and
    the plain buffer's shape keep it there."""
    for cols in (8, n):
        b = Builder()
        x = b.input((4, cols))
        g = b.graph(b.exp(b.sum(x, axes=(1,), keepdims=True)))
        data = np.random.default_rng(cols).standard_normal((4, cols)).astype(np.float32)
        _run(g, [data])


def test_constants_and_shapes_never_share_across_plans(fresh_cache):
    for c in (2.0, 3.0):
        b = Builder()
        x = b.input((4, 8))
        g = b.graph(b.mul(x, b.const(c)))
        _run(g, [np.arange(32, dtype=np.float32).reshape(4, 8)])
    assert fresh_cache.lowered == 2
    b = Builder()
    x = b.input((4, 9))
    g = b.graph(b.mul(x, b.const(3.0)))
    _run(g, [np.arange(36, dtype=np.float32).reshape(4, 9)])
    assert fresh_cache.lowered == 3
