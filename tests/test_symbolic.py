"""Symbolic sizes (tracegrad/compiler/dynamic.py, symbolic.py): one compiled program serves
every size of a dimension, guards retrace when the trace would differ, compiled == eager."""
import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn.functional as F
from tracegrad.compiler import dynamic
from tracegrad.compiler.dynamic import mark_dynamic

from test_symbolic_refuse_early import unrolled_loop


@pytest.fixture(autouse=True)
def _check_instances(monkeypatch):
    """Every program a symbolic group serves is also planned for real and compared."""
    monkeypatch.setattr(dynamic, "CHECK_INSTANCES", True)

W1 = torch.randn(16, 12)
W2 = torch.randn(12, 5)


def rows(x):
    return F.log_softmax(F.gelu(torch.relu(x @ W1) @ W2), dim=-1)


def _check(c, fn, *shapes):
    for shape in shapes:
        x = torch.randn(*shape)
        np.testing.assert_allclose(c(x).numpy(), fn(x).numpy(), rtol=1e-5, atol=1e-6)


def test_second_size_makes_one_symbolic_program_for_later_sizes():
    c = torch.compile(rows)
    _check(c, rows, (8, 16), (5, 16))
    assert c.cache_info().misses == 2
    _check(c, rows, (3, 16), (13, 16), (7, 16), (5, 16))
    info = c.cache_info()
    assert info.misses == 2, info        # no compile after the first two sizes
    assert info.symbolic[0].startswith("s0 = arg 0 dim 0")
    assert "sizes [3, 5, 7, 13]" in info.symbolic[0]


def test_dynamic_false_specialises_every_size():
    c = torch.compile(rows, dynamic=False)
    _check(c, rows, (8, 16), (5, 16), (3, 16))
    assert c.cache_info().misses == 3 and c.cache_info().symbolic == ()


def test_dynamic_true_is_symbolic_from_the_first_call():
    c = torch.compile(rows, dynamic=True)
    _check(c, rows, (8, 16), (5, 16), (11, 16))
    assert c.cache_info().misses == 1


def test_mark_dynamic_and_its_errors():
    c = torch.compile(rows)
    x = torch.randn(6, 16)
    mark_dynamic(x, 0)
    np.testing.assert_allclose(c(x).numpy(), rows(x).numpy(), rtol=1e-5, atol=1e-6)
    _check(c, rows, (9, 16))
    assert c.cache_info().misses == 1
    assert torch.compiler.mark_dynamic is mark_dynamic
    with pytest.raises(IndexError, match="mark_dynamic: dimension out of range"):
        mark_dynamic(x, 2)
    with pytest.raises(ValueError, match="dynamic must be None, True or False"):
        torch.compile(rows, dynamic="yes")


def test_sizes_0_and_1_are_specialised():
    c = torch.compile(rows, dynamic=True)
    _check(c, rows, (8, 16), (1, 16))
    assert c.cache_info().misses == 2
    y = c(torch.randn(0, 16))
    assert tuple(y.shape) == (0, 5) and c.cache_info().misses == 3


def branchy(x):
    return x * 2 if x.shape[0] < 20 else x - 1


def test_python_branch_on_a_size_breaks_the_guard():
    c = torch.compile(branchy, dynamic=True)   # fitted at 4, 5, 9 and checked at 14
    _check(c, branchy, (4, 3), (6, 3))
    assert c.cache_info().misses == 1
    _check(c, branchy, (22, 3))          # the other branch: retraced, specialised
    info = c.cache_info()
    assert info.misses == 2 and "retraced s0=22" in info.symbolic[0]


def test_a_kernel_body_that_depends_on_the_size_takes_it_as_a_parameter():
    def mean_all(x):
        return (x * 3).mean()

    c = torch.compile(mean_all, dynamic=True)
    _check(c, mean_all, (8, 4), (5, 4), (3, 4), (2, 4), (41, 4))
    info = c.cache_info()
    assert info.misses == 1 and "1 kernel(s) take size parameters" in info.symbolic[0]


def test_two_inputs_bound_to_one_symbol_and_a_reshape():
    def f(x, y):
        return (x.reshape(-1) * 2).reshape(x.shape[0], 4) + y[:, None]

    c = torch.compile(f)
    for n in (6, 9, 4, 17):
        x, y = torch.randn(n, 4), torch.randn(n)
        np.testing.assert_allclose(c(x, y).numpy(), f(x, y).numpy(), rtol=1e-6)
    assert c.cache_info().misses == 2
    x, y = torch.randn(5, 4), torch.randn(7)   # unequal: not the group's key
    with pytest.raises(Exception, match="cannot be broadcast"):
        c(x, y)                                # the user's own error, as eager raises it


def test_backward_through_a_symbolic_program():
    def loss(x, w):
        return (torch.tanh(x @ w) * 2).sum(dim=1)

    c = torch.compile(loss)
    w = torch.randn(6, 3, requires_grad=True)
    for n in (4, 7, 5, 10):
        x = torch.randn(n, 6, requires_grad=True)
        out = c(x, w)
        out.sum().backward()
        gx, gw = x.grad.numpy().copy(), w.grad.numpy().copy()
        x2 = torch.tensor(x.detach().numpy(), requires_grad=True)
        w.grad = None
        loss(x2, w).sum().backward()
        np.testing.assert_allclose(gx, x2.grad.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gw, w.grad.numpy(), rtol=1e-5, atol=1e-5)
        w.grad = None
    assert c.cache_info().misses <= 3


