"""A compiled step that calls backward() leaves the gradient of an argument that requires
grad in its .grad, as eager does (NOTE (argument gradients), compiler/entry.py): set when
the argument came without one, added into the one it came with."""
import numpy as np
import pytest

import tracegrad as torch


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))


@pytest.mark.parametrize("start_grad", [None, "ones"])
def test_argument_grad_after_compiled_backward_equals_eager(start_grad):
    net = _model()

    def step(x):
        loss = (net(x) ** 2).sum()
        loss.backward()
        return loss

    compiled = torch.compile(step, fullgraph=True)
    rng = np.random.default_rng(1)
    for _ in range(3):   # the first call traces; the others replay
        data = rng.standard_normal((5, 3)).astype(np.float32)
        xc = torch.tensor(data, requires_grad=True)
        xe = torch.tensor(data, requires_grad=True)
        if start_grad:
            xc.grad, xe.grad = torch.ones(5, 3), torch.ones(5, 3)
        net.zero_grad()
        lc = compiled(xc)
        weights_c = [p.grad.numpy().copy() for p in net.parameters()]
        net.zero_grad()
        le = step(xe)
        np.testing.assert_allclose(lc.item(), le.item(), rtol=1e-6)
        assert xc.grad is not None
        np.testing.assert_allclose(xc.grad.numpy(), xe.grad.numpy(), rtol=1e-5, atol=1e-6)
        for wc, p in zip(weights_c, net.parameters()):
            np.testing.assert_allclose(wc, p.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_argument_grad_is_the_finite_difference_gradient():
    net = _model()

    @torch.compile
    def step(x):
        net(x).sum().backward()

    data = np.random.default_rng(2).standard_normal((2, 3))
    x = torch.tensor(data, dtype=torch.float64, requires_grad=True)
    net.double()
    step(x)
    eps = 1e-6
    for i in range(2):
        for j in range(3):
            hi, lo = data.copy(), data.copy()
            hi[i, j] += eps
            lo[i, j] -= eps
            with torch.no_grad():
                fd = (net(torch.tensor(hi)).sum() - net(torch.tensor(lo)).sum()).item() / (2 * eps)
            assert abs(x.grad.numpy()[i, j] - fd) < 1e-6
