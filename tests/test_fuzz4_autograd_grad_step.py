"""A compiled step that takes gradients with ``autograd.grad(loss, params)`` (no
retain_graph) and updates the parameters by hand: its trace failed ("Trying to backward
through the graph a second time"), because building the compiled backward of the
returned loss walked the graph autograd.grad had freed; every call ran eagerly with a
warning, and fullgraph=True raised. A result that does not hang on the freed graph must
still be differentiable, as eagerly."""
from __future__ import annotations

import numpy as np

import tracegrad as torch
import tracegrad.nn.functional as F
from tracegrad import nn

from fuzz4_testing import assert_compiled_matches_eager, batch


def _manual_update(model):
    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads):
                p.sub_(0.1 * g)
        return loss
    return step


def _train(compiled, steps=4):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    step = _manual_update(model)
    if compiled:
        step = torch.compile(step, fullgraph=True)
    rng = np.random.default_rng(0)
    return [float(step(*batch(rng, 4, 6))) for _ in range(steps)], list(model.parameters()), step


def test_manual_update_from_autograd_grad_compiles_and_matches_eager():
    assert assert_compiled_matches_eager(_train).cache_info().misses == 1


def test_a_result_off_the_freed_graph_stays_differentiable():
    def f(x, w):
        g, = torch.autograd.grad((x * w).sum(), w)
        return g, (x * 2 * w).sum()
    for fn in (f, torch.compile(f)):
        w = torch.ones(3, requires_grad=True)
        g, y = fn(torch.arange(3.0), w)
        y.backward()
        np.testing.assert_array_equal(g.numpy(), [0.0, 1.0, 2.0])
        np.testing.assert_array_equal(w.grad.numpy(), [0.0, 2.0, 4.0])
