"""``optim.swa_utils`` (AveragedModel, SWALR, update_bn, the averaging functions), which
SWA and EMA training scripts import; ``tracegrad.optim`` had no ``swa_utils``."""
import math

import numpy as np
import pytest

import tracegrad as tg

su = tg.optim.swa_utils


def _model(lib=tg):
    nn = lib.nn
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    rng = np.random.default_rng(0)
    with lib.no_grad():
        for p in m.parameters():
            p.copy_(lib.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
    return m


X = np.random.default_rng(1).standard_normal((8, 3)).astype(np.float32)


def _snapshots(avg, steps=4):
    """Train a little, averaging after each step; returns the parameters seen."""
    m = _model()
    opt = tg.optim.SGD(m.parameters(), lr=0.1)
    avg = avg(m)
    seen = []
    for _ in range(steps):
        opt.zero_grad()
        (m(tg.tensor(X)) ** 2).mean().backward()
        opt.step()
        avg.update_parameters(m)
        seen.append([p.detach().numpy().copy() for p in m.parameters()])
    return m, avg, seen


def test_swa_is_the_mean_of_the_models_seen():
    m, avg, seen = _snapshots(su.AveragedModel)
    assert int(avg.n_averaged) == 4 and str(avg.n_averaged.dtype) == "tracegrad.int64"
    for p, snaps in zip(avg.module.parameters(), zip(*seen)):
        np.testing.assert_allclose(p.detach().numpy(), np.mean(snaps, axis=0), rtol=1e-5,
                                   atol=1e-6)
    # buffers follow the model (use_buffers=False)
    np.testing.assert_array_equal(avg.module[1].running_mean.numpy(), m[1].running_mean.numpy())
    assert list(avg.state_dict())[:2] == ["n_averaged", "module.0.weight"]   # own buffer first


@pytest.mark.parametrize("multi", [False, True])
def test_ema(multi):
    decay = 0.8
    fn = su.get_ema_multi_avg_fn(decay) if multi else None
    avg_fn = None if multi else su.get_ema_avg_fn(decay)
    _, avg, seen = _snapshots(lambda m: su.AveragedModel(m, avg_fn=avg_fn, multi_avg_fn=fn))
    for p, snaps in zip(avg.module.parameters(), zip(*seen)):
        want = snaps[0].astype(np.float64)
        for s in snaps[1:]:
            want = decay * want + (1 - decay) * s
        np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_swalr_anneals_to_swa_lr(strategy):
    w = tg.nn.Parameter(tg.ones(1))
    opt = tg.optim.SGD([w], lr=1.0)
    sched = su.SWALR(opt, swa_lr=0.1, anneal_epochs=4, anneal_strategy=strategy)
    got = []
    for _ in range(6):
        opt.step()
        sched.step()
        got.append(opt.param_groups[0]["lr"])
    anneal = (lambda t: t) if strategy == "linear" else (lambda t: (1 - math.cos(math.pi * t)) / 2)
    want = [0.1 * anneal(min(1, k / 4)) + 1.0 * (1 - anneal(min(1, k / 4))) for k in range(1, 7)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert sched.get_last_lr() == [got[-1]]
    with pytest.raises(ValueError, match="anneal_strategy"):
        su.SWALR(opt, 0.1, anneal_strategy="step")
    with pytest.raises(ValueError, match="anneal_epochs"):
        su.SWALR(opt, 0.1, anneal_epochs=-1)


def test_update_bn_recomputes_running_stats():
    m = _model()
    loader = tg.utils.data.DataLoader(tg.utils.data.TensorDataset(tg.tensor(X)), batch_size=4)
    m.eval()
    su.update_bn(loader, m)
    assert not m.training and m[1].momentum == 0.1
    h = X @ m[0].weight.detach().numpy().T + m[0].bias.detach().numpy()
    halves = [h[:4], h[4:]]
    np.testing.assert_allclose(m[1].running_mean.numpy(), h.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m[1].running_var.numpy(),
                               np.mean([b.var(0, ddof=1) for b in halves], axis=0), rtol=1e-5)
    assert int(m[1].num_batches_tracked) == 2


def test_matches_torch():
    torch = pytest.importorskip("torch")
    results = []
    for lib in (tg, torch):
        m = _model(lib)
        opt = lib.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        avg = lib.optim.swa_utils.AveragedModel(m)
        sched = lib.optim.swa_utils.SWALR(opt, swa_lr=0.02, anneal_epochs=3)
        lrs = []
        for i in range(7):
            opt.zero_grad()
            (m(lib.tensor(X)) ** 2).mean().backward()
            opt.step()
            if i >= 2:
                avg.update_parameters(m)
                sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        loader = lib.utils.data.DataLoader(lib.utils.data.TensorDataset(lib.tensor(X)),
                                           batch_size=3)
        lib.optim.swa_utils.update_bn(loader, avg)
        avg.eval()
        results.append((lrs, {k: v.detach().numpy() for k, v in avg.state_dict().items()},
                        avg(lib.tensor(X)).detach().numpy()))
    (l1, s1, y1), (l2, s2, y2) = results
    np.testing.assert_allclose(l1, l2, rtol=1e-12)
    assert list(s1) == list(s2)
    for k in s1:
        np.testing.assert_allclose(s1[k], s2[k], rtol=1e-5, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-5)
