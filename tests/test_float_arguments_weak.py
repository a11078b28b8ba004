"""Python float arguments of a compiled function behave as Python floats, weak scalars
(NOTE (float arguments) in tracegrad/compiler/float_args.py): compiled equals eager in
dtype, in value bit for bit and in the Python type of returned values, from the first
call, with one program for every value where the value is only computed with."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tracegrad as tg


def _same(got, want):
    """Equal in structure, dtype, bits (nan equal to nan) and Python type."""
    if isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)
    elif isinstance(want, tg.Tensor):
        assert isinstance(got, tg.Tensor) and got.dtype == want.dtype
        g, w = got.detach().numpy(), want.detach().numpy()
        assert g.shape == w.shape
        np.testing.assert_array_equal(g.reshape(-1).view(np.uint8), w.reshape(-1).view(np.uint8))
    else:
        assert type(got) is type(want)
        assert got == want or (got != got and want != want)
        if type(want) is float:
            assert math.copysign(1.0, got) == math.copysign(1.0, want)


def _check(fn, calls, **options):
    cf = tg.compile(fn, **options)
    for args in calls:
        _same(cf(*args), fn(*args))
    return cf


VALUES = (0.3, 2.5, -1.75, 1e-3, 7.0)


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool", "uint8"])
def test_an_integer_tensor_with_a_float_argument_gives_the_default_dtype(dtype):
    x = tg.tensor(np.array([1, 0, 3, 2]).astype(dtype))
    cf = _check(lambda x, s: (x * s, s + x, x / s, x ** s), [(x, s) for s in VALUES])
    assert cf(x, 0.5)[0].dtype == tg.float32
    assert cf.cache_info().misses == 1


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_a_float_tensor_with_a_float_argument_keeps_its_dtype(dtype):
    x = tg.tensor(np.array([1.0, -2.5, 3.25, 0.1])).to(getattr(tg, dtype))
    cf = _check(lambda x, s: (x * s + s ** 2 - abs(s), (x - s) / (s * 3)),
                [(x, s) for s in VALUES])
    assert cf(x, 0.5)[0].dtype == getattr(tg, dtype)
    assert cf.cache_info().misses == 1


def test_ops_taking_two_python_scalars_see_floats():
    x = tg.tensor(np.array([1.0, -2.0, 0.5], dtype=np.float32))
    cf = _check(lambda x, s: (tg.where(x > 0, s, -s), tg.where(x > 0, s, 1)),
                [(x, s) for s in VALUES])
    assert cf.cache_info().misses == 1


def test_a_comparison_of_a_float_argument_is_a_python_bool():
    x = tg.tensor(np.array([1.0, -2.0, 3.5]))   # float64: 0.1 * True is the float 0.1
    cf = _check(lambda x, s: x + 0.1 * (s > 0) + (s <= 1.5) * 0.7,
                [(x, s) for s in (2.0, 3.0, -1.0, 0.5, 4.0, -2.0)])
    assert cf.cache_info().misses <= 3   # one program per outcome of the guards, not value


def test_arithmetic_between_float_arguments_and_ints_stays_python():
    x = tg.tensor(np.array([1.5, -2.0, 0.25]))

    def f(x, s, t):
        u = s * t + 3 - s / 7 + (s // 0.5) + s % 0.3 - 2 ** t
        return x * u, u

    cf = _check(f, [(x, s, t) for s, t in ((0.3, 1.25), (2.5, -0.5), (-1.0, 3.0))])
    assert type(cf(x, 0.1, 0.2)[1]) is float


def test_a_float_argument_in_an_if_takes_eagers_branch():
    x = tg.tensor(np.array([1.0, 2.0, -3.0], dtype=np.float32))

    def f(x, s):
        if s > 0:
            return x * s
        return x - s

    cf = _check(f, [(x, s) for s in (0.5, 1.5, -0.5, 2.0, -3.0, 0.0, -0.0)])
    assert cf.cache_info().misses <= 3


def test_reads_no_closure_follows_specialise_on_the_value():
    x = tg.tensor(np.array([1.0, 4.0, 9.0], dtype=np.float32))

    def f(x, s):
        n = int(s)   # a size: one program per value
        return x * math.sqrt(s) + float(s), x[:n] * 2, f"{s:.2f}"

    _check(f, [(x, s) for s in (1.0, 2.25, 3.5, 2.25, 1.0)])


def test_type_of_a_float_argument_is_float():
    x = tg.tensor(np.array([1.0, 2.0], dtype=np.float32))
    _check(lambda x, s: x * 2 if type(s) is float else x, [(x, 0.5), (x, 1.5)])


def test_returned_float_arguments_and_their_expressions_are_floats():
    x = tg.tensor(np.array([1.0, 2.0]))
    cf = _check(lambda x, s: (x + 1, s, s * 2, -s, abs(s), {"half": [s / 2]}),
                [(x, s) for s in (0.3, 1.5, -2.0, 0.3, -0.0, math.inf)])
    assert cf.cache_info().misses == 1   # computed at each call, not specialised
    _check(lambda x, s: (x * s, s > 1, round(s), s // 1), [(x, s) for s in (0.3, 1.5, -2.5)])


@pytest.mark.parametrize("special", [-0.0, 0.0, math.inf, -math.inf, math.nan])
def test_signed_zero_infinities_and_nan(special):
    x = tg.tensor(np.array([1.0, -2.0, 0.0], dtype=np.float32))

    def f(x, s):
        return x / s, x * s, (s > 0) * x, x + s

    cf = tg.compile(f)
    for s in (special, 2.0, special, -0.0, 0.0, math.nan):
        with np.errstate(all="ignore"):
            _same(cf(x, s), f(x, s))


def test_gradients_flow_to_tensors_and_not_to_the_float_argument():
    def f(w, s):
        loss = ((w * s + s ** 2) ** 2).sum()
        loss.backward()
        return loss

    cf = tg.compile(f)
    for s in (0.5, -1.25, 3.0):
        got_w = tg.tensor(np.array([0.5, -1.0, 2.0], dtype=np.float32), requires_grad=True)
        want_w = tg.tensor(np.array([0.5, -1.0, 2.0], dtype=np.float32), requires_grad=True)
        _same(cf(got_w, s), f(want_w, s))
        _same(got_w.grad, want_w.grad)
    assert cf.cache_info().misses == 1


def test_a_float_argument_mixed_with_a_symbolic_int_argument():
    x = tg.tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32))

    def f(x, s, i):
        return x * (s * i) + i, s + i, s > i

    _check(f, [(x, s, i) for s, i in ((0.5, 3), (1.5, 4), (4.5, 5), (9.0, 6))],
           dynamic=True)


@pytest.mark.parametrize("dtype", [None, "float16", "float64"])
def test_full_and_full_like_with_a_float_argument_serve_every_value(dtype):
    x = tg.tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    kind = None if dtype is None else getattr(tg, dtype)

    def f(x, s):
        return tg.full((2, 3), s, dtype=kind) * x, tg.full_like(x, s, dtype=kind)

    cf = _check(f, [(x, s) for s in (0.1, -0.0, 2.5, 1e-8, 0.0, 70000.0)])
    assert cf.cache_info().misses == 1


def test_a_float_argument_written_into_an_optimizers_options_runs_eagerly():
    # NOTE (float arguments written to state): a replay would not repeat g["lr"] = lr,
    # while the optimizer reads g["lr"] at each call; the lrs switch back to an earlier one
    def run(compiled):
        tg.manual_seed(0)
        m = tg.nn.Linear(3, 2)
        opt = tg.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        x = tg.tensor(np.arange(12, dtype=np.float32).reshape(4, 3) / 10)

        def step(x, lr):
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad()
            loss = (m(x) ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        f = tg.compile(step) if compiled else step
        weights = []
        for lr in (0.1, 0.05, 0.02, 0.05, 0.1):
            f(x, lr)
            weights.append(m.weight.detach().numpy().copy())
        return weights

    want = run(False)
    # (optim/param_group.py refuses the write itself: NOTE (param groups written in a trace))
    with pytest.warns(RuntimeWarning, match=r"param_group\['lr'\]"):
        got = run(True)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_a_float_read_as_a_value_at_every_call_stops_tracing_after_eight_values():
    # NOTE (float values traced): tg.tensor(s) specialises; a new value at every call
    # runs eagerly after 8 traces instead of tracing at every call
    x = tg.tensor(np.array([1.0, 2.0], dtype=np.float32))

    def f(x, s):
        return x * tg.tensor(s)

    cf = tg.compile(f)
    with pytest.warns(RuntimeWarning, match="8 traces"):
        for k in range(12):
            _same(cf(x, 0.1 * k + 0.05), f(x, 0.1 * k + 0.05))
    assert cf.cache_info().misses == 9
