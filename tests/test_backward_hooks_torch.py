"""Module backward hooks against PyTorch: the same modules, weights and inputs give the same
grad_input, grad_output and resulting .grad (Linear, Conv2d, a Sequential, a custom
module with two inputs and two outputs)."""
import numpy as np
import pytest

import tracegrad as tg

torch = pytest.importorskip("torch")


def copy_weights(tg_module, torch_module) -> None:
    with torch.no_grad():
        for (name, p), (tname, tp) in zip(tg_module.named_parameters(),
                                          torch_module.named_parameters()):
            assert name == tname
            tp.copy_(torch.from_numpy(p.detach().numpy().copy()))


def as_numpy(grads) -> list:
    return [None if g is None else g.detach().numpy() for g in grads]


def run_hooked(lib, module, inputs, requires, weights, hook_result=None):
    """Call ``module`` with hooks recording (grad_input, grad_output); returns the records
    and the inputs' .grad."""
    records = []

    def pre_hook(m, grad_output):
        records.append(("pre", as_numpy(grad_output)))

    def hook(m, grad_input, grad_output):
        records.append(("full", as_numpy(grad_input), as_numpy(grad_output)))
        return hook_result(grad_input) if hook_result else None

    module.register_full_backward_pre_hook(pre_hook)
    module.register_full_backward_hook(hook)
    xs = [lib.tensor(x.copy(), requires_grad=r) for x, r in zip(inputs, requires)]
    out = module(*xs)
    outs = out if isinstance(out, tuple) else (out,)
    loss = sum((o * lib.tensor(w)).sum() for o, w in zip(outs, weights) if w is not None)
    loss.backward()
    return records, [None if x.grad is None else x.grad.numpy() for x in xs]


def assert_same(ours, theirs) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        if isinstance(b, list | tuple):
            assert_same(a, b)
        elif isinstance(b, np.ndarray):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        else:
            assert a == b


class TwoInOut:
    @staticmethod
    def build(nn):
        class Module(nn.Module):
            def forward(self, a, b):
                return a * b, a + b.exp()
        return Module()


RNG = np.random.default_rng(0)
CASES = {
    "linear": (lambda nn: nn.Linear(3, 2), [RNG.normal(size=(4, 3))], [True],
               [RNG.normal(size=(4, 2))]),
    "linear_input_without_grad": (lambda nn: nn.Linear(3, 2), [RNG.normal(size=(4, 3))],
                                  [False], [RNG.normal(size=(4, 2))]),
    "conv2d": (lambda nn: nn.Conv2d(2, 3, 3, padding=1), [RNG.normal(size=(1, 2, 5, 5))],
               [True], [RNG.normal(size=(1, 3, 5, 5))]),
    "sequential": (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)),
                   [RNG.normal(size=(2, 3))], [True], [RNG.normal(size=(2, 2))]),
    "two_in_out": (TwoInOut.build, [RNG.normal(size=(3,)), RNG.normal(size=(3,))],
                   [True, True], [RNG.normal(size=(3,)), RNG.normal(size=(3,))]),
    "two_in_out_one_grad_one_output_used": (TwoInOut.build,
                                            [RNG.normal(size=(3,)), RNG.normal(size=(3,))],
                                            [True, False], [RNG.normal(size=(3,)), None]),
}


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
@pytest.mark.parametrize("case", sorted(CASES))
def test_hooks_see_what_pytorch_hooks_see(case):
    build, inputs, requires, weights = CASES[case]
    inputs = [x.astype(np.float32) for x in inputs]
    weights = [None if w is None else w.astype(np.float32) for w in weights]
    ours_module, theirs_module = build(tg.nn), build(torch.nn)
    copy_weights(ours_module, theirs_module)
    ours = run_hooked(tg, ours_module, inputs, requires, weights)
    theirs = run_hooked(torch, theirs_module, inputs, requires, weights)
    assert [record[0] for record in theirs[0]] == ["pre", "full"]
    assert_same(ours, theirs)


def test_replaced_grad_input_reaches_the_inputs_as_in_pytorch():
    build, inputs, requires, weights = CASES["two_in_out"]
    inputs = [x.astype(np.float32) for x in inputs]
    weights = [w.astype(np.float32) for w in weights]
    ours_module, theirs_module = build(tg.nn), build(torch.nn)
    ours = run_hooked(tg, ours_module, inputs, requires, weights,
                      hook_result=lambda gi: (gi[0] * 2, None))
    theirs = run_hooked(torch, theirs_module, inputs, requires, weights,
                        hook_result=lambda gi: (gi[0] * 2, None))
    assert_same(ours, theirs)
