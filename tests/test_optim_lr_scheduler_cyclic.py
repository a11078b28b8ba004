"""CyclicLR: PyTorch's cyclical learning rate (and inverse momentum) schedule."""
import pytest

import tracegrad
from tracegrad.optim.lr_scheduler import CyclicLR

optim = tracegrad.optim


def _opt(cls=optim.SGD, **kw):
    return cls([tracegrad.zeros(2, requires_grad=True)], **kw)


def test_triangular_climbs_and_falls_with_momentum_the_other_way():
    opt = _opt(lr=1.0, momentum=0.9)
    sched = CyclicLR(opt, base_lr=0.1, max_lr=0.5, step_size_up=2, step_size_down=2)
    lrs, moms = [], []
    for _ in range(9):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        sched.step()
    assert lrs == pytest.approx([0.1, 0.3, 0.5, 0.3, 0.1, 0.3, 0.5, 0.3, 0.1])
    assert moms == pytest.approx([0.9, 0.85, 0.8, 0.85, 0.9, 0.85, 0.8, 0.85, 0.9])


def test_triangular2_halves_the_amplitude_each_cycle_and_beta1_cycles_for_adam():
    opt = _opt(optim.Adam, lr=1.0)
    sched = CyclicLR(opt, base_lr=0.0, max_lr=1.0, step_size_up=1, mode="triangular2",
                     base_momentum=0.8, max_momentum=0.9)
    lrs, betas = [], []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        betas.append(opt.param_groups[0]["betas"][0])
        sched.step()
    assert lrs == pytest.approx([0.0, 1.0, 0.0, 0.5, 0.0, 0.25])
    assert betas == pytest.approx([0.9, 0.8, 0.9, 0.85, 0.9, 0.875])
    assert opt.param_groups[0]["betas"][1] == 0.999


def test_bad_arguments_raise_as_pytorch_does():
    with pytest.raises(ValueError, match="mode is invalid"):
        CyclicLR(_opt(lr=0.1, momentum=0.9), 0.1, 1.0, mode="sawtooth")
    with pytest.raises(ValueError, match="cycle_momentum"):
        CyclicLR(_opt(optim.Adagrad, lr=0.1), 0.1, 1.0)
    with pytest.raises(ValueError, match="base_lr must have the same length"):
        CyclicLR(_opt(lr=0.1, momentum=0.9), [0.1, 0.2], 1.0)
    CyclicLR(_opt(optim.Adagrad, lr=0.1), 0.1, 1.0, cycle_momentum=False)


@pytest.mark.parametrize("kw", [dict(mode="triangular"), dict(mode="triangular2"),
                                dict(mode="exp_range", gamma=0.9),
                                dict(step_size_down=5),
                                dict(scale_fn=lambda x: 0.5 ** x, scale_mode="iterations")])
@pytest.mark.parametrize("cls", ["SGD", "Adam"])
def test_values_match_pytorch(cls, kw):
    torch = pytest.importorskip("torch")
    ours = getattr(optim, cls)([tracegrad.zeros(2, requires_grad=True)], lr=0.1,
                               **({"momentum": 0.9} if cls == "SGD" else {}))
    theirs = getattr(torch.optim, cls)([torch.zeros(2, requires_grad=True)], lr=0.1,
                                       **({"momentum": 0.9} if cls == "SGD" else {}))
    s_o = CyclicLR(ours, 0.01, 0.2, step_size_up=3, **kw)
    s_t = torch.optim.lr_scheduler.CyclicLR(theirs, 0.01, 0.2, step_size_up=3, **kw)
    key = "momentum" if cls == "SGD" else "betas"
    for _ in range(20):
        assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"], 1e-12)
        assert ours.param_groups[0][key] == pytest.approx(theirs.param_groups[0][key], 1e-12)
        theirs.step()
        s_o.step()
        s_t.step()
    assert s_o.get_last_lr() == pytest.approx(s_t.get_last_lr(), 1e-12)
