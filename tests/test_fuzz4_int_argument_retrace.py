"""A Python int argument that changes at every call (a step counter for gradient
accumulation, ``if (i + 1) % k == 0: opt.step()``) was part of the signature: 12 compiles
in 12 steps. It is now symbolic after it changes (NOTE (int arguments) in
tracegrad/compiler/int_args.py), with a guard on the branch."""
from __future__ import annotations

import numpy as np

import tracegrad as torch
import tracegrad.nn.functional as F
from tracegrad import nn


def _accumulate(compiled, k=3, steps=12):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step(x, y, i):
        loss = F.cross_entropy(model(x), y) / k
        loss.backward()
        if (i + 1) % k == 0:
            opt.step()
            opt.zero_grad(set_to_none=False)
        return loss
    if compiled:
        step = torch.compile(step)
    rng = np.random.default_rng(0)
    with _nothing():
        losses = [float(step(torch.tensor(rng.standard_normal((5, 4)).astype(np.float32)),
                             torch.tensor(rng.integers(0, 3, 5)), i)) for i in range(steps)]
    return losses, [p.detach().numpy().copy() for p in model.parameters()], step


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_step_counter_argument_gives_eager_numbers():
    (lc, pc, _), (le, pe, _) = _accumulate(True), _accumulate(False)
    np.testing.assert_allclose(lc, le, rtol=1e-5)
    for a, b in zip(pc, pe):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_step_counter_argument_compiles_a_bounded_number_of_times():
    """The floor is the step's own traces, which a bool argument ``(i + 1) % k == 0`` needs
    too: i=0 (no .grad yet), a step without the update, the first update (SGD's momentum
    buffer made) and the later updates: 4. The int adds one: i=1 is specialised (as sizes
    0 and 1 are). Then no more, however many steps."""
    _, _, step = _accumulate(True)
    assert step.cache_info().misses <= 5
    _, _, longer = _accumulate(True, steps=30)
    assert longer.cache_info().misses == step.cache_info().misses
    assert "int guard (i + 1) % 3 == 0" in step.cache_info().symbolic
