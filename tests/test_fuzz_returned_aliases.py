"""A compiled function that returns an argument, a captured tensor (a parameter) or a view
of one returns that tensor, as eager mode does: the caller's in-place changes through it
reach the argument and its version counter (NOTE (returned arguments) in
compiler/entry.py). Before, the caller got a copy (a view) or a second tensor on the same
storage with a counter of its own (the argument itself)."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn as nn

INPLACE_ERROR = "modified by an inplace operation"
VIEWS = {
    "itself": lambda t: t,
    "slice": lambda t: t[:, 1:],
    "transpose": lambda t: t.t(),
    "reshape": lambda t: t.reshape(-1),
    "select": lambda t: t[1],
    "unsqueeze+permute": lambda t: t.unsqueeze(0).permute(2, 0, 1),
}


def _args(seed: int, n: int = 3):
    r = np.random.RandomState(seed)
    return (tg.tensor(r.randn(4, n).astype(np.float32), requires_grad=True),
            tg.tensor(r.randn(4, n).astype(np.float32)))


@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("dynamic", [False, True])
def test_a_returned_view_of_an_argument_writes_through_as_eager(view, dynamic):
    def fn(x, w):
        return x * w, VIEWS[view](w)

    compiled = tg.compile(fn, dynamic=dynamic)
    for seed, n in enumerate((3, 5, 6)):   # new sizes: replayed at each, or symbolic
        finals = []
        for f in (fn, compiled):
            x, w = _args(seed, n)
            y, alias = f(x, w)
            with tg.no_grad():
                alias.mul_(2.0)   # eagerly: doubles (part of) w, and w's version moves
            finals.append(w.numpy().copy())
            # the mul saved w: backward raises in both (before: compiled read the changed w)
            with pytest.raises(RuntimeError, match=INPLACE_ERROR):
                y.sum().backward()
        np.testing.assert_array_equal(finals[1], finals[0])


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_gradients_through_a_returned_view_of_an_argument(view):
    weights = tg.tensor(np.random.RandomState(9).randn(4, 3).astype(np.float32))

    def fn(x):
        return (x * x).sum(0), VIEWS[view](x)

    compiled = tg.compile(fn)
    for seed in range(3):
        grads = []
        for f in (fn, compiled):
            x, _ = _args(seed)
            s, alias = f(x)
            scale = VIEWS[view](weights)
            ((alias * scale).sum() + (s * s).sum()).backward()
            grads.append(x.grad.numpy())
        np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-6)


def test_a_returned_parameter_is_the_parameter():
    tg.manual_seed(0)
    lin = nn.Linear(3, 2)
    compiled = tg.compile(lambda x: (lin(x), lin.weight, lin.bias[:1]))
    x, _ = _args(0)
    for _ in range(3):
        y, weight, bias = compiled(x)
        assert weight is lin.weight
        with tg.no_grad():
            bias.fill_(0.5)   # eagerly: writes into lin.bias
        assert lin.bias.detach().numpy()[0] == 0.5


@pytest.mark.parametrize("set_to_none", [True, False])
def test_a_returned_grad_of_a_training_step_is_the_grad(set_to_none):
    # before: with set_to_none=False the caller's in-place change of the returned .grad
    # missed the gradient the optimizer then applied (the parameters drifted from eager)
    x, _ = _args(0)
    weights = []
    for compiled in (False, True):
        tg.manual_seed(0)
        lin = nn.Linear(3, 2)
        opt = tg.optim.SGD(lin.parameters(), lr=0.1, momentum=0.5)

        def step(x):
            opt.zero_grad(set_to_none=set_to_none)
            loss = lin(x).pow(2).sum()
            loss.backward()
            return loss, lin.weight.grad, lin.bias.grad[:1]

        f = tg.compile(step, fullgraph=True) if compiled else step
        for _ in range(4):
            _, grad, bias_part = f(x)
            assert grad is lin.weight.grad
            with tg.no_grad():
                grad.mul_(0.25)      # the caller scales the gradient by hand
                bias_part.zero_()
            opt.step()
        weights.append([p.detach().numpy().copy() for p in lin.parameters()])
    for got, want in zip(weights[1], weights[0]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
