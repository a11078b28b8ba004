"""In-place writes through views of tensors a compiled function computes (``h[:, :3] +=
...``, ``h.view(-1).mul_(2)``, a column's ``fill_``): they stopped the trace ("an
in-place write into a view ... changes the tensor whose storage it shares too"), so a
training step over such a model ran eagerly at every call and fullgraph=True raised.
They now compile (NOTE (view writes in a trace) in _ops/writes.py): values and gradients
equal eager's. A view the write left behind, returned or read, still falls back."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn.functional as F
from tracegrad import nn

from fuzz4_testing import assert_compiled_matches_eager, batch, cross_entropy_step


def _slice_add(x, w):
    h = x @ w
    h[:, :2] += 1.5 * h[:, 2:4]
    return h.tanh()


def _flat_view_scale(x, w):
    h = x @ w
    h.view(-1).mul_(2)
    return h * 3


def _row_and_column(x, w):
    h = x @ w
    h[0].zero_()
    h[:, -1].fill_(3.0)
    return h * h


def _transposed_strided(x, w):
    h = (x @ w).t()
    h[1:, ::2] -= 0.5
    return h.sin()


def _half_the_rows(x, w):
    h = (x @ w).relu()
    h[h.shape[0] // 2:] *= 0.5
    return h.sum(1)


def _view_of_the_argument(x, w):
    x[:, 1] *= 2
    return x @ w


PROGRAMS = [_slice_add, _flat_view_scale, _row_and_column, _transposed_strided,
            _half_the_rows, _view_of_the_argument]


def _run(fn, compiled, requires_grad):
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((4, 5)).astype(np.float32))
    w = torch.tensor(rng.standard_normal((5, 4)).astype(np.float32), requires_grad=requires_grad)
    if fn is not _view_of_the_argument:
        x.requires_grad_(requires_grad)
    f = torch.compile(fn, fullgraph=True) if compiled else fn
    out = f(x, w)
    if requires_grad:
        out.sum().backward()
    grads = [t.grad.numpy() for t in (x, w) if t.grad is not None]
    return out.detach().numpy(), grads, x.detach().numpy()


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("fn", PROGRAMS, ids=lambda f: f.__name__)
def test_a_write_through_a_view_compiles_and_matches_eager(fn, requires_grad):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got, grads, x_after = _run(fn, True, requires_grad)
    want, want_grads, want_x = _run(fn, False, requires_grad)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x_after, want_x)   # the argument written through its view
    assert len(grads) == len(want_grads)
    for a, b in zip(grads, want_grads):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_returned_view_behind_a_write_through_another_view_falls_back():
    def f(x):
        h = x * 2
        s = h[:, 1:3]
        s += 1
        s[0].mul_(10)          # writes h, and s through its own view of it
        return h, s
    x = torch.arange(12.0).reshape(3, 4)
    want = f(x)
    with pytest.warns(RuntimeWarning, match="after that tensor was written in place"):
        got = torch.compile(f)(x)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


class _SliceMixer(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2 = nn.Linear(6, 8), nn.Linear(8, 3)

    def forward(self, x):
        h = self.l1(x)
        h[:, :3] += 0.5 * h[:, 3:6]
        return self.l2(torch.tanh(h))


def _train(compiled):
    torch.manual_seed(0)
    net = _SliceMixer()
    step = cross_entropy_step(net, torch.optim.Adam(net.parameters(), lr=0.01))
    if compiled:
        step = torch.compile(step, fullgraph=True)
    rng = np.random.default_rng(0)
    return [float(step(*batch(rng, 5, 6))) for _ in range(4)], list(net.parameters()), step


def test_a_training_step_with_a_slice_add_in_forward_is_one_program():
    assert assert_compiled_matches_eager(_train).cache_info().misses == 2


def _write_into_an_expand(x):
    h = (x * 1).expand(3, 4)
    h.add_(1)
    return h


def _write_into_a_row_of_an_expand(x):
    h = x * 1
    h.unsqueeze(0).expand(2, 4)[0].add_(1)
    return h


def test_a_write_through_an_expand_raises_as_eagerly():
    """A write into an expanded dim (elements sharing memory) raises, compiled too."""
    with pytest.raises(RuntimeError, match="add_: unsupported operation: more than one element"):
        _write_into_an_expand(torch.arange(4.0))
    with pytest.raises(RuntimeError, match="more than one element"):
        torch.compile(_write_into_an_expand)(torch.arange(4.0))


@pytest.mark.parametrize("compiled", [False, True])
def test_a_write_into_a_row_of_an_expand_lands_in_its_source(compiled):
    """A row of an expanded tensor holds each element once: PyTorch writes it (NOTE
    (overlapping writes)); before, eager tracegrad refused any write into an expand."""
    fn = torch.compile(_write_into_a_row_of_an_expand) if compiled else \
        _write_into_a_row_of_an_expand
    for _ in range(2 if compiled else 1):
        np.testing.assert_array_equal(fn(torch.arange(4.0)).numpy(), np.arange(4.0) + 1)


class _CountingBuffers(nn.Module):
    """Buffers written through views in forward (a counter's element, an EMA's rows)."""

    def __init__(self):
        super().__init__()
        self.l = nn.Linear(6, 3)
        self.register_buffer("count", torch.zeros(3))
        self.register_buffer("ema", torch.zeros(2, 3))

    def forward(self, x):
        out = self.l(x)
        with torch.no_grad():
            self.count[0] += 1
            self.ema[1].mul_(0.9).add_(0.1 * out.mean(0))
        return out + self.ema[1]


def _train_buffers(compiled):
    torch.manual_seed(0)
    net = _CountingBuffers()
    emb = nn.Embedding(4, 6)
    opt = torch.optim.SGD(list(net.parameters()) + list(emb.parameters()), lr=0.1)

    def step(ids, y):
        opt.zero_grad()
        with torch.no_grad():
            emb.weight[0].zero_()      # a padding row, kept zero by hand
        loss = F.cross_entropy(net(emb(ids)), y)
        loss.backward()
        opt.step()
        return loss
    if compiled:
        step = torch.compile(step, fullgraph=True)
    rng = np.random.default_rng(0)
    losses = [float(step(torch.tensor(rng.integers(0, 4, 5)), torch.tensor(rng.integers(0, 3, 5))))
              for _ in range(4)]
    return losses, [*net.parameters(), *net.buffers(), emb.weight], step


def test_buffers_and_a_parameter_row_written_through_views_compile():
    step = assert_compiled_matches_eager(_train_buffers)
    assert step.cache_info().misses == 2


def test_a_view_made_before_the_call_falls_back_and_stays_usable():
    """A view from outside the function holds the trace's value after a write through it
    unless the call runs eagerly (it then raised 'tolist() needs a concrete value')."""
    buf = torch.zeros(2, 3)
    row = buf[0]

    def step(x):
        row.add_(x)
        return buf.sum() * 1
    with pytest.warns(RuntimeWarning, match="view"):
        got = [float(torch.compile(step)(torch.ones(3))) for _ in range(2)]
    assert got == [3.0, 6.0]
    assert row.tolist() == [2.0, 2.0, 2.0] and buf.tolist() == [[2.0] * 3, [0.0] * 3]
