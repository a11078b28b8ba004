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


def test_a_returned_ordered_dict_stays_one():
    from collections import OrderedDict

    def heads(x):
        return OrderedDict(logits=x * 2, pooled={"mean": x.mean(0)}, n=x.shape[0])
    compiled = torch.compile(heads)
    for n in (2, 3, 4, 5):
        x = torch.randn(n, 3)
        got, want = compiled(x), heads(x)
        assert type(got) is OrderedDict and list(got) == list(want)   # old: a plain dict
        assert torch.allclose(got["logits"], want["logits"]) and got["n"] == n
        assert type(got["pooled"]) is dict
