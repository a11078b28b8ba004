"""Adadelta, Adamax, NAdam and RAdam against PyTorch 2.13: twelve steps on a fixed cubic
loss from the same start, with default and non-default options (weight decay coupled and
decoupled, betas, rho, maximize); the expected weights were printed by torch.optim."""
import copy

import pytest

import tracegrad as torch

# (optimizer, options, weights after 12 steps with torch.optim)
TORCH_2_13 = [
    ('Adadelta', {}, [0.959979, -1.959391, 0.459873]),
    ('Adadelta', {'lr': 0.5, 'rho': 0.8, 'weight_decay': 0.1, 'maximize': False}, [0.984416, -1.984339, 0.484406]),
    ('Adamax', {'lr': 0.1}, [0.255004, -0.953009, -0.315323]),
    ('Adamax', {'lr': 0.05, 'betas': (0.8, 0.9), 'weight_decay': 0.2}, [0.303827, -1.369754, -0.213434]),
    ('NAdam', {'lr': 0.1}, [0.32776, -1.09697, -0.243374]),
    ('NAdam', {'lr': 0.05, 'weight_decay': 0.1, 'decoupled_weight_decay': True, 'momentum_decay': 0.01}, [0.542526, -1.42831, 0.052115]),
    ('NAdam', {'lr': 0.05, 'weight_decay': 0.1}, [0.578066, -1.527524, 0.068277]),
    ('RAdam', {'lr': 0.1}, [0.341928, 0.95229, 0.047867]),
    ('RAdam', {'lr': 0.1, 'betas': (0.9, 0.5), 'weight_decay': 0.1, 'decoupled_weight_decay': True}, [0.084848, -0.115107, -0.297307]),
    ('RAdam', {'lr': 0.1, 'weight_decay': 0.1, 'maximize': True}, [2.083294, -10.227647, 1.060565]),
]


@pytest.mark.parametrize("name,options,expected", TORCH_2_13)
def test_twelve_steps_match_pytorch(name, options, expected):
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
    assert float(opt.state[w]["step"]) == 12.0


@pytest.mark.parametrize("name", ["Adadelta", "Adamax", "NAdam", "RAdam"])
def test_state_dict_round_trip_continues_identically(name):
    def run(steps, resume_from=None):
        w = torch.tensor([1.0, -2.0], requires_grad=True)
        opt = getattr(torch.optim, name)([w], lr=0.05)
        if resume_from is not None:
            with torch.no_grad():
                w.copy_(resume_from[0])
            opt.load_state_dict(resume_from[1])
        for _ in range(steps):
            opt.zero_grad()
            (w ** 2 * torch.tensor([1.0, 2.0])).sum().backward()
            opt.step()
        return w, opt
    straight, _ = run(6)
    half, opt = run(3)
    resumed, _ = run(3, (half.detach().clone(), copy.deepcopy(opt.state_dict())))
    assert resumed.tolist() == pytest.approx(straight.tolist(), abs=1e-7)


def test_bad_hyperparameters_raise_pytorchs_errors():
    w = [torch.zeros(1, requires_grad=True)]
    with pytest.raises(ValueError, match="Invalid rho value"):
        torch.optim.Adadelta(w, rho=1.5)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        torch.optim.NAdam(w, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid learning rate"):
        torch.optim.RAdam(w, lr=-1)
    with pytest.raises(ValueError, match="Invalid momentum_decay"):
        torch.optim.NAdam(w, momentum_decay=-0.1)
