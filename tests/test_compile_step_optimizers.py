"""Every optimizer inside a compiled whole training step (issue 11): one program, no
fallback (fullgraph=True), equal to eager training from the same seed in parameters,
``.grad`` and optimizer state, with and without clip_grad_norm_, for the MLP, the CNN and
the LSTM; hyper-parameters changed by schedulers or by hand never recompile."""
import numpy as np
import pytest

import tracegrad
from compile_step_testing import CLASSES, CONFIGS, Pair, config_id, first_config

optim = tracegrad.optim


def test_the_configurations_cover_every_optimizer():
    closure_based = {"LBFGS"}   # test_compile_step_optimizers_retrace.py
    modules = {"Optimizer", "lr_scheduler", "swa_utils"}   # optim.__all__ lists them too
    assert set(CLASSES) == set(optim.__all__) - modules - closure_based


def _mlp_cases():
    """Each optimizer's first configuration with and without clipping; the other
    configurations (options that change the update's shape) once, without: a compile
    costs more than 100 replayed steps, and the suite's time is the budget."""
    cases = []
    for config in CONFIGS:
        first = config[1] is first_config(config[0])
        for clip in ([None, 0.5] if first else [None]):
            cases.append(pytest.param(config, clip, id=config_id(config)
                                      + ("-clip" if clip else "-noclip")))
    return cases


@pytest.mark.parametrize("config, clip", _mlp_cases())
def test_mlp_compiled_step_equals_eager_at_every_one_of_100_steps(config, clip):
    info = Pair("mlp", *config, clip=clip).run(100, every_step=True)
    # the first call traces with no .grad and no state, the second with both; then replay
    assert (info.misses, info.hits) == (2, 98)


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_float64_two_groups_agree_to_rounding(config):
    """In float64 rounding differences stay near 1e-15, so a formula that differs from
    the eager rule by a little (an eps misplaced, a float32 step count) shows; the second
    group has its own lr."""
    name, kw = config

    def two_groups(model):
        params = list(model.parameters())
        return [{"params": params[:2]}, {"params": params[2:], "lr": kw["lr"] * 0.3}]
    pair = Pair("mlp64", name, kw, clip=0.5, select=two_groups)
    info = pair.run(12, every_step=True, tol=1e-10)
    assert info.misses == 2


# NOTE: the CNN and LSTM steps cost more to compile (0.5-1 s each, cold) and to run
# eagerly (4-7 ms a step), so each optimizer runs once per model and clip setting for
# 20 steps, compared at the end, and at every step for the clipped LSTM (marked slow:
# `-m "not slow"` leaves them out of a quick loop).
@pytest.mark.slow
@pytest.mark.parametrize("clip", [None, 1.0], ids=["noclip", "clip"])
@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize("model", ["cnn", "lstm"])
def test_cnn_and_lstm_compiled_steps_equal_eager(model, name, clip):
    every_step = model == "lstm" and clip is not None
    info = Pair(model, name, first_config(name), clip=clip).run(20, every_step=every_step)
    assert info.misses == 2


# ---- hyper-parameters that change between steps ---------------------------------------
# The configuration of each optimizer whose hand-set option below is in use, and the
# change made after step 6 (a value stays non-zero: no option changes the update's shape).
HAND_SET = {
    "SGD": (dict(lr=0.1, momentum=0.9, dampening=0.1), dict(momentum=0.5, dampening=0.3)),
    "Adam": (dict(lr=1e-2, weight_decay=0.1), dict(betas=(0.8, 0.99), weight_decay=0.05,
                                                  eps=1e-6)),
    "AdamW": (dict(lr=1e-2), dict(betas=(0.85, 0.95), weight_decay=0.1)),
    "RMSprop": (dict(lr=1e-2, momentum=0.5, centered=True), dict(alpha=0.9, momentum=0.2)),
    "Adagrad": (dict(lr=0.1, lr_decay=0.01), dict(lr_decay=0.05, eps=1e-6)),
    "Adadelta": (dict(lr=1.0), dict(rho=0.8)),
    "Adamax": (dict(lr=1e-2), dict(betas=(0.8, 0.9))),
    "NAdam": (dict(lr=1e-2), dict(betas=(0.8, 0.99), momentum_decay=0.01)),
    "RAdam": (dict(lr=1e-2), dict(betas=(0.85, 0.95))),
    "Rprop": (dict(lr=1e-2), dict(etas=(0.4, 1.3), step_sizes=(1e-3, 0.02))),
    "ASGD": (dict(lr=1e-2, t0=8), dict(lambd=1e-2, alpha=0.5, t0=4)),
}


def test_hand_set_options_cover_every_optimizer():
    assert set(HAND_SET) == set(CLASSES)


