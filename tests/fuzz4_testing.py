"""Shared by tests/test_fuzz4_*: the training step users write (zero_grad, cross
entropy, backward, step), random batches, and the compiled-against-eager comparison."""
from __future__ import annotations

import numpy as np

import tracegrad as torch
import tracegrad.nn.functional as F


def cross_entropy_step(model, opt):
    """``opt.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward();
    opt.step(); return loss``."""
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def batch(rng, n: int, features: int, classes: int = 3):
    """``n`` float32 rows of ``features`` and their class labels."""
    return (torch.tensor(rng.standard_normal((n, features)).astype(np.float32)),
            torch.tensor(rng.integers(0, classes, n)))


def assert_compiled_matches_eager(train, rtol=1e-5, atol=1e-6):
    """``train(compiled) -> (losses, parameters or tensors, step)``: the compiled run's
    numbers are the eager run's; returns the compiled step."""
    losses_c, params_c, step = train(True)
    losses_e, params_e, _ = train(False)
    np.testing.assert_allclose(losses_c, losses_e, rtol=rtol, atol=atol, err_msg="losses")
    for k, (a, b) in enumerate(zip(params_c, params_e)):
        a = a.detach().numpy() if hasattr(a, "detach") else a
        b = b.detach().numpy() if hasattr(b, "detach") else b
        # (which one: a rare failure must say where it is from its log alone)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"tensor {k}")
    return step
