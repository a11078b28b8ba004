"""Optimizers on 0-d parameters (a learned temperature or log-scale:
``nn.Parameter(torch.tensor(1.0))``). NumPy arithmetic on a 0-d array returns a NumPy
scalar, which the in-place updates of SGD (maximize / weight decay / nesterov), Adam,
AdamW, RMSprop and Adagrad then passed as ``out=``: TypeError "return arrays must be of
ArrayType". A 0-d parameter must move exactly as the same value in a 1-element one."""
import numpy as np
import pytest

import tracegrad as tg

CONFIGS = [
    ("SGD", {"lr": 0.1, "maximize": True, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "maximize": True, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("Adam", {}),
    ("Adam", {"maximize": True, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"amsgrad": True}),
    ("RMSprop", {}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"centered": True, "momentum": 0.5}),
    ("Adagrad", {}),
    ("Adagrad", {"maximize": True, "weight_decay": 0.1, "lr_decay": 0.1}),
]


def _run(lib, name, kw, shape, steps=5):
    p = lib.nn.Parameter(lib.tensor(np.full(shape, 1.5, np.float32)))
    q = lib.nn.Parameter(lib.tensor(np.array([[0.5, -2.0]], np.float32)))
    opt = getattr(lib.optim, name)([p, q], **kw)
    for _ in range(steps):
        opt.zero_grad()
        ((p ** 2 + p).sum() + (q ** 3).sum() * p.sum()).backward()
        opt.step()
    state = {k: v for k, v in opt.state[p].items() if hasattr(v, "shape") and k != "step"}
    return p.detach().numpy().copy(), q.detach().numpy().copy(), state


@pytest.mark.parametrize("name,kw", CONFIGS)
def test_zero_dim_parameter_moves_like_a_one_element_one(name, kw):
    p0, q0, state0 = _run(tg, name, kw, ())
    p1, q1, _ = _run(tg, name, kw, (1,))
    assert p0.shape == ()
    np.testing.assert_array_equal(p0.reshape(1), p1)
    np.testing.assert_array_equal(q0, q1)
    assert all(tuple(v.shape) == () for v in state0.values())   # state keeps the shape


@pytest.mark.parametrize("name,kw", CONFIGS)
def test_zero_dim_parameter_matches_torch(name, kw):
    torch = pytest.importorskip("torch")
    ours = _run(tg, name, kw, ())
    theirs = _run(torch, name, kw, ())
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5, atol=1e-6)
