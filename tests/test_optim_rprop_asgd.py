"""Rprop and ASGD against PyTorch 2.13: twelve steps on the fixed cubic loss of
test_optim_adam_variants.py; for ASGD also the averaged weights ``ax``."""
import pytest

import tracegrad as torch

# (optimizer, options, weights after 12 steps, ASGD's state["ax"]) printed by torch.optim
TORCH_2_13 = [
    ("Rprop", {}, [0.604195, -1.604195, 0.104195], None),
    ("Rprop", {"lr": 0.3, "etas": (0.3, 1.5), "step_sizes": (0.01, 0.4)},
     [0.30395, 0.135, -0.52005], None),
    ("Rprop", {"lr": 0.1, "maximize": True}, [4.958052, -5.958051, 4.458052], None),
    ("ASGD", {"lr": 0.05}, [0.453046, 0.067282, 0.075067], [0.453046, 0.067282, 0.075067]),
    ("ASGD", {"lr": 0.05, "lambd": 0.1, "alpha": 0.5, "t0": 3, "weight_decay": 0.1},
     [0.417558, 0.067285, 0.057779], [0.513747, -0.046859, 0.155994]),
]


@pytest.mark.parametrize("name,options,expected,ax", TORCH_2_13)
def test_twelve_steps_match_pytorch(name, options, expected, ax):
    w = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    opt = getattr(torch.optim, name)([w], **options)
    target = torch.tensor([0.3, 0.1, -0.4])
    scale = torch.tensor([1.0, 3.0, 0.5])
    for _ in range(12):
        opt.zero_grad()
        loss = ((w - target) ** 2 * scale).sum() + (w ** 3).sum() * 0.1
        loss.backward()
        opt.step()
    assert w.tolist() == pytest.approx(expected, abs=3e-6)
    if ax is not None:
        assert opt.state[w]["ax"].tolist() == pytest.approx(ax, abs=3e-6)


def test_bad_etas_raise_pytorchs_error():
    with pytest.raises(ValueError, match="Invalid eta values: 1.5, 1.2"):
        torch.optim.Rprop([torch.zeros(1, requires_grad=True)], etas=(1.5, 1.2))
