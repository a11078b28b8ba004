"""Per-op eager overhead in µs per op: ``a + b`` on 1-element tensors, without and with
autograd recording; view ops on a 2x2 tensor that requires grad (``x.t()``, ``x[0]``,
``x[:, 0]``, ``x.view(-1)``), whose bookkeeping (base, shared version counter, node) must
stay cheap (NOTE (eager view fast paths) in tracegrad/_ops/eager_views.py); an index
tensor ``x[idx]`` (a gather) and a row write ``x[0] = v`` (on a tensor without grad).
Peers: NumPy on arrays of the same size, PyTorch eager."""
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


def _column(x, _):
    return x[:, 0]


def _flatten(x, _):
    return x.view(-1)


def _take(x, index):
    return x[index]


def _set_row(x, value):
    x[0] = value


def _no_arg(lib):
    return None


def _index(lib):
    return lib.array([1, 0]) if lib is np else lib.tensor([1, 0])


def _row(lib):
    return lib.ones(2, dtype=np.float32) if lib is np else lib.ones(2)


# (label, op, NumPy's op, whether x requires grad, the op's second argument from a library)
_VIEWS = (("view x.t()", _transpose, lambda x, _: x.T, True, _no_arg),
          ("view x[0]", _select_row, _select_row, True, _no_arg),
          ("view x[:, 0]", _column, _column, True, _no_arg),
          ("view x.view(-1)", _flatten, lambda x, _: x.reshape(-1), True, _no_arg),
          ("index x[idx]", _take, _take, True, _index),
          ("setitem x[0] = v", _set_row, _set_row, False, _row))


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
    for label, fn, np_fn, grad, arg in _VIEWS:
        row = Row(NAME, label, "2x2", "us/op")
        x = tracegrad.ones(2, 2, requires_grad=grad)
        arms = {"eager": _loop(fn, x, arg(tracegrad)),
                "numpy": _loop(np_fn, np.ones((2, 2), np.float32), arg(np))}
        row.notes["compiled"] = "n/a"
        if "torch" in cfg.peers:
            torch = cfg.peers["torch"]
            arms["torch"] = _loop(fn, torch.ones(2, 2, requires_grad=grad), arg(torch))
        row.times = measure(arms, cfg, ops_per_call=OPS)
        rows.append(row)
    return rows
