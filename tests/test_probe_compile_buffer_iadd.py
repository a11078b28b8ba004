"""``self.count += 1`` on a registered buffer inside a compiled module: the buffer is
updated in place and rebound to itself, which is no new tensor on the module, so the
module compiles once and each call sees the count the call before left, as eagerly."""
from __future__ import annotations

import warnings

import numpy as np

import tracegrad as torch


class _Counting(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)
        self.register_buffer("count", torch.zeros(()))
        self.register_buffer("total", torch.zeros(2))

    def forward(self, x):
        self.count += 1
        y = self.lin(x)
        self.total += y.detach().sum(0)
        return y * self.count


def test_augmented_assignment_to_a_buffer_compiles_once_and_counts_every_call():
    torch.manual_seed(0)
    model = _Counting()
    torch.manual_seed(0)
    reference = _Counting()
    compiled = torch.compile(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # old: "cannot store a new tensor on a module"
        for n in (3, 3, 4, 5, 6):
            x = torch.randn(n, 2)
            np.testing.assert_allclose(compiled(x).detach().numpy(),
                                       reference(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert model.count.item() == reference.count.item() == 5
    np.testing.assert_allclose(model.total.numpy(), reference.total.numpy(), rtol=1e-5)
    assert compiled.cache_info().misses <= 3


def test_a_new_tensor_bound_to_a_buffer_name_still_runs_eagerly():
    class Rebinding(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("count", torch.zeros(()))

        def forward(self, x):
            self.count = self.count + 1
            return x * self.count
    model = Rebinding()
    compiled = torch.compile(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = [compiled(torch.ones(1)).item() for _ in range(3)]
    assert got == [1.0, 2.0, 3.0] and model.count.item() == 3
    assert any("cannot store a new tensor" in str(w.message) for w in caught)
