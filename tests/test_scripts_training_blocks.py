"""Small self-written scripts in the PyTorch tutorials' style, run with
``import tracegrad as torch``; the expected numbers were printed by torch 2.13 running the
same code (float64, so they agree to rounding)."""
import math

import numpy as np

import tracegrad as torch


class LegendreP3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 0.5 * (5 * x ** 3 - 3 * x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * x ** 2 - 1)


def test_polynomial_fit_with_a_custom_function_matches_pytorch():
    x = torch.linspace(-math.pi, math.pi, 200, dtype=torch.float64)
    y = torch.sin(x)
    a, b, c, d = (torch.full((), v, dtype=torch.float64, requires_grad=True)
                  for v in (0.0, -1.0, 0.0, 0.3))
    for _ in range(300):
        y_pred = a + b * LegendreP3.apply(c + d * x)
        loss = (y_pred - y).pow(2).sum()
        loss.backward()
        with torch.no_grad():
            for p in (a, b, c, d):
                p -= 5e-6 * p.grad
                p.grad = None
    np.testing.assert_allclose(float(loss), 27.1752282684724, rtol=1e-12)
    np.testing.assert_allclose([float(b), float(d)], [-1.0699608410408137, 0.24390700667501092],
                               rtol=1e-12)
    assert abs(float(a)) < 1e-15 and abs(float(c)) < 1e-15  # an odd target: both stay ~0


def test_lstm_sine_wave_with_lbfgs_matches_pytorch():
    rng = np.random.default_rng(0)
    lstm = torch.nn.LSTM(1, 8, batch_first=True).double()
    head = torch.nn.Linear(8, 1).double()
    params = list(lstm.parameters()) + list(head.parameters())
    with torch.no_grad():
        for p in params:
            p.copy_(torch.tensor(rng.uniform(-0.3, 0.3, tuple(p.shape))))
    seq = torch.sin(torch.arange(0, 21, dtype=torch.float64) * 0.3).reshape(1, 21, 1)
    inp, target = seq[:, :-1], seq[:, 1:]
    opt = torch.optim.LBFGS(params, lr=0.8, max_iter=10, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        out, _ = lstm(inp)
        loss = ((head(out) - target) ** 2).mean()
        loss.backward()
        return loss

    losses = [float(opt.step(closure)) for _ in range(3)]
    np.testing.assert_allclose(losses, [0.5908344140921125, 0.03685767445281168,
                                        0.0023677577612601555], rtol=1e-9)
