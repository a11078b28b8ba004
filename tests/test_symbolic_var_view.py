"""var()/std() over a symbolic dim and a view by half the size are symbolic (issue 13):
one compiled program serves every size (its ``1/(N - 1)`` a kernel parameter, its
``s0/2`` kept exact by the guard ``s0 % 2 == 0``), new sizes are served without a
trace, and every size equals eager, values and gradients."""
import numpy as np
import pytest

import tracegrad as torch
from test_symbolic_guards import Counted
from test_symbolic_guards import _group as _only_group
from tracegrad.compiler import dynamic


def _check(fn, shape_at, sizes, dynamic=True, grad=False):
    """Compile ``fn``, call it at ``sizes``; compare with eager (gradients too with
    ``grad``); return the compiled function and how many times each later size traced."""
    f = Counted(fn)
    c = torch.compile(f, dynamic=dynamic)
    traced_later = []
    for k, n in enumerate(sizes):
        x = np.random.default_rng(n).standard_normal(shape_at(n)).astype(np.float32)
        a, b = (torch.from_numpy(x.copy()).requires_grad_(grad) for _ in range(2))
        before = f.calls
        got, want = c(a), fn(b)
        if k >= 2:
            traced_later.append(f.calls - before)
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=2e-5,
                                   atol=1e-6, equal_nan=True, err_msg=f"s0={n}")
        if grad:
            got.sum().backward()
            want.sum().backward()
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=2e-5, atol=1e-6,
                                       err_msg=f"gradient at s0={n}")
    return c, traced_later


VARIANCES = {
    "var(0)": lambda x: x.var(0),
    "var()": lambda x: x.var(),
    "std(0, keepdim=True)": lambda x: x.std(0, keepdim=True),
    "var(0, correction=0)": lambda x: x.var(0, correction=0),
    "var(0, unbiased=False)": lambda x: x.var(0, unbiased=False),
    "std() * var(1)": lambda x: x.std() * x.var(1).sum(),
    "var_mean(0)": lambda x: torch.var_mean(x, 0)[0] + torch.var_mean(x, 0)[1],
}


@pytest.mark.parametrize("name", list(VARIANCES))
def test_var_over_a_symbolic_dim_is_one_program_served_without_a_trace(name):
    """Before: ``ss / float(N - 1)`` escaped (float() of s0) and every size retraced."""
    c, traced_later = _check(VARIANCES[name], lambda n: (n, 5),
                             (8, 12, 5, 9, 30, 2, 64, 13))
    fit = _only_group(c).fits[0]
    assert fit.guarded.why_not is None, fit.guarded.why_not
    assert traced_later == [0] * 6, traced_later
    assert c.cache_info().misses == 1


def test_var_backward_over_a_symbolic_dim_equals_eager():
    _check(lambda x: (x * x).var(0) + x.std(), lambda n: (n, 4), (8, 12, 6, 17, 40),
           grad=True)


def test_var_with_a_correction_past_the_size_is_guarded():
    """correction=3: N - 3 <= 0 gives ss / 0 (eager's inf/nan) at 2 and 3; a guard
    ``s0 > 3`` keeps those sizes from the fitted 1/(s0 - 3)."""
    c, _ = _check(lambda x: x.var(0, correction=3), lambda n: (n, 3), (8, 12, 9, 2, 3, 4, 20))
    assert "s0 > 3" in c.cache_info().symbolic[0]


def halves(x):
    return x.view(x.size(0) // 2, 2, -1).sum(1) * 2


def test_a_view_by_half_the_size_is_one_program_served_on_its_residue_guard():
    """Before: the probes at odd sizes raised and the function was specialised per size;
    now they are taken where ``s0 % 2 == 0`` holds (NOTE (probes that keep the guards))."""
    c, traced_later = _check(halves, lambda n: (n, 3), (8, 16, 24, 6, 10, 40, 100, 64, 4))
    info = c.cache_info().symbolic[0]
    assert info.startswith("s0 = arg 0 dim 0") and "s0 % 2 == 0" in info, info
    assert traced_later == [0] * 7, traced_later
    assert c.cache_info().misses == 1


def test_a_view_by_half_the_size_at_an_odd_size_raises_as_eager():
    c, _ = _check(halves, lambda n: (n, 3), (8, 16, 24))
    with pytest.raises(RuntimeError) as compiled_error:   # eager's error alone, no warning
        c(torch.randn(7, 3))
    with pytest.raises(RuntimeError) as eager_error:
        halves(torch.randn(7, 3))
    assert str(compiled_error.value) == str(eager_error.value)


def test_a_view_by_half_the_size_with_gradients_and_a_parity_branch():
    def parity(x):
        if x.shape[0] % 2:
            return (x * 3).sum(0, keepdim=True)
        return x.view(x.shape[0] // 2, -1).relu()
    _check(parity, lambda n: (n, 4), (8, 12, 7, 20, 9, 34, 2, 3, 50), grad=True)


@pytest.mark.parametrize("fn", [halves, VARIANCES["var(0)"]])
def test_checked_mode_plans_every_size_served(monkeypatch, fn):
    monkeypatch.setattr(dynamic, "CHECK_INSTANCES", True)
    _check(fn, lambda n: (n, 3), (8, 16, 6, 10, 40, 2, 4, 22))


def test_a_quarter_of_the_size_squared_keeps_two_residues():
    """A (s0 // 4) x (s0 // 4) product: coefficients 1/16 under ``s0 % 4 == 0``."""
    def quarters(x):
        y = x.reshape(x.shape[0] // 4, -1)
        return (y @ y.t()).sum(0) + y.sum(1)
    c, traced_later = _check(quarters, lambda n: (n, 2), (8, 16, 12, 20, 44, 4, 100))
    assert "s0 % 4 == 0" in c.cache_info().symbolic[0]
    assert traced_later[:3] == [0] * 3 and traced_later[4] == 0   # (s0=4: a dim of 1)


def test_a_fit_at_one_residue_class_counts_only_that_class_as_planned():
    """Sizes of another class are served from that fit only after planning them too
    (``_Fit.planned``): its probes never saw the planner at an odd size."""
    c, _ = _check(halves, lambda n: (n, 3), (8, 16, 24))
    fit = _only_group(c).fits[0]
    assert fit.residues is not None and fit.lo <= 11 <= fit.hi
    assert fit.planned(10) and fit.planned(12) and not fit.planned(11)
    c2, _ = _check(VARIANCES["var(0)"], lambda n: (n, 3), (8, 16, 24))
    assert _only_group(c2).fits[0].residues is None and _only_group(c2).fits[0].planned(11)
