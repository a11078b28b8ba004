"""Symbolic int arguments (NOTE (int arguments) in tracegrad/compiler/int_args.py): an int
argument that changes compiles a bounded number of times, and every call equals eager."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch


def _check(compiled, fn, calls, rtol=1e-6):
    """Run every call compiled and eagerly; the results must agree."""
    for args, kwargs in calls:
        got, want = compiled(*args, **kwargs), fn(*args, **kwargs)
        for g, w in zip(*(o if isinstance(o, tuple) else (o,) for o in (got, want))):
            if isinstance(w, torch.Tensor):
                np.testing.assert_allclose(g.detach().numpy(), w.detach().numpy(), rtol=rtol,
                                           atol=1e-6)
            else:
                assert g == w and type(g) is type(w)


def test_int_multiplier_over_ten_values_compiles_twice_after_zero_and_one():
    x = torch.randn(7)

    def f(x, i):
        return x * i + i // 3 - (i % 4) * x

    cf = torch.compile(f)
    _check(cf, f, [((x, i), {}) for i in range(2, 12)])
    # 2 (static), then 3 changed it: one symbolic program for 3..11
    assert cf.cache_info().misses == 2
    assert any("int argument i is symbolic" in line for line in cf.cache_info().symbolic)


def test_values_zero_and_one_are_specialised():
    x = torch.randn(3)

    def f(x, i):
        return x * i

    cf = torch.compile(f, dynamic=True)
    _check(cf, f, [((x, i), {}) for i in (5, 6, 0, 1, 7, 0, 1)])
    assert cf.cache_info().misses == 3   # symbolic (5..7), 0, 1


def test_dynamic_false_compiles_once_per_value():
    x = torch.randn(3)

    def f(x, i):
        return x * i

    cf = torch.compile(f, dynamic=False)
    _check(cf, f, [((x, i), {}) for i in range(2, 8)])
    assert cf.cache_info().misses == 6


def test_dynamic_true_is_symbolic_from_the_first_call():
    x = torch.randn(3)

    def f(x, i):
        return x + i

    cf = torch.compile(f, dynamic=True)
    _check(cf, f, [((x, i), {}) for i in range(2, 8)])
    assert cf.cache_info().misses == 1


def test_bool_is_never_symbolic():
    x = torch.randn(3)

    def f(x, flag):
        return x * 2 if flag else x - 1

    cf = torch.compile(f, dynamic=True)
    _check(cf, f, [((x, b), {}) for b in (True, False, True, False)])
    assert cf.cache_info().misses == 2
    assert not any("int" in line for line in cf.cache_info().symbolic)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_branch_on_a_residue_is_a_guard_with_two_programs(k):
    x = torch.randn(4)

    def f(x, i):
        if (i + 1) % k == 0:
            return x * 2
        return x - i

    cf = torch.compile(f)
    _check(cf, f, [((x, i), {}) for i in range(2, 3 * k + 8)])
    assert cf.cache_info().misses <= 3   # the first value, then one program per outcome
    assert any("% " in line and "int guard" in line for line in cf.cache_info().symbolic)


def test_a_value_outside_the_traced_guard_retraces():
    """A stale specialisation would return the other branch's value."""
    x = torch.randn(4)

    def f(x, n):
        if n > 10:
            return x * n
        return x + n

    cf = torch.compile(f, dynamic=True)
    _check(cf, f, [((x, n), {}) for n in (5, 6, 20, 7, 30, 10, 11)])
    assert cf.cache_info().misses == 2
    assert "int guard n <= 10" in cf.cache_info().symbolic


def test_min_max_and_abs_of_an_int():
    x = torch.randn(5)

    def f(x, n):
        return x * min(n, 6) + abs(n - 4) + max(n, 3) / 2

    cf = torch.compile(f, dynamic=True)
    _check(cf, f, [((x, n), {}) for n in (2, 3, 5, 7, 9, 4, 8, 12)])


def test_int_divides_a_float_argument_at_run_time():
    x = torch.randn(5)

    def f(x, lr, i):
        return x * (lr / (i + 1))

    cf = torch.compile(f)
    _check(cf, f, [((x, 0.5, i), {}) for i in range(2, 9)], rtol=1e-5)
    assert cf.cache_info().misses == 2


def test_int_as_slice_bound_and_arange_length_is_specialised_per_value():
    x = torch.randn(9)

    def head(x, n):
        return x[:n] * 2

    def ramp(x, n):
        return torch.arange(n) * x.sum()

    for fn in (head, ramp):
        cf = torch.compile(fn)
        _check(cf, fn, [((x, n), {}) for n in (2, 3, 4, 5, 3, 4, 5, 2)], rtol=1e-5)
        # read as a size: one program per value, each found again by the signature
        assert cf.cache_info().misses <= 5
        assert any("specialised per value" in line for line in cf.cache_info().symbolic)


def test_int_indexing_a_list_of_tensors_never_replays_the_wrong_item():
    tensors = [torch.full((3,), float(k)) for k in range(6)]

    def pick(x, k):
        return tensors[k] + x

    x = torch.randn(3)
    cf = torch.compile(pick)
    order = [2, 3, 4, 5, 2, 3, 4, 5, 3, 2]
    _check(cf, pick, [((x, k), {}) for k in order])
    assert cf.cache_info().misses <= 5


