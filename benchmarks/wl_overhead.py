"""Per-op eager overhead in µs per op: ``a + b`` on 1-element tensors, without and with
autograd recording, and two view ops (``x.t()`` and ``x[0]`` on a 2x2 tensor), whose
bookkeeping (base, shared version counter) must stay cheap. Peers: NumPy on arrays of the
same size, PyTorch eager."""
from __future__ import annotations

import numpy as np

import tracegrad

from .harness import Config, Row, measure

NAME = "overhead"
OPS = 1000  # adds per timed call, so the Python call of the arm itself is amortised


def _loop(f, a, b):
    def run():
        for _ in range(OPS):
            f(a, b)
    return run


def _add(a, b):
    return a + b


def _transpose(x, _):
    return x.t()


def _select_row(x, _):
    return x[0]


_VIEWS = (("view x.t()", _transpose, lambda x, _: x.T), ("view x[0]", _select_row, _select_row))


def run(cfg: Config) -> list[Row]:
    rows = []
    for grad in (False, True):
        row = Row(NAME, "add, autograd" if grad else "add, no autograd", "1 elem", "us/op")
        a = tracegrad.ones(1, requires_grad=grad)
        b = tracegrad.ones(1)
        if grad:
            out = a + b
            row.note = "grad_fn recorded" if out.grad_fn is not None else "NO grad_fn recorded"
        arms = {"eager": _loop(_add, a, b)}
        na, nb = np.ones(1, np.float32), np.ones(1, np.float32)
        arms["numpy"] = _loop(np.add, na, nb)
        row.notes["compiled"] = "n/a"
        if "torch" in cfg.peers:
            torch = cfg.peers["torch"]
            ta = torch.ones(1, requires_grad=grad)
            tb = torch.ones(1)
            arms["torch"] = _loop(_add, ta, tb)
        row.times = measure(arms, cfg, ops_per_call=OPS)
        rows.append(row)
    for label, fn, np_fn in _VIEWS:
        row = Row(NAME, label, "2x2", "us/op")
        x = tracegrad.ones(2, 2, requires_grad=True)
        arms = {"eager": _loop(fn, x, None), "numpy": _loop(np_fn, np.ones((2, 2), np.float32), None)}
        row.notes["compiled"] = "n/a"
        if "torch" in cfg.peers:
            arms["torch"] = _loop(fn, cfg.peers["torch"].ones(2, 2, requires_grad=True), None)
        row.times = measure(arms, cfg, ops_per_call=OPS)
        rows.append(row)
    return rows
