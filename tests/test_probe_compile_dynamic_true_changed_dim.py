"""``compile(fn, dynamic=True)`` over inputs whose first-call leading dims never change
but another dim does (a transformer's batch of 2 over many sequence lengths): the dim
that changed becomes the symbol, as with dynamic=None, instead of a compile per length;
each value as eager mode's."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn.functional as F


def _attention(x):
    return F.scaled_dot_product_attention(x, x, x, is_causal=True).sum(-1)


def _glu_rows(x):
    return F.glu(x, -1).cumsum(0)


@pytest.mark.parametrize("fn, shape", [(_attention, lambda n: (1, 2, n, 4)),
                                       (_glu_rows, lambda n: (3, 2 * n))])
def test_dynamic_true_binds_the_dim_that_changes(fn, shape):
    compiled = torch.compile(fn, dynamic=True)
    sizes = [5, 6, 7, 9, 12, 15, 8, 11, 13, 4]
    for n in sizes:
        x = torch.randn(*shape(n))
        np.testing.assert_allclose(compiled(x).numpy(), fn(x).numpy(), rtol=1e-5, atol=1e-5)
    # old: one compile per size (10): the first call bound the leading dim, which stays 1/3
    assert compiled.cache_info().misses <= 3
    assert any("s0" in line for line in compiled.cache_info().symbolic)


def test_transformer_layer_over_18_lengths_with_dynamic_true():
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True).eval()
    compiled = torch.compile(layer, dynamic=True)
    with torch.no_grad():
        for length in range(3, 21):
            x = torch.randn(2, length, 16)
            np.testing.assert_allclose(compiled(x).numpy(), layer(x).numpy(),
                                       rtol=1e-4, atol=1e-5)
    assert compiled.cache_info().misses <= 2   # old: 18
