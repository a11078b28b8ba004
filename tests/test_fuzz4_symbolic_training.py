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
from tracegrad import nn

from fuzz4_testing import assert_compiled_matches_eager, batch, cross_entropy_step

SIZES = [8, 5, 9, 17, 4, 6, 7]


def _run(compiled, dynamic, make_opt, norm):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8) if norm else nn.Identity(),
                          nn.ReLU(), nn.Linear(8, 3))
    step = cross_entropy_step(model, make_opt(model.parameters()))
    if compiled:
        step = torch.compile(step, dynamic=dynamic)
    rng = np.random.default_rng(0)
    losses = [float(step(*batch(rng, n, 4))) for n in SIZES]
    return losses, list(model.state_dict().values()), step


def _sgd_momentum(params):
    return torch.optim.SGD(params, lr=0.1, momentum=0.9)


def _sgd(params):
    return torch.optim.SGD(params, lr=0.1)


@pytest.mark.parametrize("dynamic", [None, True])
@pytest.mark.parametrize("make_opt,norm", [(_sgd, True), (_sgd_momentum, False),
                                           (_sgd_momentum, True)],
                         ids=["batchnorm-sgd", "sgd-momentum", "batchnorm-sgd-momentum"])
def test_one_symbolic_step_serves_every_batch_size(make_opt, norm, dynamic):
    step = assert_compiled_matches_eager(
        lambda compiled: _run(compiled, dynamic, make_opt, norm))
    info = step.cache_info()
    assert info.misses <= 2, info       # the first size (its state made), then s0
    assert info.symbolic and info.symbolic[0].startswith("s0 = arg 0 dim 0, arg 1 dim 0")
