"""Every scheduler of ``torch.optim.lr_scheduler`` as a user's training loop drives it:
the learning rates step for step against PyTorch's, and a compiled step that keeps
serving the same program while they change (issue 11: lr is a runtime value)."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad

torch = pytest.importorskip("torch")

SCHEDULERS = {
    "StepLR": lambda S, opt: S.StepLR(opt, 3, gamma=0.5),
    "MultiStepLR": lambda S, opt: S.MultiStepLR(opt, [2, 5], 0.3),
    "ExponentialLR": lambda S, opt: S.ExponentialLR(opt, 0.9),
    "CosineAnnealingLR": lambda S, opt: S.CosineAnnealingLR(opt, 7, eta_min=1e-4),
    "LambdaLR": lambda S, opt: S.LambdaLR(opt, lambda epoch: 1 / (epoch + 1)),
    "MultiplicativeLR": lambda S, opt: S.MultiplicativeLR(opt, lambda epoch: 0.95),
    "LinearLR": lambda S, opt: S.LinearLR(opt, 0.2, 1.0, 4),
    "ConstantLR": lambda S, opt: S.ConstantLR(opt, 0.5, 3),
    "OneCycleLR": lambda S, opt: S.OneCycleLR(opt, 0.1, total_steps=20),
    "CyclicLR": lambda S, opt: S.CyclicLR(opt, 0.01, 0.1, step_size_up=3),
    "PolynomialLR": lambda S, opt: S.PolynomialLR(opt, 20, 2.0),
    "CosineAnnealingWarmRestarts": lambda S, opt: S.CosineAnnealingWarmRestarts(opt, 3, 2,
                                                                               1e-4),
    "SequentialLR": lambda S, opt: S.SequentialLR(
        opt, [S.LinearLR(opt, 0.1, total_iters=3), S.ExponentialLR(opt, 0.9)], milestones=[3]),
    "SequentialLR of three": lambda S, opt: S.SequentialLR(
        opt, [S.ConstantLR(opt, 0.5, 2), S.PolynomialLR(opt, 4), S.StepLR(opt, 2)], [2, 6]),
    "ChainedScheduler": lambda S, opt: S.ChainedScheduler(
        [S.ConstantLR(opt, 0.5, 4), S.ExponentialLR(opt, 0.9)]),
}


def _learning_rates(lib, make, steps=12, compiled=False):
    model = lib.nn.Linear(4, 3)
    opt = lib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = make(lib.optim.lr_scheduler, opt)
    x = lib.tensor(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32))
    y = lib.tensor(np.arange(8) % 3)

    def step():
        opt.zero_grad()
        loss = lib.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    if compiled:
        step = lib.compile(step)
    rates = []
    for _ in range(steps):
        step()
        sched.step()
        rates.append(opt.param_groups[0]["lr"])
    return rates, sched, step


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_learning_rates_match_pytorch(name):
    ours, _, _ = _learning_rates(tracegrad, SCHEDULERS[name])
    theirs, _, _ = _learning_rates(torch, SCHEDULERS[name])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("name", ["PolynomialLR", "CosineAnnealingWarmRestarts",
                                  "SequentialLR", "ChainedScheduler"])
def test_changing_learning_rates_reuse_the_compiled_step(name):
    _, _, step = _learning_rates(tracegrad, SCHEDULERS[name], compiled=True)
    assert step.cache_info().misses <= 2    # first call, then the momentum buffers


def test_sequential_state_dict_round_trip_continues_the_same_rates():
    make = SCHEDULERS["SequentialLR"]
    _, sched, _ = _learning_rates(tracegrad, make, steps=2)
    saved = sched.state_dict()
    assert [s["last_epoch"] for s in saved["_schedulers"]] == [2, -1]
    expected = []
    for _ in range(4):
        sched.step()
        expected.append(sched.get_last_lr()[0])
    model = tracegrad.nn.Linear(4, 3)
    opt = tracegrad.optim.SGD(model.parameters(), lr=0.1)
    restored = make(tracegrad.optim.lr_scheduler, opt)
    restored.load_state_dict(saved)
    opt.param_groups[0]["lr"] = saved["_last_lr"][0]
    got = []
    for _ in range(4):
        restored.step()
        got.append(restored.get_last_lr()[0])
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_combined_schedulers_refuse_plateau_and_other_optimizers():
    model = tracegrad.nn.Linear(2, 2)
    opt = tracegrad.optim.SGD(model.parameters(), lr=0.1)
    other = tracegrad.optim.SGD(model.parameters(), lr=0.1)
    S = tracegrad.optim.lr_scheduler
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        S.ChainedScheduler([S.ReduceLROnPlateau(opt)])
    with pytest.raises(ValueError, match="same optimizer"):
        S.SequentialLR(opt, [S.StepLR(opt, 2), S.StepLR(other, 2)], [2])
    with pytest.raises(ValueError, match="one more than the number of milestone"):
        S.SequentialLR(opt, [S.StepLR(opt, 2)], [2])
    with pytest.raises(ValueError, match="positive integer T_0"):
        S.CosineAnnealingWarmRestarts(opt, 0)


def test_warm_restarts_with_fractional_epochs_match_pytorch():
    rates = {}
    for lib in (tracegrad, torch):
        opt = lib.optim.SGD(lib.nn.Linear(2, 2).parameters(), lr=0.1)
        sched = lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, 2, 3, 0.001)
        rates[lib] = []
        for epoch in range(6):
            for i in range(4):
                sched.step(epoch + i / 4)
                rates[lib].append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(rates[tracegrad], rates[torch], rtol=1e-12)


def test_module_examples_run():
    import doctest

    from tracegrad.optim import _lr_chains
    assert doctest.testmod(_lr_chains).failed == 0
