"""Training steps over batches of changing size (issue 13): one symbolic program, not a
compile per size, and eager's numbers.

Found compiling every size: a BatchNorm in training (its running variance's 1/(s0 - 1) is
its momentum 0.1 at the probe size 11, so the two constants merged and that probe's
program had a node fewer), and SGD with momentum under dynamic=True (the first call's
trace makes the momentum buffer, the fit refused it, and the refusal stood for good)."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn.functional as F
from tracegrad import nn

SIZES = [8, 5, 9, 17, 4, 6, 7]


def _run(compiled, dynamic, make_opt, norm):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8) if norm else nn.Identity(),
                          nn.ReLU(), nn.Linear(8, 3))
    opt = make_opt(model.parameters())

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    if compiled:
        step = torch.compile(step, dynamic=dynamic)
    rng = np.random.default_rng(0)
    losses = []
    for n in SIZES:
        x = torch.tensor(rng.standard_normal((n, 4)).astype(np.float32))
        losses.append(float(step(x, torch.tensor(rng.integers(0, 3, n)))))
    return losses, model, step


def _sgd_momentum(params):
    return torch.optim.SGD(params, lr=0.1, momentum=0.9)


def _sgd(params):
    return torch.optim.SGD(params, lr=0.1)


@pytest.mark.parametrize("dynamic", [None, True])
@pytest.mark.parametrize("make_opt,norm", [(_sgd, True), (_sgd_momentum, False),
                                           (_sgd_momentum, True)],
                         ids=["batchnorm-sgd", "sgd-momentum", "batchnorm-sgd-momentum"])
def test_one_symbolic_step_serves_every_batch_size(make_opt, norm, dynamic):
    losses_c, model_c, step = _run(True, dynamic, make_opt, norm)
    losses_e, model_e, _ = _run(False, dynamic, make_opt, norm)
    np.testing.assert_allclose(losses_c, losses_e, rtol=1e-5, atol=1e-6)
    for a, b in zip(model_c.state_dict().values(), model_e.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    info = step.cache_info()
    assert info.misses <= 2, info       # the first size (its state made), then s0
    assert info.symbolic and info.symbolic[0].startswith("s0 = arg 0 dim 0, arg 1 dim 0")