@pytest.mark.parametrize("name", CLASSES)
def test_step_lr_and_hand_set_options_change_values_without_recompiling(name):
    """StepLR changes lr, a hand-set change of other options at step 6; zero_grad keeps
    the .grad tensors (set_to_none=False), which the program then writes in place."""
    kw, change = HAND_SET[name]

    def set_by_hand(i, opt):
        if i == 6:
            opt.param_groups[0].update(change)
    pair = Pair("mlp", name, kw, set_to_none=False,
                schedule=lambda o: optim.lr_scheduler.StepLR(o, 3, gamma=0.7))
    held = None
    for i in range(2):   # .grad exists from the first step on: the same tensor stays
        pair.run(1, between=set_by_hand)
        held = held or [p.grad for p in pair.models[1].parameters()]
    info = pair.run(16, every_step=True, between=lambda i, o: set_by_hand(i + 2, o))
    assert info.misses == 2
    assert all(p.grad is g for p, g in zip(pair.models[1].parameters(), held))
    assert pair.opts[1].param_groups[0]["lr"] == pytest.approx(kw["lr"] * 0.7 ** 6)
    for key, value in change.items():
        assert pair.opts[1].param_groups[0][key] == value


CYCLING = {
    "OneCycleLR": lambda o: optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=31),
    "CyclicLR": lambda o: optim.lr_scheduler.CyclicLR(o, base_lr=1e-3, max_lr=0.05,
                                                      step_size_up=7, mode="triangular2"),
}


@pytest.mark.parametrize("scheduler", sorted(CYCLING))
@pytest.mark.parametrize("name, kw", [("SGD", dict(lr=0.1, momentum=0.9)),
                                      ("Adam", dict(lr=1e-2)),
                                      ("NAdam", dict(lr=1e-2)),
                                      ("RAdam", dict(lr=1e-2))])
def test_cycling_schedulers_change_lr_and_momentum_without_recompiling(name, kw, scheduler):
    pair = Pair("mlp", name, kw, schedule=CYCLING[scheduler])
    momenta = []

    def record(i, opt):
        group = opt.param_groups[0]
        momenta.append(group["momentum"] if "momentum" in group else group["betas"][0])
    info = pair.run(30, every_step=True, between=record)
    assert info.misses == 2
    assert len(set(momenta)) > 10   # the momentum really changed from step to step


def test_radam_switches_to_the_rectified_step_inside_one_program():
    """rho_t > 5 from step 6 with beta2 = 0.9: the same program takes both branches."""
    name, kw = "RAdam", dict(lr=1e-2, betas=(0.9, 0.9))
    pair = Pair("mlp", name, kw)
    info = pair.run(12, every_step=True)
    assert info.misses == 2 and info.hits == 10


def test_asgd_averaging_starts_at_t0_inside_one_program():
    pair = Pair("mlp", "ASGD", dict(lr=1e-2, t0=3))
    info = pair.run(8, every_step=True)
    assert info.misses == 2
    mu = [float(s["mu"].numpy()) for s in pair.opts[1].state.values()]
    assert all(m < 1 for m in mu), mu


@pytest.mark.parametrize("name", CLASSES)
def test_parameters_with_different_step_counts_in_one_group(name):
    """One group, the second parameter without a gradient for the first 3 steps: its
    update must appear once it has one (a guard), and each parameter's bias corrections
    use its own step count (the readers once all read the last parameter's)."""
    kw, _ = HAND_SET[name]
    results = []
    for compiled in (False, True):
        w1 = tracegrad.tensor([1.0, 2.0, -0.5], requires_grad=True)
        w2 = tracegrad.tensor([3.0, -1.0], requires_grad=True)
        opt = getattr(optim, name)([w1, w2], **kw)
        step = tracegrad.compile(opt.step, fullgraph=True) if compiled else opt.step
        for i in range(8):
            w1.grad = tracegrad.tensor([0.5, -1.0, 0.25]) * (1 + i)
            w2.grad = tracegrad.tensor([2.0, 0.5]) / (1 + i) if i >= 3 else None
            step()
        results.append((w1.detach().numpy().copy(), w2.detach().numpy().copy(),
                        {k: v.numpy().copy() for k, v in opt.state[w1].items()}))
    (e1, e2, es), (c1, c2, cs) = results
    assert not np.array_equal(c2, [3.0, -1.0])
    np.testing.assert_allclose(c1, e1, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(c2, e2, rtol=1e-5, atol=1e-7)
    for k in es:
        np.testing.assert_allclose(cs[k], es[k], rtol=1e-5, atol=1e-7, err_msg=k)


@pytest.mark.parametrize("name", sorted(set(CLASSES) - {"Adadelta"}))
def test_each_group_update_is_one_fused_kernel(name):
    """The whole rule (state, runtime scalars, RAdam's and ASGD's where) fuses into one
    loop per parameter, and the loops of every parameter and the step counts run as ONE
    kernel per group (NOTE (horizontal fusion)). (Adadelta's step ``delta`` feeds two
    writes and is materialised: its kernels depend on each other and stay apart.)"""
    pair = Pair("mlp", name, first_config(name))
    pair.run(2)
    report = pair.compiled.explain(*pair.data[2])
    update = [k for k in report.kernels if "update" in k.stage]
    assert len(update) == 1, [k.ops for k in update]
    # one loop per parameter's rule (and per step count) inside the one kernel
    assert update[0].loop_ir.count(" for h") >= len(list(pair.models[1].parameters()))
