"""Compiled functions on arguments of every layout (NOTE (layout signatures) in
tracegrad/compiler/layouts.py): a fuzz of layouts x programs (views, reshapes, in-place
writes, stride queries), compiled against eager, and eager against PyTorch where it is
installed; before the layout joined the signature, a compiled ``x.view(-1)`` of a
transposed ``x`` returned values where eager raises, and ``x.stride()``,
``x.is_contiguous()`` and ``x.contiguous() is x`` answered as for a contiguous ``x``."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracegrad as tg

try:
    import torch
except ImportError:   # (eager is the reference; torch checks eager where installed)
    torch = None

LAYOUTS = {
    "contiguous": lambda m: m.arange(12.).reshape(3, 4),
    "transposed": lambda m: m.arange(12.).reshape(3, 4).t(),
    "stepped": lambda m: m.arange(24.).reshape(4, 6)[:, ::2],
    "expanded": lambda m: m.arange(4.).reshape(4, 1).expand(4, 3),
    "rows": lambda m: m.arange(20.).reshape(5, 4)[1:4],
    "columns": lambda m: m.arange(15.).reshape(3, 5)[:, 1:5],
    "permuted3": lambda m: m.arange(24.).reshape(2, 3, 4).permute(2, 0, 1),
    "unfolded": lambda m: m.arange(14.).unfold(0, 4, 2),
    "diagonal": lambda m: m.arange(16.).reshape(4, 4).diagonal().unsqueeze(1).expand(4, 3),
}

PROGRAMS = {
    "view": lambda x: x.view(-1) * 1,
    "view_split": lambda x: x.view(x.shape[0], 1, x.shape[1]) + 0,
    "flatten": lambda x: x.flatten() * 2,
    "is_contiguous": lambda x: x.is_contiguous(),
    "stride": lambda x: x.stride(),
    "contiguous_is": lambda x: x.contiguous() is x,
    "contiguous_stride": lambda x: x.contiguous().stride(),
    "t_stride": lambda x: x.t().stride(),
    "t_view": lambda x: x.t().view(-1) + 0,
    "slice_stride": lambda x: x[:, 1:].stride(),
    "slice_is_contiguous": lambda x: x[1:].is_contiguous(),
    "reshape_stride": lambda x: x.reshape(x.shape[1], x.shape[0]).stride(),
    "unsqueeze_stride": lambda x: x.unsqueeze(0).stride(),
    "reshape_write": lambda x: (x.reshape(-1).mul_(2) + 0, x + 0),
    "contiguous_write": lambda x: (x.contiguous().add_(1) + 0, x + 0),
    "in_place": lambda x: x.mul_(2) + 1,
    "setitem": lambda x: (x.__setitem__((0, 0), 7.0), x + 0)[1],
    "fill_row": lambda x: x[0].fill_(3) + 0,
    "zero_column": lambda x: (x[:, 0].zero_(), x * 1)[1],
}

# PyTorch leaves in-place ops on tensors whose elements overlap without a rule (it checks
# only expanded dims); eager and compiled agree there, torch's order differs
_TORCH_UNDEFINED = {("unfolded", "in_place")}


def _plain(value):
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if hasattr(value, "detach"):
        return value.detach().numpy().tolist()
    return tuple(value) if type(value).__name__ == "Size" else value


def _outcome(fn, make, module):
    """(result, argument after) or the error's type."""
    x = make(module)
    try:
        result = fn(x)
    except RuntimeError as e:
        return ("raised", str(e).split(" (")[0])
    return (_plain(result), _plain(x))


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("program", list(PROGRAMS))
def test_compiled_matches_eager_and_torch(layout, program):
    make, fn = LAYOUTS[layout], PROGRAMS[program]
    eager = _outcome(fn, make, tg)
    compiled = tg.compile(fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # (a call that runs eagerly)
        first = _outcome(compiled, make, tg)
        again = _outcome(compiled, make, tg)
    assert first == eager, (layout, program)
    assert again == eager, (layout, program)
    if torch is not None and (layout, program) not in _TORCH_UNDEFINED:
        reference = _outcome(fn, make, torch)
        if eager[0] == "raised":   # (messages differ in detail; both raise)
            assert reference[0] == "raised", (layout, program, reference)
        else:
            assert reference == eager, (layout, program)


def test_view_of_transposed_argument_raises_as_eager():
    f = tg.compile(lambda x: x.view(-1) + 1)
    x = tg.arange(6.).reshape(2, 3)
    np.testing.assert_array_equal(f(x).numpy(), np.arange(6.) + 1)
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        f(x.t())


def test_each_layout_traces_once():
    f = tg.compile(lambda x: x * 2)
    base = tg.arange(12.).reshape(3, 4)
    for x in (base, base.t().t(), base.t(), base.t(), base[:, ::1]):
        np.testing.assert_array_equal(f(x).numpy(), x.numpy() * 2)
    assert f.misses == 2   # contiguous (three calls), transposed (two)


def test_layout_change_in_debug_reason():
    from tracegrad.compiler.debug import retrace_reason
    f = tg.compile(lambda x: x + 1)
    x = tg.arange(6.).reshape(3, 2)
    f(x.reshape(2, 3))
    f(x.t())
    keys = f._signatures
    assert "layout changed" in retrace_reason(keys[1], keys[:1])


def test_write_into_overlapping_argument_runs_eagerly():
    """A program writes each element of an argument apart; eagerly an expanded element is
    one memory cell, so the call runs eagerly (and raises as eager does)."""
    def fill(x):
        x[0].fill_(5)
        return x + 0

    f = tg.compile(fill)
    base = tg.arange(14.)
    expected = fill(tg.arange(14.).unfold(0, 4, 2))
    np.testing.assert_array_equal(f(base.unfold(0, 4, 2)).numpy(), expected.numpy())
    np.testing.assert_array_equal(base.numpy()[:6], [5, 5, 5, 5, 4, 5])
    g = tg.compile(lambda x: x.mul_(2))
    with pytest.raises(RuntimeError, match="more than one element"):
        g(tg.zeros(4, 1).expand(4, 3))


@pytest.mark.parametrize("make", [
    lambda x: (x, x[1:]), lambda x: (x[1:], x[:-1]), lambda x: (x.reshape(2, 3).t(), x),
])
def test_aliasing_arguments_match_eager(make):
    def f(a, b):
        a.mul_(2)
        return b + 0

    compiled = tg.compile(f)
    for _ in range(2):
        x_eager, x_compiled = tg.arange(6.), tg.arange(6.)
        expected = f(*make(x_eager))
        np.testing.assert_array_equal(compiled(*make(x_compiled)).numpy(), expected.numpy())
        np.testing.assert_array_equal(x_compiled.numpy(), x_eager.numpy())


@pytest.mark.parametrize("make", [lambda: tg.arange(4.).reshape(1, 4).t(),
                                  lambda: tg.zeros(2, 1, 3).permute(1, 0, 2),
                                  lambda: tg.zeros(3, 4)[:, :0], lambda: tg.zeros(3, 0)])
def test_stride_of_size_one_dims_of_contiguous_argument(make):
    """C-contiguous, but a size-1 (or empty) dim's stride is not C's: the signature keys
    it, so stride() and the view rules answer as eagerly."""
    def f(x):
        return x.stride(), x.is_contiguous(), x.reshape(-1) * 2

    x = make()
    got, want = tg.compile(f)(x), f(x)
    assert got[:2] == want[:2]
    np.testing.assert_array_equal(got[2].numpy(), want[2].numpy())


@pytest.mark.parametrize("make", [lambda: tg.arange(6.).reshape(2, 3),
                                  lambda: tg.arange(12.).reshape(2, 6)[:, ::2]])
def test_write_through_a_reshape_of_an_argument_compiles(make):
    """The trace knows the layout, so a reshape of an argument is a view in it exactly where
    it is one eagerly: the write compiles (it ran eagerly, with a warning, before)."""
    def f(x):
        x.reshape(-1)[1] = 5.0
        return x * 1

    compiled = tg.compile(f)
    want_x, x = make(), make()
    want = f(want_x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = compiled(x)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    np.testing.assert_array_equal(x.numpy(), want_x.numpy())
