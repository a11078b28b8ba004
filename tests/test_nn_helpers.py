"""Shared helpers for the nn tests: float64 tensors and a fast gradcheck."""
from __future__ import annotations

import numpy as np

import tracegrad as torch
import tracegrad.nn  # noqa: F401  (tracegrad/__init__ may not import nn yet)
from tracegrad.autograd import gradcheck


def t64(a, requires_grad: bool = True):
    """A float64 leaf tensor from an array-like (copying)."""
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def rand64(*shape, seed: int = 0, scale: float = 1.0, requires_grad: bool = True):
    rng = np.random.default_rng(seed)
    return t64(rng.standard_normal(shape) * scale, requires_grad)


def _flatten(out) -> list:
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(o)]
    return [out]


def projected_gradcheck(fn, inputs, seed: int = 0, **kw) -> bool:
    """gradcheck of ``sum(fn(*inputs) * R)`` for fixed random R per output.

    One backward pass per input instead of one per output element; a wrong gradient
    still shows up (with probability 1) through the random projection.
    """
    rng = np.random.default_rng(seed)
    weights = {}

    def scalar(*args):
        outs = _flatten(fn(*args))
        total = None
        for i, o in enumerate(outs):
            if o is None or not o.is_floating_point():
                continue
            if i not in weights:
                weights[i] = torch.tensor(rng.standard_normal(tuple(o.shape)))
            term = (o * weights[i].to(o.dtype)).sum()
            total = term if total is None else total + term
        return total
    return gradcheck(scalar, tuple(inputs), **kw)


def module_gradcheck(module, *inputs, seed: int = 0, **kw) -> bool:
    """gradcheck a float64 module over its inputs and all of its parameters."""
    module.double()
    params = [p for p in module.parameters() if p.requires_grad]
    n = len(inputs)
    return projected_gradcheck(lambda *args: module(*args[:n]), tuple(inputs) + tuple(params),
                               seed=seed, **kw)


def test_projected_gradcheck_catches_a_wrong_gradient():
    x = rand64(3, 4)
    assert projected_gradcheck(lambda a: (a * a).tanh(), (x,))
    # detach half of the graph: the analytic gradient is then wrong
    bad = lambda a: a * a.detach()  # noqa: E731
    assert not projected_gradcheck(bad, (x,), raise_exception=False)
