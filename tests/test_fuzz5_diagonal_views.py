"""``diagonal`` of a transposed plane (``h.t().diagonal()``, ``h.permute(...).diagonal()``)
was a copy (found by fuzz5 against PyTorch 2.13): the reshape that merges the two dims
copied, so a write into the diagonal was lost, eagerly and compiled. Its diagonal at
offset k is the untransposed plane's at -k, in the same order: that one is a view."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch

real_torch = pytest.importorskip("torch")


def _transposed_diagonal(x, w):
    h = x * w
    h.t().diagonal(1).mul_(-2)
    h.permute(1, 0).diagonal().add_(w[0, 0])
    return h * h


def _run(lib, fn, data, compiled):
    f = torch.compile(fn, fullgraph=True) if compiled else fn
    for _ in range(2 if compiled else 1):   # trace, then replay
        x = lib.tensor(data, requires_grad=True)
        w = lib.tensor(data[::-1].copy() + 1, requires_grad=True)
        out = f(x, w)
        out.sum().backward()
    return out.detach().numpy(), x.grad.numpy(), w.grad.numpy()


@pytest.mark.parametrize("compiled", [False, True])
def test_a_write_into_the_diagonal_of_a_transpose_reaches_its_source(compiled):
    data = np.arange(20.0, dtype=np.float32).reshape(4, 5) / 7
    got = _run(torch, _transposed_diagonal, data, compiled)
    want = _run(real_torch, _transposed_diagonal, data, False)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("offset", [-2, -1, 0, 1, 3])
def test_the_diagonal_of_a_transposed_block_is_a_view(offset):
    for lib in (torch, real_torch):
        h = lib.arange(60.0).reshape(3, 4, 5)
        d = h.transpose(1, 2).diagonal(offset, 1, 2)
        d.fill_(-1.0)
        if lib is torch:
            got = h.numpy()
    np.testing.assert_array_equal(got, h.numpy())


def test_the_diagonal_of_stepped_columns_is_a_view():
    # its plane's dims merge in neither order: a strided view (NOTE (strided views))
    h = torch.arange(20.0).reshape(4, 5)
    h[:, ::2].diagonal().fill_(-1.0)
    want = real_torch.arange(20.0).reshape(4, 5)
    want[:, ::2].diagonal().fill_(-1.0)
    np.testing.assert_array_equal(h.numpy(), want.numpy())
