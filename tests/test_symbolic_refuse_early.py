"""A Python loop over the size is refused from the earlier call's trace and one probe at
the smallest size (``fit_checks._refuse_unrolled_early``), without tracing the probes at
n + 1 and 2n + 1: for an LSTM over lengths 4, 8, 12, 16 those were the largest traces of
the compile."""
import numpy as np

import tracegrad as torch


def unrolled_loop(traced_sizes: list, width: int):
    """An RNN-style loop unrolled over dim 0 of its (n, width) argument; each call (a
    trace or an eager run) appends n to ``traced_sizes``."""
    w = torch.randn(width, width) * 0.1

    def unrolled(x):
        traced_sizes.append(x.shape[0])
        h = torch.zeros(width)
        for t in range(x.shape[0]):
            h = torch.tanh(x[t] + h @ w)
        return h
    return unrolled


def test_a_loop_over_the_size_is_refused_after_tracing_one_probe():
    traced: list = []
    f = unrolled_loop(traced, 24)
    c = torch.compile(f)
    for n in (4, 8, 12, 8):
        x = torch.randn(n, 24)
        got = c(x).numpy()
        np.testing.assert_allclose(got, f(x).numpy(), rtol=1e-4, atol=1e-5)
        traced.pop()   # the eager call's
    assert traced == [4, 8, 2, 12], traced   # no probe at 9 or 17, none at 12's sizes
    info = c.cache_info()
    assert info.misses == 3 and "grows with s0" in info.symbolic[0], info.symbolic


def test_a_graph_that_keeps_its_size_still_becomes_symbolic():
    w = torch.randn(6, 5)

    def f(x):
        return torch.tanh(x @ w).sum(0)

    c = torch.compile(f)
    for n in (4, 8, 12, 5):
        x = torch.randn(n, 6)
        np.testing.assert_allclose(c(x).numpy(), f(x).numpy(), rtol=1e-5, atol=1e-5)
    assert c.cache_info().misses == 2, c.cache_info()


def test_an_earlier_call_with_another_graph_leaves_the_decision_to_the_probes():
    # the graph changes with the size but not by the same count per unit (a branch taken
    # above 6): the early check stays silent and the probes decide, as before
    def f(x):
        y = x.sin()
        if x.shape[0] > 6:
            y = y.cos().exp()
        return y

    c = torch.compile(f)
    for n in (4, 8, 9, 3):
        x = torch.randn(n, 3)
        np.testing.assert_allclose(c(x).numpy(), f(x).numpy(), rtol=1e-5, atol=1e-6)
