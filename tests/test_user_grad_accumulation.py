"""Gradient accumulation as users write it: a compiled micro-batch step that only calls
``backward()`` (accumulating into ``.grad``), then ``opt.step(); opt.zero_grad()``. Each
cycle starts from new ``.grad`` tensors, which must neither change the values nor make
every cycle compile again."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn.functional as F
from tracegrad import nn

rng = np.random.default_rng(0)
BATCHES = [(torch.tensor(rng.standard_normal((16, 10)).astype(np.float32)),
            torch.tensor(rng.integers(0, 4, 16))) for _ in range(2)]


def _setup(make_opt, compiled, set_to_none=True):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 4))
    opt = make_opt(model.parameters())

    def micro(x, y):
        loss = F.cross_entropy(model(x), y) / len(BATCHES)
        loss.backward()
        return loss

    def update():
        opt.step()
        opt.zero_grad(set_to_none=set_to_none)
    if compiled:
        micro, update = torch.compile(micro), torch.compile(update)
    return model, micro, update


def _assert_same_parameters(a, b):
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize("make_opt", [
    lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: torch.optim.Adam(ps, lr=1e-2),
])
@pytest.mark.parametrize("set_to_none", [True, False])
def test_accumulating_micro_batches_match_eager_and_compile_once(make_opt, set_to_none):
    compiled = _setup(make_opt, True, set_to_none)
    eager = _setup(make_opt, False, set_to_none)
    for _ in range(5):
        for model, micro, update in (compiled, eager):
            for x, y in BATCHES:
                micro(x, y)
            update()
    _assert_same_parameters(compiled[0], eager[0])
    # micro: without and with a .grad to accumulate into; update: first step, then state
    assert compiled[1].cache_info().misses <= 2
    assert compiled[2].cache_info().misses <= 2


def test_a_kept_reference_to_an_old_gradient_still_gives_eager_values():
    make_opt = lambda ps: torch.optim.SGD(ps, lr=0.1)   # noqa: E731
    compiled = _setup(make_opt, True)
    eager = _setup(make_opt, False)
    kept = []
    for _ in range(3):
        for model, micro, update in (compiled, eager):
            micro(*BATCHES[0])
            kept.append(model[0].weight.grad)      # alive: the program must not assume
            micro(*BATCHES[1])                      # the .grad it accumulates into
            update()
    _assert_same_parameters(compiled[0], eager[0])
    for mine, theirs in zip(kept[0::2], kept[1::2]):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-7)


def test_a_gradient_set_by_hand_is_accumulated_into():
    make_opt = lambda ps: torch.optim.SGD(ps, lr=0.1)   # noqa: E731
    compiled = _setup(make_opt, True)
    eager = _setup(make_opt, False)
    for model, micro, update in (compiled, eager):
        for _ in range(2):
            micro(*BATCHES[0])
            micro(*BATCHES[1])
            update()
        for p in model.parameters():
            p.grad = torch.full_like(p, 0.5)
        micro(*BATCHES[0])
    for p, q in zip(compiled[0].parameters(), eager[0].parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-7)
