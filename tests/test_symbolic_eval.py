"""The closures that evaluate a fitted program at a new size (tracegrad/compiler/
symbolic_eval.py) give exactly what ``finish_program(instantiate(...))`` gives."""
import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn
import tracegrad.nn.functional as F
from tracegrad.compiler.symbolic import finish_program, instantiate, same
from tracegrad.compiler.symbolic_eval import Evaluator
from compile_step_testing import make_step


def _fit(fn, make, sizes):
    c = torch.compile(fn, dynamic=True)
    for n in sizes:
        c(*make(n))
    fits = [f for group in c._groups.values() for f in group.fits]
    assert fits, c.cache_info()
    return fits


CASES = {
    "mlp_step": (lambda: _mlp_step(), lambda n: (torch.randn(n, 6), torch.randint(0, 3, (n,)))),
    "softmax_mean": (lambda: (lambda x: F.softmax(x, 0) * x.mean(0)),
                     lambda n: (torch.randn(n, 5),)),
    "attention": (lambda: _attention(), lambda n: (torch.randn(2, n, 8),)),
    "transpose_reshape": (lambda: (lambda x: x.t().reshape(-1)[:x.shape[1]] * 2),
                          lambda n: (torch.randn(4, n),)),
}


def _mlp_step():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
    return make_step(net, torch.optim.Adam(net.parameters(), lr=1e-2))


def _attention():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    return lambda x: mha(x, x, x)[0]


@pytest.mark.parametrize("name", sorted(CASES))
def test_evaluator_equals_instantiate_and_finish(name):
    build, make = CASES[name]
    fits = _fit(build(), make, (5, 7, 9))
    for template in [t for f in fits for t in (f.run_forward, f.run_backward)]:
        if template is None:
            continue
        evaluator = Evaluator(template)
        for n in (2, 3, 11, 64, 257):
            want = finish_program(instantiate(template, n))
            got = evaluator.finish(evaluator(n))
            assert same(got, want), (name, n)
            assert [s.loop_ir for s in got.kernels] == [s.loop_ir for s in want.kernels]
            assert got.slots == want.slots


def _identities(a, b, pairs: dict) -> None:
    """Walk two equal object graphs side by side; ``pairs`` maps each object of ``a``
    to its counterpart in ``b`` (a second counterpart means sharing differs)."""
    if isinstance(a, (str, int, float, bool, type(None), np.generic, np.dtype)):
        return
    if id(a) in pairs:
        assert pairs[id(a)] is b, "an object shared in one program is two in the other"
        return
    pairs[id(a)] = b
    if isinstance(a, dict):
        for k in a:
            _identities(a[k], b[k], pairs)
    elif isinstance(a, (list, tuple)):
        for x, y in zip(a, b):
            _identities(x, y, pairs)
    elif hasattr(a, "__dict__") and not isinstance(a, type):
        for k, v in vars(a).items():
            _identities(v, getattr(b, k), pairs)


def test_objects_shared_in_the_template_stay_shared():
    (fit,) = _fit(lambda x: (x.t() @ x).exp().sum(0) + x.mean() + x[1:].sum(0),
                  lambda n: (torch.randn(n, 4),), (5, 7))[:1]
    for template in (fit.run_forward,):
        got, want = Evaluator(template)(13), instantiate(template, 13)
        forward, backward = {}, {}
        _identities(got, want, forward)
        _identities(want, got, backward)
        assert len(forward) == len(backward)
