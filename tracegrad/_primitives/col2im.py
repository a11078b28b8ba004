"""The derivative rule of WINDOWS (col2im): each window element's gradient summed back
to the input position it was read from, written with movement ops and adds only.

NOTE (col2im by stride phases): along a dim of stride ``s``, window offset ``o`` of
output ``t`` reads input ``s*t + o*dil``.  Writing ``o*dil = s*a + b`` (``0 <= b < s``)
puts it at phase ``b`` of block ``q = t + a`` of the input split as ``(Q, s)`` blocks.
Offsets that share ``a`` land in distinct phases, so one padded slice of the gradient
places all of them: with ``dil == 1`` that is ``ceil(w / s)`` terms per dim instead of
``w`` (a 3x3 window of stride 2: 4 terms instead of 9), and every term is a single
box-masked view of the gradient (a slice, then a pad).  The sum is formed in the
``(..., Q.., s..)`` layout; one permute + reshape interleaves the phases back.  A fused
consumer then reads each input element as a few masked loads with affine indices, where
the sum of one strided placement per offset (pad of a dilated slice) needed integer
division and remainder per element and per offset.
"""
from __future__ import annotations

from itertools import product

from . import functions as F


def _dim_terms(window: int, stride: int, dilation: int):
    """(first offset, offsets, block shift a, first phase b) per term along one dim."""
    if dilation == 1:
        return [(stride * a, min(stride, window - stride * a), a, 0)
                for a in range(-(-window // stride))]
    return [(o, 1, (o * dilation) // stride, (o * dilation) % stride) for o in range(window)]


def windows_vjp(g, node):
    """Gradient of ``windows(x, window, stride, dilation)``: ``g`` has shape
    ``(..., *out, *window)``; the result has ``x``'s shape."""
    x = node.inputs[0]
    window, stride, dilation = (node.attrs[k] for k in ("window", "stride", "dilation"))
    k = len(window)
    shape = tuple(x.shape)
    lead = len(shape) - k
    out = tuple(g.shape[lead:lead + k])
    blocks = tuple(-(-p // s) for p, s in zip(shape[lead:], stride))
    per_dim = [_dim_terms(w, s, d) for w, s, d in zip(window, stride, dilation)]
    keep = tuple(slice(None) for _ in range(lead + k))
    total = None
    for terms in product(*per_dim):
        part = F.slice_dims(g, keep + tuple(slice(o0, o0 + c) for o0, c, _, _ in terms))
        pads = ([(0, 0)] * lead
                + [(a, q - n - a) for (_, _, a, _), q, n in zip(terms, blocks, out)]
                + [(b, s - b - c) for (_, c, _, b), s in zip(terms, stride)])
        part = F.pad(part, pads)
        total = part if total is None else F.add(total, part)
    assert total is not None   # every dim has at least one term
    # (..., Q1..Qk, s1..sk) -> (..., Q1, s1, ..., Qk, sk) -> (..., Q1*s1, ...) -> crop
    perm = tuple(range(lead)) + tuple(j for d in range(k) for j in (lead + d, lead + k + d))
    total = F.permute(total, perm)
    total = F.reshape(total, shape[:lead] + tuple(q * s for q, s in zip(blocks, stride)))
    return (F.slice_dims(total, keep[:lead] + tuple(slice(0, p) for p in shape[lead:])),)