def test_int_inside_a_tuple_argument_and_a_keyword():
    x = torch.randn(4)

    def f(x, sizes, scale=1):
        a, b = sizes
        return x * a - b + x * scale

    cf = torch.compile(f)
    _check(cf, f, [((x, (a, a + 3)), {"scale": a * 2}) for a in range(2, 9)])
    assert cf.cache_info().misses == 2
    lines = " ".join(cf.cache_info().symbolic)
    assert "sizes[0]" in lines and "sizes[1]" in lines and "scale" in lines


def test_int_inside_a_dict_argument():
    x = torch.randn(4)

    def f(x, cfg):
        return x * cfg["k"] if cfg["k"] % 2 == 0 else x + cfg["k"]

    cf = torch.compile(f)
    _check(cf, f, [((x, {"k": k}), {}) for k in range(2, 12)])
    assert cf.cache_info().misses <= 3
    assert any("cfg['k']" in line for line in cf.cache_info().symbolic)


def test_returned_int_is_the_call_value():
    x = torch.randn(2)

    def f(x, i):
        return x * 2, i + 1

    cf = torch.compile(f)
    _check(cf, f, [((x, i), {}) for i in range(2, 7)])


def test_int_multiplier_with_gradient():
    def f(x, i):
        return (x * i).sin().sum()

    cf = torch.compile(f)
    for i in range(2, 7):
        x1 = torch.randn(5, requires_grad=True)
        x2 = x1.detach().clone().requires_grad_(True)
        cf(x1, i).backward()
        f(x2, i).backward()
        np.testing.assert_allclose(x1.grad.numpy(), x2.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert cf.cache_info().misses == 2


def test_explain_names_the_symbolic_int_and_its_guards():
    x = torch.randn(4)

    def f(x, i):
        return x * i if i > 3 else x - i

    cf = torch.compile(f, dynamic=True)
    cf(x, 5)
    report = cf.explain(x, 6)
    assert any("int guard i > 3" in line for line in report.symbolic)


def test_dynamic_true_keeps_symbolic_dims_beside_an_int_that_never_changes():
    def f(x, heads):
        return (x * heads).sum(0)

    cf = torch.compile(f, dynamic=True)
    calls = [((torch.randn(n, 4), 4), {}) for n in (3, 5, 7, 9, 11, 6)]
    _check(cf, f, calls, rtol=1e-5)
    assert cf.cache_info().misses <= 3
    assert any(line.startswith("s0 = arg 0 dim 0") for line in cf.cache_info().symbolic)


def test_threads_calling_with_other_ints_each_get_their_own_value():
    import threading

    x = torch.randn(2, 4)

    def f(x, i):
        return x * i

    cf = torch.compile(f)
    cf(x, 2), cf(x, 3)
    wrong = []

    def work(seed):
        for k in range(150):
            i = 2 + (seed * 7 + k) % 9
            if not np.allclose(cf(x, i).numpy(), (x * i).numpy()):
                wrong.append(i)
    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong


def test_a_compiled_module_names_its_forward_parameter():
    from tracegrad import nn

    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x, n):
            y = self.lin(x)
            return y * n if n > 3 else y - n

    m = Scale()
    cm = torch.compile(m)
    x = torch.randn(2, 4)
    for n in (2, 3, 4, 5, 6, 2, 7):
        np.testing.assert_allclose(cm(x, n).detach().numpy(), m(x, n).detach().numpy(),
                                   rtol=1e-5)
    assert "int guard n > 3" in cm.cache_info().symbolic
    assert cm.cache_info().misses <= 4


def test_ints_whose_guards_split_many_ways_stop_retracing():
    x = torch.randn(3)

    def f(x, i):
        r = i % 6
        if r == 0:
            return x * 2
        if r == 1:
            return x - 1
        if r == 2:
            return x + 3
        if r == 3:
            return x * x
        if r == 4:
            return -x
        return x / 2

    cf = torch.compile(f)
    calls = [((x, i), {}) for i in list(range(2, 14)) * 4]
    _check(cf, f, calls)
    # at most 8 traces on the symbol, then one per value (12 values): never one per call
    assert cf.cache_info().misses <= 2 + 8 + 12
    misses = cf.cache_info().misses
    _check(cf, f, calls)
    assert cf.cache_info().misses == misses


def test_a_mode_int_of_two_values_keeps_symbolic_dims():
    def f(x, mode):
        return x.sum(0) * mode if mode > 2 else x.mean(0) - mode

    cf = torch.compile(f)
    calls = [((torch.randn(n, 4), mode), {}) for n in (3, 5, 7, 9, 11, 6, 13, 4)
             for mode in (2, 3)]
    _check(cf, f, calls, rtol=1e-5)
    # a group per mode serves every batch size (as before ints could be symbolic)
    assert cf.cache_info().misses <= 8
    assert any(line.startswith("s0 = arg 0 dim 0") for line in cf.cache_info().symbolic)


def test_a_step_counter_stays_symbolic_when_the_batch_changes_once():
    x_full, x_short = torch.randn(6, 4), torch.randn(3, 4)

    def f(x, i):
        return x * i + (i % 3)

    cf = torch.compile(f)
    calls = [((x_full if i % 10 else x_short, i), {}) for i in range(2, 40)]
    _check(cf, f, calls, rtol=1e-5)
    assert cf.cache_info().misses <= 5
