"""Learning-rate schedulers against their closed-form values."""
import math

import pytest

import tracegrad as torch
from tracegrad import optim
from tracegrad.optim import lr_scheduler as S


def make_opt(lr=1.0, cls=optim.SGD, **kw):
    return cls([torch.zeros(1, requires_grad=True)], lr=lr, **kw)


def lrs(sched, n):
    out = [sched.get_last_lr()[0]]
    for _ in range(n - 1):
        sched.optimizer.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out


def close(a, b, tol=1e-12):
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert math.isclose(x, y, rel_tol=tol, abs_tol=tol), (i, x, y)


def test_step_multistep_exponential_lambda():
    close(lrs(S.StepLR(make_opt(), step_size=3, gamma=0.5), 10),
          [0.5 ** (t // 3) for t in range(10)])
    close(lrs(S.MultiStepLR(make_opt(), milestones=[2, 5, 5], gamma=0.1), 8),
          [0.1 ** sum(t >= m for m in (2, 5, 5)) for t in range(8)])
    close(lrs(S.ExponentialLR(make_opt(2.0), gamma=0.9), 8), [2.0 * 0.9 ** t for t in range(8)])
    close(lrs(S.LambdaLR(make_opt(0.5), lambda e: 1 / (e + 1)), 6),
          [0.5 / (t + 1) for t in range(6)])
    close(lrs(S.MultiplicativeLR(make_opt(1.0), lambda e: 0.5), 4), [1, 0.5, 0.25, 0.125])
    close(lrs(S.LinearLR(make_opt(1.0), start_factor=0.25, total_iters=3), 6),
          [0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    close(lrs(S.ConstantLR(make_opt(1.0), factor=0.5, total_iters=2), 4), [0.5, 0.5, 1.0, 1.0])


@pytest.mark.parametrize("T_max,eta_min", [(10, 0.0), (7, 0.05)])
def test_cosine_annealing_matches_closed_form_past_T_max(T_max, eta_min):
    base = 0.3
    want = [eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / T_max)) / 2
            for t in range(3 * T_max + 2)]
    close(lrs(S.CosineAnnealingLR(make_opt(base), T_max=T_max, eta_min=eta_min), len(want)),
          want, tol=1e-9)


def test_param_groups_get_their_own_base_lrs():
    a, b = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.1}], lr=1.0)
    sched = S.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    sched.step()
    assert sched.get_last_lr() == [0.5, 0.05] and sched.base_lrs == [1.0, 0.1]
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.05]


def _anneal_cos(start, end, pct):
    return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)


def _anneal_lin(start, end, pct):
    return start + (end - start) * pct


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_one_cycle_two_phases_with_momentum(strategy):
    f = _anneal_cos if strategy == "cos" else _anneal_lin
    total, max_lr = 10, 1.0
    opt = make_opt(0.1, momentum=0.9)
    sched = S.OneCycleLR(opt, max_lr=max_lr, total_steps=total, anneal_strategy=strategy)
    init, low = max_lr / 25, max_lr / 25 / 1e4
    end1 = 0.3 * total - 1
    want_lr, want_m = [], []
    for t in range(total):
        if t <= end1:
            pct = t / end1
            want_lr.append(f(init, max_lr, pct))
            want_m.append(f(0.95, 0.85, pct))
        else:
            pct = (t - end1) / (total - 1 - end1)
            want_lr.append(f(max_lr, low, pct))
            want_m.append(f(0.85, 0.95, pct))
    got_lr, got_m = [], []
    for t in range(total):
        got_lr.append(opt.param_groups[0]["lr"])
        got_m.append(opt.param_groups[0]["momentum"])
        opt.step()
        if t < total - 1:
            sched.step()
    close(got_lr, want_lr)
    close(got_m, want_m)
    sched.step()  # step == total_steps is allowed, one more is an error
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        sched.step()


def test_one_cycle_three_phase_cycles_adam_beta1():
    total = 20
    opt = make_opt(0.1, cls=optim.Adam, betas=(0.9, 0.99))
    sched = S.OneCycleLR(opt, max_lr=0.5, epochs=4, steps_per_epoch=5, three_phase=True,
                         pct_start=0.25)
    init, low = 0.5 / 25, 0.5 / 25 / 1e4
    e1, e2, e3 = 0.25 * total - 1, 2 * 0.25 * total - 2, total - 1
    got, betas = [], []
    for t in range(total):
        got.append(opt.param_groups[0]["lr"])
        betas.append(opt.param_groups[0]["betas"])
        if t < total - 1:
            sched.step()
    for t, (lr, beta) in enumerate(zip(got, betas)):
        if t <= e1:
            want, m = _anneal_cos(init, 0.5, t / e1), _anneal_cos(0.95, 0.85, t / e1)
        elif t <= e2:
            p = (t - e1) / (e2 - e1)
            want, m = _anneal_cos(0.5, init, p), _anneal_cos(0.85, 0.95, p)
        else:
            p = (t - e2) / (e3 - e2)
            want, m = _anneal_cos(init, low, p), 0.95
        assert math.isclose(lr, want, rel_tol=1e-12), t
        assert math.isclose(beta[0], m, rel_tol=1e-12) and beta[1] == 0.99, t
    with pytest.raises(ValueError, match="momentum or beta1"):
        S.OneCycleLR(make_opt(cls=optim.Adagrad), max_lr=1.0, total_steps=5)
    with pytest.raises(ValueError, match="total_steps OR"):
        S.OneCycleLR(make_opt(), max_lr=1.0)


def test_reduce_lr_on_plateau():
    opt = make_opt(1.0)
    sched = S.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2, cooldown=1,
                                min_lr=0.2)
    metrics = [10, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]
    got = []
    for m in metrics:
        sched.step(m)
        got.append(opt.param_groups[0]["lr"])
    # bad epochs 1, 2, 3 -> reduce at the 3rd; one cooldown step; then 3 more bad epochs ...
    assert got == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.2]
    assert sched.get_last_lr() == [0.2]

    opt = make_opt(1.0)
    sched = S.ReduceLROnPlateau(opt, mode="max", threshold=0.1, threshold_mode="abs",
                                patience=0)
    for m in (1.0, 1.05, 1.2):
        sched.step(m)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)  # 1.05 is not > 1.0 + 0.1
    with pytest.raises(ValueError, match="Factor"):
        S.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="unknown"):
        S.ReduceLROnPlateau(opt, mode="up")


def test_rel_threshold_mode():
    opt = make_opt(1.0)
    sched = S.ReduceLROnPlateau(opt, threshold=0.1, patience=0)
    sched.step(1.0)
    sched.step(0.95)  # not below 1.0 * (1 - 0.1)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)


def test_scheduler_state_dict_resumes():
    opt = make_opt(1.0)
    sched = S.CosineAnnealingLR(opt, T_max=10)
    for _ in range(4):
        opt.step()
        sched.step()
    sd = sched.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 4
    rest = lrs(sched, 5)

    opt2 = make_opt(1.0)
    opt2.param_groups[0]["initial_lr"] = 1.0
    opt2.param_groups[0]["lr"] = rest[0]
    sched2 = S.CosineAnnealingLR(opt2, T_max=10, last_epoch=3)
    sched2.load_state_dict(sd)
    close(lrs(sched2, 5), rest, tol=1e-12)
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(make_opt(), step_size=1, last_epoch=5)
    lam = S.LambdaLR(make_opt(), lambda e: 1.0)
    assert lam.state_dict()["lr_lambdas"] == [None]
