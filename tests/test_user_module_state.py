"""What a user's module keeps between calls (a rebound buffer, an attention map kept for
plotting, activations caught by a forward hook) under ``torch.compile``: never a trace
placeholder left behind, always what eager mode leaves."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracegrad as torch


class _Counting(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("count", torch.zeros(()))
        self.lin = torch.nn.Linear(3, 2)

    def forward(self, x):
        self.count = self.count + 1          # rebinds the buffer
        out = self.lin(x)
        self.last = out.detach()             # kept for later inspection
        return out


def test_tensors_stored_on_a_module_are_real_after_compiled_calls():
    torch.manual_seed(0)
    model = _Counting()
    compiled = torch.compile(model)
    x = torch.ones(1, 3)
    with pytest.warns(RuntimeWarning, match=r"_Counting\.count = .*in place"):
        compiled(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        compiled(x)
    assert float(model.count) == 2.0
    np.testing.assert_allclose(model.last.numpy(), model.lin(x).detach().numpy())
    assert "count" in dict(model.named_buffers())


def test_forward_hook_activations_are_real_after_compiled_calls():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    features, calls = {}, []

    def keep(module, args, output):
        calls.append(1)
        features["fc1"] = output.detach()
    net[0].register_forward_hook(keep)
    compiled = torch.compile(net)
    with pytest.warns(RuntimeWarning, match="Linear has forward hooks"):
        compiled(torch.ones(1, 3))
    x = torch.randn(2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = compiled(x)
    assert len(calls) == 2
    np.testing.assert_allclose(features["fc1"].numpy(), net[0](x).detach().numpy())
    np.testing.assert_allclose(out.detach().numpy(), net(x).detach().numpy())


def test_in_place_buffer_updates_still_compile():
    class Running(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("total", torch.zeros(3))

        def forward(self, x):
            self.total.add_(x.sum(0))
            return x * 2
    model = Running()
    compiled = torch.compile(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            compiled(torch.ones(2, 3))
    np.testing.assert_allclose(model.total.numpy(), np.full(3, 6.0))
