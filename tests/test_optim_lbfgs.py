"""optim.LBFGS: PyTorch's iterates on Rosenbrock (reference numbers printed by
torch 2.13's LBFGS for the same runs), a least-squares fit, and clear errors."""
import numpy as np
import pytest

import tracegrad as torch
from tracegrad.optim import LBFGS


def rosenbrock_run(line_search_fn, steps=5):
    x = torch.tensor([-1.2, 1.0, -0.5, 0.8], dtype=torch.float64, requires_grad=True)
    opt = LBFGS([x], line_search_fn=line_search_fn, history_size=10)

    def closure():
        opt.zero_grad()
        loss = (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()
        loss.backward()
        return loss

    losses = [float(opt.step(closure)) for _ in range(steps)]
    return x, losses, opt.state[x]


def test_rosenbrock_strong_wolfe_follows_pytorch():
    x, losses, state = rosenbrock_run("strong_wolfe")
    np.testing.assert_allclose(x.detach().numpy(), [0.9999987752965325, 0.9999965262390494,
                                                    0.9999914600086884, 0.9999824385907349],
                               rtol=1e-9)
    np.testing.assert_allclose(losses, [281.7, 3.0968109982489906, 0.04426353342336293,
                                        4.682126970501378e-10, 4.682126970501378e-10],
                               rtol=1e-6)
    assert (state["func_evals"], state["n_iter"]) == (63, 49)


def test_rosenbrock_fixed_step_follows_pytorch():
    x, losses, state = rosenbrock_run(None)
    # NOTE: unit steps on Rosenbrock amplify last-bit differences in the gradients (summation
    # order) over 100 iterations: the losses agree to ~2e-5 by the fifth call.
    np.testing.assert_allclose(losses, [281.7, 3.4187208430174416, 1.8571684885284874,
                                        0.8958844212250119, 0.28003900576368324], rtol=1e-4)
    np.testing.assert_allclose(x.detach().numpy(), [1.0000002141478121, 1.0000003245994942,
                                                    1.0000006267077284, 1.0000011406158198],
                               rtol=1e-6)
    assert (state["func_evals"], state["n_iter"]) == (100, 100)


def test_least_squares_fit_matches_lstsq():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((50, 3)).astype(np.float32)
    b = (a @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.01 * rng.standard_normal(50)).astype(np.float32)
    model = torch.nn.Linear(3, 1)
    opt = LBFGS(model.parameters(), lr=1, max_iter=50, line_search_fn="strong_wolfe")
    inputs, target = torch.tensor(a), torch.tensor(b).reshape(50, 1)

    def closure():
        opt.zero_grad()
        loss = ((model(inputs) - target) ** 2).mean()
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    coef, *_ = np.linalg.lstsq(np.c_[a, np.ones(50)], b, rcond=None)
    np.testing.assert_allclose(model.weight.detach().numpy().ravel(), coef[:3], atol=1e-4)
    np.testing.assert_allclose(float(model.bias.detach().numpy()[0]), coef[3], atol=1e-4)


def test_already_optimal_returns_after_one_evaluation():
    x = torch.tensor([0.0], requires_grad=True)
    opt = LBFGS([x])
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (x * x).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert len(calls) == 1 and x.tolist() == [0.0]


@pytest.mark.parametrize("fmt", ["tracegrad", "torch"])
def test_state_dict_round_trip_resumes_exactly(fmt):
    import io

    def make():
        x = torch.tensor([-1.2, 1.0, -0.5, 0.8], requires_grad=True)
        opt = LBFGS([x], max_iter=5, history_size=4)

        def closure():
            opt.zero_grad()
            loss = (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()
            loss.backward()
            return loss
        return x, opt, closure

    x, opt, closure = make()
    for _ in range(3):
        opt.step(closure)
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "x": x.detach()}, buf, format=fmt)
    buf.seek(0)
    saved = torch.load(buf)  # weights_only: the state holds only tensors and numbers
    x2, opt2, closure2 = make()
    with torch.no_grad():
        x2.copy_(saved["x"])
    opt2.load_state_dict(saved["opt"])
    for _ in range(3):
        opt.step(closure)
        opt2.step(closure2)
    assert x2.tolist() == x.tolist()


def test_errors():
    x = torch.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="closure"):
        LBFGS([x]).step()
    with pytest.raises(RuntimeError, match="strong_wolfe"):
        LBFGS([x], line_search_fn="backtracking")
    y = torch.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="parameter groups"):
        LBFGS([{"params": [x]}, {"params": [y], "lr": 0.1}])
