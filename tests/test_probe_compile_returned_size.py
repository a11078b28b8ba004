"""A compiled function that returns ``x.shape`` or ``x.size()`` returns a ``Size``, as
eager mode does (a plain tuple has no ``numel()``), also where the size is symbolic."""
from __future__ import annotations

import tracegrad as torch


def _shapes(x):
    return x * 2, x.shape, x.size(), x.shape[1:]


def test_returned_shapes_are_sizes_at_every_size():
    compiled = torch.compile(_shapes)
    for n in (2, 3, 4, 5, 6):
        x = torch.randn(n, 3)
        got, want = compiled(x), _shapes(x)
        for g, w in zip(got[1:], want[1:]):
            assert type(g) is type(w) is torch.Size   # old: tuple
            assert g == w and g.numel() == w.numel()
        assert torch.equal(got[0], want[0])
