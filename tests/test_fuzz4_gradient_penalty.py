"""A compiled step with a gradient penalty (``x.clone().requires_grad_()``,
``autograd.grad(..., create_graph=True)``, then ``backward()``): eager's numbers, and one
program for every step. The leaf made inside the trace was guarded like a parameter:
its ``.grad``, left by the last call, broke the guard, so every step traced again."""
from __future__ import annotations

import numpy as np

import tracegrad as torch
import tracegrad.nn.functional as F
from tracegrad import nn

from fuzz4_testing import assert_compiled_matches_eager, batch


def _train(compiled, steps=5):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step(x, y):
        opt.zero_grad()
        x = x.clone().requires_grad_(True)
        loss = F.cross_entropy(model(x), y)
        g, = torch.autograd.grad(loss, x, create_graph=True)
        total = loss + 0.1 * g.pow(2).sum()
        total.backward()
        opt.step()
        return total
    if compiled:
        step = torch.compile(step, fullgraph=True)
    rng = np.random.default_rng(0)
    return [float(step(*batch(rng, 4, 6))) for _ in range(steps)], list(model.parameters()), step


def test_gradient_penalty_step_compiles_once_and_matches_eager():
    step = assert_compiled_matches_eager(_train)
    assert step.cache_info().misses == 2   # the first step (no .grad yet), then every step
