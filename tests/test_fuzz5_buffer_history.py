"""A buffer written through a view with grad mode on in forward (``self.ema[1].mul_(0.9)
.add_(0.1 * out.mean(0))`` without no_grad, found by fuzz5): eagerly the buffer keeps
the step's autograd graph, so the next step's backward raises "Trying to backward
through the graph a second time", as in PyTorch. The compiled step wrote back only the
values: it dropped the history and returned losses at every step. Such a write now
falls back to eager (the compiled call raises as eager does)."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
from tracegrad import nn

from fuzz4_testing import batch, cross_entropy_step


class _EmaWithGrad(nn.Module):
    def __init__(self, through_a_view):
        super().__init__()
        self.through_a_view = through_a_view
        self.l = nn.Linear(4, 3)
        self.register_buffer("ema", torch.zeros(2, 3))

    def forward(self, x):
        out = self.l(x)
        target = self.ema[1] if self.through_a_view else self.ema
        target.mul_(0.9).add_(0.1 * out.mean(0))   # grad mode on: the buffer joins the graph
        return out + self.ema[1]


def _steps(compiled, through_a_view):
    torch.manual_seed(0)
    net = _EmaWithGrad(through_a_view)
    step = cross_entropy_step(net, torch.optim.SGD(net.parameters(), lr=0.1))
    if compiled:
        step = torch.compile(step)
    rng = np.random.default_rng(0)
    first = float(step(*batch(rng, 5, 4)))
    assert net.ema.grad_fn is not None, "the buffer lost the step's history"
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        step(*batch(rng, 5, 4))
    return first, net.ema.detach().numpy()


@pytest.mark.filterwarnings("ignore:compile. step cannot be traced")
@pytest.mark.parametrize("through_a_view", [True, False], ids=["view", "whole"])
def test_a_buffer_given_history_in_a_compiled_step_raises_as_eagerly(through_a_view):
    got = _steps(True, through_a_view)
    want = _steps(False, through_a_view)
    assert got[0] == pytest.approx(want[0], rel=1e-6)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)


def test_the_fallback_names_the_write():
    net = _EmaWithGrad(True)
    step = torch.compile(cross_entropy_step(net, torch.optim.SGD(net.parameters(), lr=0.1)))
    with pytest.warns(RuntimeWarning, match=r"shape \(2, 3\)\) is written in place with grad"):
        step(*batch(np.random.default_rng(0), 5, 4))