def test_explain_and_debug_show_s0_guards_and_retraces(caplog):
    from tracegrad.compiler.debug import set_debug_level

    c = torch.compile(branchy, dynamic=True)  # probes at 5, 9 and 14 take the same branch
    set_debug_level(1)
    try:
        with caplog.at_level("DEBUG", logger="tracegrad"):
            _check(c, branchy, (4, 3), (6, 3), (7, 3), (22, 3))
    finally:
        set_debug_level(0)
    log = caplog.text
    assert "symbolic s0 = arg 0 dim 0 (guards: s0 >= 2" in log
    assert "symbolic program serves (<f4[7, 3]) grad_mode=True (s0=7; its guards hold, no trace)" in log
    assert "guard broken (s0=22: guard s0 < 20 broke; the trace differs from the symbolic one)" in log
    text = str(c.explain(torch.randn(8, 3)))
    assert "## symbolic sizes\ns0 = arg 0 dim 0" in text and "%0: [1*s0, 3]" in text
    assert "retraced s0=22" in text
    assert "## symbolic sizes" not in str(c.explain(torch.randn(8, 4)))  # another key


def test_a_branch_seen_at_a_probe_size_gets_one_fit_per_side():
    """NOTE (a guard near the call's size) in compiler/fit_checks.py (before: not symbolic
    for good, every size compiled)."""
    def branchy10(x):
        return x * 2 if x.shape[0] < 10 else x - 1

    c = torch.compile(branchy10)         # sizes 4 then 6: probes at 7 and 13 disagree,
    _check(c, branchy10, (4, 3), (6, 3), (7, 3), (12, 3), (9, 3), (30, 3))  # primes too
    info = c.cache_info()
    assert info.misses == 3, info        # 4, the fit at 6 (s0 < 10), the fit at 12
    assert "s0 < 10; fit 2, s0 >= 10" in info.symbolic[0], info.symbolic


def test_static_outputs_come_from_the_exact_trace():
    def f(x):
        return x * 2, x.shape[0] > 5, x.shape[0]

    c = torch.compile(f, dynamic=True)
    for n in (3, 4, 8, 2):
        y, big, size = c(torch.ones(n, 2))
        assert (big, size) == (n > 5, n) and y.shape == (n, 2)
    # a Python value returned from the size is part of the output structure: specialised
    assert "outputs change with s0" in c.cache_info().symbolic[0]


def test_a_loop_unrolled_over_the_size_stays_specialised():
    def unrolled(x):
        h = x[0]
        for t in range(1, x.shape[0]):
            h = torch.tanh(h + x[t])
        return h

    c = torch.compile(unrolled)
    _check(c, unrolled, (3, 2), (4, 2), (5, 2))
    info = c.cache_info()
    assert info.misses == 3 and info.symbolic[0].startswith("not symbolic: arg 0 dim 0")


def test_compiled_module_follows_dynamic():
    net = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh())
    for mode, compiles in ((None, 2), (False, 4)):
        c = torch.compile(net, dynamic=mode)
        with torch.no_grad():
            for n in (3, 5, 7, 9):
                x = torch.randn(n, 6)
                np.testing.assert_allclose(c(x).numpy(), net(x).numpy(), rtol=1e-5, atol=1e-6)
        assert c.cache_info().misses == compiles, (mode, c.cache_info())


def test_dataloader_short_last_batches_compile_once_after_the_first_two_sizes():
    from tracegrad.utils.data import DataLoader, TensorDataset

    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    c = torch.compile(lambda x: torch.log_softmax(net(x), dim=-1))
    for n_samples in (100, 90, 77):      # last batches of 4, 26 and 13
        data = TensorDataset(torch.randn(n_samples, 8))
        with torch.no_grad():
            for (x,) in DataLoader(data, batch_size=32):
                want = torch.log_softmax(net(x), dim=-1)
                np.testing.assert_allclose(c(x).numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    assert c.cache_info().misses == 2    # 32, then 4 makes s0; 26 and 13 reuse it


def test_dynamic_true_with_a_bias_as_long_as_the_batch_binds_the_batch_alone():
    y = torch.randn(3)

    def f(x, b):
        return x.abs() + b

    c = torch.compile(f, dynamic=True)   # at 3, b's dim 0 equals the batch by coincidence
    for n in (3, 2, 4, 7):
        x = torch.randn(n, 3)
        np.testing.assert_allclose(c(x, y).numpy(), f(x, y).numpy(), rtol=1e-6)
    info = c.cache_info()
    assert info.misses == 1 and info.symbolic[0].startswith("s0 = arg 0 dim 0 ("), info


def test_a_python_loop_over_the_size_is_refused_without_tracing_at_large_probe_sizes():
    # an RNN-style loop unrolled over dim 0: no size makes the graphs fit, so the symbolic
    # attempt must give up after its first probes instead of retrying at primes above
    # every dimension (which traced an LSTM at 257 steps: 3.8 s for one new length)
    traced_sizes: list = []
    unrolled = unrolled_loop(traced_sizes, 40)
    c = torch.compile(unrolled)
    for n in (4, 6, 5):
        x = torch.randn(n, 40)
        np.testing.assert_allclose(c(x).numpy(), unrolled(x).numpy(), rtol=1e-4, atol=1e-5)
    info = c.cache_info()
    assert info.misses == 3
    assert "grows with s0" in info.symbolic[0], info.symbolic
    assert max(traced_sizes) < 40, traced_sizes      # never traced above the dims
