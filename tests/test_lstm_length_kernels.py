"""What a compiled LSTM step at a new sequence length costs to compile: the kernels it
shares with the lengths compiled before (issue 13, LSTM over 4 lengths cold), and the
folded matmul of a stack of matrices that keeps the weight gradient out of them."""
from __future__ import annotations

import doctest

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn
from tracegrad.codegen.ops import Op
from tracegrad.runtime import cpu_program, render_key


def test_stack_times_matrix_matches_numpy_and_its_gradients():
    rng = np.random.default_rng(0)
    xs, ws, gs = (rng.standard_normal(s) for s in ((3, 4, 5), (5, 6), (3, 4, 6)))
    x = torch.tensor(xs, requires_grad=True)
    w = torch.tensor(ws, requires_grad=True)
    y = x @ w
    assert tuple(y.shape) == (3, 4, 6)
    np.testing.assert_allclose(y.detach().numpy(), xs @ ws, rtol=1e-12)
    (y * torch.tensor(gs)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), gs @ ws.T, rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), np.einsum("bik,bij->kj", xs, gs), rtol=1e-12)


def test_stack_times_matrix_of_a_permuted_stack_and_a_vector():
    base = np.arange(24.0).reshape(2, 3, 4)
    x = torch.tensor(base).transpose(0, 1)   # (3, 2, 4), not contiguous
    xs = base.transpose(1, 0, 2)
    m = np.arange(8.0).reshape(4, 2)
    np.testing.assert_array_equal((x @ torch.tensor(m)).numpy(), xs @ m)
    np.testing.assert_array_equal((x @ torch.tensor(m[:, 0])).numpy(), xs @ m[:, 0])


@pytest.mark.parametrize("a,b", [((3, 4, 0), (0, 6)), ((0, 4, 5), (5, 6)), ((3, 0, 5), (5, 6))])
def test_stack_times_matrix_with_an_empty_dim(a, b):
    x, w = torch.zeros(*a, requires_grad=True), torch.ones(*b, requires_grad=True)
    y = x @ w
    assert tuple(y.shape) == a[:-1] + b[-1:]
    y.sum().backward()
    assert tuple(x.grad.shape) == a and tuple(w.grad.shape) == b
    assert not w.grad.numpy().any()


def _backward_matmul_inputs(compiled):
    (entry,) = compiled._cache.values()
    g = entry.backward_plan.traced
    return [tuple(g.node(i).shape) for n in g.nodes if n.op is Op.MATMUL for i in n.inputs]


def test_compiled_weight_gradient_of_a_stack_is_one_matrix_product():
    # the batched form made one product per matrix and a (3, 5, 6) temp summed over 3
    w = torch.randn(5, 6, requires_grad=True)
    compiled = torch.compile(lambda x: (x @ w).tanh().sum())
    x = torch.randn(3, 4, 5)
    compiled(x).backward()
    want = (np.ones((3, 4, 6)) - np.tanh(x.numpy() @ w.detach().numpy()) ** 2)
    np.testing.assert_allclose(w.grad.numpy(), np.einsum("bik,bij->kj", x.numpy(), want),
                               rtol=1e-4, atol=1e-5)
    shapes = _backward_matmul_inputs(compiled)
    assert shapes and all(len(s) == 2 for s in shapes), shapes


class _Net(nn.Module):
    def __init__(self, cell=nn.LSTM):
        super().__init__()
        self.lstm = cell(8, 16, num_layers=2, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0][:, -1]


@pytest.fixture
def new_sources(tmp_path, monkeypatch):
    """The LLVM sources of kernels no earlier program of the process had, per call; an
    empty disk cache and render memo (a planned program loaded from disk brings its
    kernels' sources, NOTE (render memo keys))."""
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cpu_program, "_RENDERED", {})
    seen: set[str] = set()
    calls: list[list[str]] = [[]]
    real = cpu_program.llvm_sources

    def spy(program):
        out = real(program)
        for source in out.values():
            if source not in seen:
                seen.add(source)
                calls[-1].append(source)
        return out
    monkeypatch.setattr(cpu_program, "llvm_sources", spy)
    return calls


# the recurrent weight gradients' sum of one product per step, one per weight matrix
# (GRU: three), is what a later length still compiles (see the LSTM's comment below)
@pytest.mark.parametrize("cell,most", [(nn.LSTM, 1), (nn.GRU, 3), (nn.RNN, 1)])
def test_a_new_lstm_length_brings_few_new_kernel_bodies(new_sources, cell, most):
    torch.manual_seed(0)
    model = _Net(cell)
    y = torch.randn(4, 16)
    step = torch.compile(lambda x: (model(x) - y).pow(2).mean())
    counts = []
    for length in (3, 5, 7):
        x = torch.randn(4, length, 8)
        model.zero_grad()
        new_sources.append([])
        step(x).backward()
        counts.append(len(new_sources[-1]))
        new_sources.append([])   # the eager run's own (the RNN's fused path) not counted
        got = [p.grad.numpy().copy() for p in model.parameters()]
        model.zero_grad()
        (model(x) - y).pow(2).mean().backward()
        for a, p in zip(got, model.parameters()):
            np.testing.assert_allclose(a, p.grad.numpy(), rtol=1e-4, atol=1e-6)
    # each later length: the recurrent weight gradients' sum of one product per step
    # (before the folded matmul: 6; then 4: the layer output's gradient gathered from
    # every step, until NOTE (slot copies), and the input's copy to time-major and the
    # bias gradients' sum over every step, until NOTE (length parameters))
    assert counts[1] <= most and counts[2] <= most, counts


def test_a_later_lstm_length_renders_only_its_new_kernel_bodies(new_sources, monkeypatch):
    # NOTE (render memo keys): a reused kernel reads a longer input stack at a longer
    # length; with its buffer sizes in the memo key it was rendered again to the same text
    renders = [0]
    real = cpu_program.llvm_source

    def counting(kernel):
        renders[0] += 1
        return real(kernel)
    monkeypatch.setattr(cpu_program, "llvm_source", counting)
    torch.manual_seed(0)
    model = _Net()
    step = torch.compile(lambda x: model(x).pow(2).mean())
    step(torch.randn(2, 3, 8)).backward()
    for length in (5, 6):
        renders[0] = 0
        new_sources.append([])
        step(torch.randn(2, length, 8)).backward()
        assert renders[0] == len(new_sources[-1]) > 0, (length, renders[0])


def test_render_key_keeps_the_sizes_of_a_kernel_that_may_stream():
    result = doctest.testmod(render_key)
    assert result.attempted > 0 and result.failed == 0
