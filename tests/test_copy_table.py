"""runtime/copy_table.py: copy kernels whose windows repeat their source (im2col) run
as a gather through a table found once, with the same values as the kernel."""
import numpy as np
import pytest

import tracegrad
import tracegrad.nn as nn
import tracegrad.nn.functional as F
from compile_step_testing import make_step

rng = np.random.default_rng(0)


def _tables(fn):
    (entry,) = fn._cache.values()
    programs = [p for p in (entry.forward, entry.backward) if p is not None]
    return sum(d.count("define internal void @tg_copy") for p in programs for d in p.drivers)


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 1), (2, 0)])
def test_conv_forward_and_backward_equal_eager_through_tables(stride, padding):
    tracegrad.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3, stride=stride, padding=padding)
    x = tracegrad.from_numpy(rng.standard_normal((8, 3, 16, 16)).astype(np.float32))

    def loss_fn(x):
        return (conv(x).relu() ** 2).sum()

    compiled = tracegrad.compile(loss_fn)
    for fn in (loss_fn, compiled):
        conv.zero_grad()
        loss = fn(x)
        loss.backward()
        if fn is loss_fn:
            want = [loss.item(), conv.weight.grad.numpy().copy(), conv.bias.grad.numpy().copy()]
    got = [loss.item(), conv.weight.grad.numpy(), conv.bias.grad.numpy()]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
    assert _tables(compiled) >= 1


def test_a_nonzero_padding_value_is_the_tables_fill():
    x = tracegrad.from_numpy(rng.standard_normal((4, 2, 30, 30)).astype(np.float32))

    def fn(x):
        return F.unfold(F.pad(x, (1, 1, 1, 1), value=2.5), kernel_size=3, stride=2)

    compiled = tracegrad.compile(fn)
    np.testing.assert_array_equal(compiled(x).numpy(), fn(x).numpy())
    assert _tables(compiled) == 1


def test_windows_fused_with_arithmetic_stay_a_kernel():
    x = tracegrad.from_numpy(rng.standard_normal((2, 2, 20, 20)).astype(np.float32))

    def fn(x):
        return F.unfold(x, kernel_size=3, stride=1).exp()

    compiled = tracegrad.compile(fn)
    np.testing.assert_allclose(compiled(x).numpy(), fn(x).numpy(), rtol=1e-6)
    assert _tables(compiled) == 0


def test_cnn_training_step_uses_tables_and_trains_as_eager():
    def run(compile_it):
        tracegrad.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                              nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
                              nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
        opt = tracegrad.optim.SGD(model.parameters(), lr=0.05)
        step = make_step(model, opt)
        fn = tracegrad.compile(step, fullgraph=True) if compile_it else step
        data = np.random.default_rng(2)
        for _ in range(5):
            fn(tracegrad.from_numpy(data.standard_normal((16, 1, 8, 8)).astype(np.float32)),
               tracegrad.from_numpy(data.integers(0, 10, 16)))
        return fn, model

    compiled, got = run(True)
    _, want = run(False)
    for p, q in zip(got.parameters(), want.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-4,
                                   atol=1e-5)
    assert _tables(compiled) >= 2


def test_docstring_example_runs():
    import doctest
    import importlib
    result = doctest.testmod(importlib.import_module("tracegrad.runtime.copy_table"))
    assert result.attempted > 0 and result.failed == 0
