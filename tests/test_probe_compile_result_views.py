"""A compiled function that returns a result and a view of it (``return h, h[:, -1]``)
returns them sharing storage, as eager mode does: an in-place change through one shows
in the other, the gradient through both reaches the inputs, and at every size (the view
chain's sizes follow a symbolic dim)."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch


def _hidden_and_last(x):
    h = (x * 2).tanh()
    return h, h[:, -1], h.view(h.shape[0], -1, 1)


@pytest.mark.parametrize("dynamic", [None, True, False])
def test_views_of_a_result_share_its_storage_at_every_size(dynamic):
    compiled = torch.compile(_hidden_and_last, dynamic=dynamic)
    for n in (2, 3, 4, 5, 6, 7):
        x = torch.randn(n, 4)
        got, want = compiled(x), _hidden_and_last(x)
        for g, w in zip(got, want):
            assert g.shape == w.shape
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-6, atol=1e-6)
        for outs in (got, want):
            outs[1].add_(100.0)   # old: the compiled h kept its values
            outs[2].mul_(2.0)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-5)


def test_gradient_through_a_result_and_its_view():
    compiled = torch.compile(_hidden_and_last)
    for n in (3, 4, 5):
        x = torch.randn(n, 4, requires_grad=True)
        x2 = x.detach().clone().requires_grad_()
        for fn, arg in ((compiled, x), (_hidden_and_last, x2)):
            h, last, col = fn(arg)
            (h.sum() + (last ** 2).sum() + (col * 3).sum()).backward()
        np.testing.assert_allclose(x.grad.numpy(), x2.grad.numpy(), rtol=1e-4, atol=1e-5)
