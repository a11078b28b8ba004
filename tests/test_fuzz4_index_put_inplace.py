"""``Tensor.index_put_`` (PyTorch's name, missing: AttributeError) in eager mode against
torch, and in a compiled training step against eager."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
from tracegrad import nn

from fuzz4_testing import assert_compiled_matches_eager, batch, cross_entropy_step


@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put_matches_torch(accumulate):
    real = pytest.importorskip("torch")
    rows, cols, vals = [0, 2, 0], [1, 3, 2], [1.0, -2.0, 4.0]
    ours = torch.zeros(3, 4)
    got = ours.index_put_((torch.tensor(rows), torch.tensor(cols)), torch.tensor(vals),
                          accumulate=accumulate)
    want = real.zeros(3, 4).index_put_((real.tensor(rows), real.tensor(cols)),
                                       real.tensor(vals), accumulate=accumulate)
    assert got is ours
    np.testing.assert_array_equal(ours.numpy(), want.numpy())


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2 = nn.Linear(6, 8), nn.Linear(8, 3)

    def forward(self, x):
        h = self.l1(x).clone()
        h.index_put_((torch.tensor([0, 1, 0]), torch.tensor([2, 3, 2])), h[:3, 0] * 2,
                     accumulate=True)
        return self.l2(torch.tanh(h))


def _train(compiled):
    torch.manual_seed(0)
    net = _Net()
    step = cross_entropy_step(net, torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9))
    if compiled:
        step = torch.compile(step, fullgraph=True)
    rng = np.random.default_rng(0)
    return [float(step(*batch(rng, 5, 6))) for _ in range(4)], list(net.parameters()), step


def test_index_put_in_a_compiled_step_matches_eager():
    assert_compiled_matches_eager(_train)
