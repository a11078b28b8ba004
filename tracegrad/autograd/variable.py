"""The PyTorch 0.3 ``Variable`` API: since 0.4 a Variable is just a tensor."""
from __future__ import annotations

from .._ops.creation import tensor
from .._tensor import Tensor


def Variable(data, requires_grad: bool = False, volatile: bool = False):
    """Wrap ``data`` as a tensor. ``volatile=True`` (legacy inference mode): nothing
    computed from it records a graph, even with parameters that require grad."""
    t = data.detach() if isinstance(data, Tensor) else tensor(data)
    if volatile:
        t._requires_grad = None
    elif requires_grad:
        t.requires_grad_(True)
    return t
