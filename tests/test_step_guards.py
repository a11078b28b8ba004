"""The guards of a compiled training step after their fast path has been primed: an
option replaced, a number turning zero, a list changed in place, a parameter appended
in place all retrace; a new learning rate does not."""
import numpy as np

import tracegrad
import tracegrad.nn as nn
from compile_step_testing import make_step

_rng = np.random.default_rng(0)
X = tracegrad.from_numpy(_rng.standard_normal((8, 6)).astype(np.float32))
Y = tracegrad.from_numpy(_rng.integers(0, 3, 8))


def _setup(cls, **kw):
    tracegrad.manual_seed(0)
    model = nn.Linear(6, 3)
    opt = cls(model.parameters(), **kw)
    return model, opt, make_step(model, opt)


def _twins(cls, edit, **kw):
    """Run compiled and eager for 3 steps, ``edit`` both optimizers, run 3 more; return
    both models and the compiled step."""
    (m1, o1, s1), (m2, o2, s2) = _setup(cls, **kw), _setup(cls, **kw)
    compiled = tracegrad.compile(s1, fullgraph=True)
    for _ in range(3):
        compiled(X, Y)
        s2(X, Y)
    misses = compiled.cache_info().misses
    edit(m1, o1)
    edit(m2, o2)
    for _ in range(3):
        compiled(X, Y)
        s2(X, Y)
    for a, b in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)
    return compiled, misses


def test_a_new_learning_rate_replays():
    def edit(model, opt):
        opt.param_groups[0]["lr"] = 0.01
    compiled, misses = _twins(tracegrad.optim.SGD, edit, lr=0.1)
    assert compiled.cache_info().misses == misses


def test_weight_decay_becoming_nonzero_retraces():
    def edit(model, opt):
        opt.param_groups[0]["weight_decay"] = 0.1
    compiled, misses = _twins(tracegrad.optim.SGD, edit, lr=0.1, momentum=0.9)
    assert compiled.cache_info().misses > misses


def test_betas_list_changed_in_place_retraces():
    def as_list(model, opt):
        opt.param_groups[0]["betas"] = [0.9, 0.999]   # a mutable option: no fast path

    compiled, _ = _twins(tracegrad.optim.Adam, as_list, lr=0.01)
    (entry,) = compiled._cache.values()
    assert entry.guards_hold()
    opt = [c.cell_contents for c in compiled.fn.__closure__
           if isinstance(c.cell_contents, tracegrad.optim.Adam)][0]
    opt.param_groups[0]["betas"][0] = 0.0   # beta1 turning zero changes the update
    assert not entry.guards_hold()


def test_parameter_appended_in_place_retraces():
    extra = {}

    def edit(model, opt):
        p = nn.Parameter(tracegrad.ones(3))
        extra.setdefault("ps", []).append(p)
        opt.param_groups[0]["params"].append(p)   # never read by the loss: grad stays None
    compiled, misses = _twins(tracegrad.optim.SGD, edit, lr=0.1)
    assert compiled.cache_info().misses > misses
