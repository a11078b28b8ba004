"""Long fused chains lower without recursion (NOTE (iterative lowering) in codegen.lower):
they compile into kernels, never fall back to eager, and equal eager."""
from __future__ import annotations

import warnings

import numpy as np

import tracegrad as torch


def _compile_without_fallback(fn, *args):
    """Compiled result; any fallback to eager warns, and here a warning is an error."""
    compiled = torch.compile(fn, fullgraph=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return compiled, compiled(*args)


def mixed_chain(n):
    """n elementwise ops: arithmetic, transcendental, comparisons with where, a broadcast
    operand and casts."""
    def f(x, row):
        y = x
        for i in range(n):
            k = i % 8
            if k == 0:
                y = y * 0.999 + row
            elif k == 1:
                y = y.tanh()
            elif k == 2:
                y = torch.where(y > 0.1, y, y * 0.5)
            elif k == 3:
                y = torch.maximum(y, x * 0.25)
            elif k == 4:
                y = (y * 0.5).exp() - 1.0
            elif k == 5:
                y = y.to(torch.float64).sigmoid().to(torch.float32) - 0.5
            elif k == 6:
                y = -y.abs() + 0.1
            else:
                y = torch.minimum(y, 1.0 - x)
        return y
    return f


def test_a_chain_of_200_mixed_ops_compiles_and_equals_eager():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((16, 33)).astype(np.float32))
    row = torch.from_numpy(rng.standard_normal(33).astype(np.float32) * 0.01)
    f = mixed_chain(200)
    compiled, out = _compile_without_fallback(f, x, row)
    kernels = compiled.explain(x, row).kernels
    assert len(kernels) == 1, [k.ops for k in kernels]
    np.testing.assert_allclose(out.numpy(), f(x, row).numpy(), rtol=2e-5, atol=2e-6)


def test_a_chain_of_10000_ops_compiles_and_equals_eager():
    def f(x):
        y = x
        for i in range(10_000):
            k = i % 4
            if k == 0:
                y = y * 1.0001
            elif k == 1:
                y = y + 0.001
            elif k == 2:
                y = torch.maximum(y, x)
            else:
                y = y - 0.0005
        return y

    x = torch.from_numpy(np.linspace(-1, 1, 64, dtype=np.float32))
    _, out = _compile_without_fallback(f, x)
    np.testing.assert_allclose(out.numpy(), f(x).numpy(), rtol=1e-5, atol=1e-6)


def test_the_backward_of_a_200_op_chain_compiles_and_equals_eager():
    """The backward graph of the chain is as deep again (its vjps are tensor code)."""
    rng = np.random.default_rng(1)
    data = rng.standard_normal((8, 33)).astype(np.float32)
    row = torch.from_numpy(rng.standard_normal(33).astype(np.float32) * 0.01)
    f = mixed_chain(200)

    def loss(x):
        return f(x, row).sum()

    x1 = torch.from_numpy(data.copy()).requires_grad_()
    loss(x1).backward()
    x2 = torch.from_numpy(data.copy()).requires_grad_()
    compiled, out = _compile_without_fallback(loss, x2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out.backward()
    np.testing.assert_allclose(x2.grad.numpy(), x1.grad.numpy(), rtol=2e-4, atol=2e-5)
