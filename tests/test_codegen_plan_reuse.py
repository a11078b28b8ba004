"""Repeated groups lower once (NOTE (group keys) in codegen.lower): an unrolled loop's
groups share one LoopKernel with their own buffers and offsets bound, and in check mode
every reused kernel is compared with a fresh lowering of its group."""
import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn
from tracegrad.codegen import schedule
from tracegrad.codegen.fuse import fuse
from tracegrad.codegen.lower import LoweringCache, lower_group
from tracegrad.codegen.passes import simplify
from tracegrad.codegen.schedule import plan
from tracegrad.runtime.cpu_program import CompiledProgram

from codegen_testing import Builder, eval_graph, extern_eval, run_interp

B, T, F = 3, 6, 8


@pytest.fixture
def check_reuse(monkeypatch):
    monkeypatch.setattr(schedule, "CHECK_REUSE", True)


def _unrolled(pad: bool = False):
    """h_t = tanh(x[:, t] * w + h_{t-1} @ u) for every t, as an unrolled trace does (the
    matmul, an extern, ends each step's kernel)."""
    b = Builder()
    x, w, u = b.input((B, T, F)), b.input((F,)), b.input((F, F))
    h, outs = None, []
    for t in range(T):
        xt = b.reshape(b.slice(x, index=(slice(None), slice(t, t + 1), slice(None))),
                       shape=(B, F))
        if pad:  # a masked view: its index is never hoisted, each offset lowers apart
            xt = b.slice(b.pad(xt, pads=((0, 0), (1, 1)), value=0.0),
                         index=(slice(None), slice(t % 3, t % 3 + F)))
        z = b.mul(xt, w)
        h = b.tanh(z if h is None else b.add(z, b.matmul(h, u)))
        outs.append(h)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((B, T, F)).astype(np.float32),
              rng.standard_normal(F).astype(np.float32),
              rng.standard_normal((F, F)).astype(np.float32) / F]
    return b.graph(*outs), inputs


def _lowerings(g):
    f = fuse(simplify(g))
    cache = LoweringCache(check=True)
    kernels = [cache.lower(f.graph, gr, f"k{i}", f.edges) for i, gr in enumerate(f.groups)]
    return f, cache, kernels


def test_time_steps_share_one_lowering_with_their_offsets():
    g, _ = _unrolled()
    f, cache, kernels = _lowerings(g)
    assert len(kernels) == T
    # t=0 has no h_{t-1} term, every later step reuses the t=1 kernel
    assert cache.lowered == 2
    assert all(k.body is kernels[1].body for k in kernels[2:])
    x_offsets = [k.buffers[k.buffer_nodes.index(f.graph.inputs[0])].offset for k in kernels]
    assert x_offsets == [t * F for t in range(T)]
    for gr, k in zip(f.groups, kernels):  # what a fresh lowering binds
        fresh = lower_group(f.graph, gr, k.name, f.edges)
        assert str(fresh) == str(k) and fresh.buffers == k.buffers
        assert fresh.buffer_nodes == k.buffer_nodes


def test_reused_kernels_compute_what_the_graph_does(check_reuse):
    g, inputs = _unrolled()
    p = plan(g)
    assert p.lowered < len(p.kernels)
    want = eval_graph(g, inputs)
    for got, w in zip(run_interp(p, inputs), want):
        np.testing.assert_allclose(got.reshape(w.shape), w, rtol=1e-6, atol=1e-6)
    for got, w in zip(CompiledProgram(p, extern_eval)(inputs), want):
        np.testing.assert_allclose(got, w, rtol=1e-6, atol=1e-6)


def test_masked_views_lower_apart_unless_their_offsets_match(check_reuse):
    g, inputs = _unrolled(pad=True)
    f, cache, kernels = _lowerings(g)
    # window t % 3 == 1 drops the mask (the pad is cut off again): t=4 reuses t=1; the
    # masked windows read x at other offsets, kept in their keys, so they lower apart
    assert cache.lowered == T - 1
    assert kernels[4].body is kernels[1].body
    p = plan(g)
    for got, w in zip(CompiledProgram(p, extern_eval)(inputs), eval_graph(g, inputs)):
        np.testing.assert_allclose(got, w, rtol=1e-6, atol=1e-6)


def test_different_constants_do_not_share():
    b = Builder()
    x = b.input((4, 8))
    ys = [b.mul(b.slice(x, index=(slice(k, k + 1), slice(None))), b.const(c))
          for k, c in enumerate((2.0, 2.0, 3.0, 3.0))]
    f, cache, kernels = _lowerings(b.graph(*ys))
    assert "CONST(2.0)" in str(kernels[1]) and "CONST(3.0)" in str(kernels[2])
    assert cache.lowered == 3  # 0 (base 0), 1 and 3 reusing it; 2 (another constant)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_compiled_rnn_with_checked_reuse_matches_eager(check_reuse, cell):
    torch.manual_seed(0)
    rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(8, 16, num_layers=2, batch_first=True)
    head = nn.Linear(16, 2)

    def step(x, y):
        out, _ = rnn(x)
        return nn.functional.cross_entropy(head(out[:, -1]), y)
    x, y = torch.randn(4, 5, 8), torch.randint(0, 2, (4,))
    compiled = torch.compile(step)
    loss = compiled(x, y)
    loss.backward()
    grads = [p.grad.numpy().copy() for p in rnn.parameters()]
    for p in list(rnn.parameters()) + list(head.parameters()):
        p.grad = None
    want = step(x, y)
    want.backward()
    np.testing.assert_allclose(loss.item(), want.item(), rtol=1e-5)
    for got, p in zip(grads, rnn.parameters()):
        np.testing.assert_allclose(got, p.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_compiled_conv_with_checked_reuse(check_reuse):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
    x = torch.randn(2, 2, 6, 6)
    got = torch.compile(net)(x)
    np.testing.assert_allclose(got.detach().numpy(), net(x).detach().numpy(), rtol=1e-5,
                               atol=1e-6)
