"""Slices of a symbolic dim follow ``s0`` (``tracegrad._size.slice_indices``): with a
SymInt that is no int (NOTE (no int underneath) in tracegrad/compiler/symint.py),
``slice.indices`` would read the size through ``__index__``, an escape, and every new
size would retrace.  Each function here is served on its guards at new sizes and equals
eager there; the helpers equal ``slice.indices`` on plain and symbolic sizes."""
import itertools

import numpy as np
import pytest

import tracegrad as torch
from tracegrad._size import slice_indices, slice_length
from tracegrad.compiler.symint import Recorder, SymInt, symbol

SLICING = {
    # before NOTE (no int underneath) these were served (the int was read silently)...
    "x[:1] expanded": lambda x: x[:1].expand(x.shape[0], 3) * x,
    "x[-1]": lambda x: x[-1] * x,
    "x[:, 1:]": lambda x: x[:, 1:] * 2,
    # ... and these retraced every size (s0 - 1 computed in C was a plain int)
    "x[1:] - x[:-1]": lambda x: x[1:] - x[:-1],
    "x[:n - 1]": lambda x: x[: x.shape[0] - 1] * 2,
    "narrow": lambda x: x.narrow(0, 1, x.shape[0] - 2) * 2,
    "x[::-1]": lambda x: x[::-1] + x,
}


@pytest.mark.parametrize("name", list(SLICING))
def test_a_slice_of_the_symbolic_dim_is_served_on_its_guards(name):
    fn = SLICING[name]
    calls = [0]

    def counted(x):
        calls[0] += 1
        return fn(x)
    c = torch.compile(counted, dynamic=True)
    for k, n in enumerate((8, 9, 13, 30, 44, 5)):
        x = torch.randn(n, 3)
        before = calls[0]
        np.testing.assert_allclose(c(x).numpy(), fn(x).numpy(), rtol=1e-6, err_msg=f"s0={n}")
        if k:
            assert calls[0] == before, f"{name}: s0={n} traced again"
    (group,) = c._groups.values()
    assert group.fits[0].guarded.why_not is None


VALUES = [None, -12, -7, -3, -1, 0, 1, 2, 3, 5, 8, 12]
STEPS = [None, -3, -2, -1, 1, 2, 5]


def test_slice_indices_equal_python_s_on_plain_and_symbolic_sizes():
    for n in range(0, 10):
        for start, stop, step in itertools.product(VALUES, VALUES, STEPS):
            s = slice(start, stop, step)
            want = s.indices(n)
            assert slice_indices(s, np.int64(n)) == want
            assert slice_length(slice(start and np.int64(start), stop, step), n) == \
                len(range(*want))
            if n < 2:
                continue
            rec = Recorder()
            got = slice_indices(s, symbol(n, rec))
            length = slice_length(s, symbol(n, rec))
            assert tuple(v._v if isinstance(v, SymInt) else v for v in got) == want, s
            assert (length._v if isinstance(length, SymInt) else length) == \
                len(range(*want)), s
            assert rec.escapes == [], (s, rec.escapes)


def test_slice_indices_follow_the_size():
    rec = Recorder()
    n = symbol(16, rec)
    assert slice_length(slice(1, None), n).expr == (-1, 1)
    assert slice_length(slice(None, None, -1), n).expr == (0, 1)
    start, stop, step = slice_indices(slice(-3, None), n)
    assert start.expr == (-3, 1) and stop.expr == (0, 1) and step == 1
    assert rec.escapes == []
    with pytest.raises(ValueError, match="step cannot be zero"):
        slice_indices(slice(None, None, 0), n)


RETURNED_VIEWS = {
    "reshape(n, -1)": lambda x: x.reshape(x.shape[0], -1),
    "x[1:]": lambda x: x[1:],
    "view(n // 2, 2, -1)": lambda x: x.view(x.size(0) // 2, 2, -1),
    "x[:, 0]": lambda x: x[:, 0],
}


@pytest.mark.parametrize("name", list(RETURNED_VIEWS))
def test_a_returned_view_of_the_argument_is_served_at_its_own_size(name):
    """NOTE (returned arguments): the result is a view of the argument, made by replaying
    the trace's view ops; served on the guards, their sizes are the new size's (before:
    ``reshape(x.shape[0], -1)`` of a (3, 1, 1) argument replayed the traced (2, 1) and
    raised ShapeError, eager works)."""
    fn = RETURNED_VIEWS[name]
    c = torch.compile(fn, dynamic=True)
    for n in (8, 12, 20, 6, 40, 4):
        x, y = torch.randn(n, 2, 1), None
        y = x.clone()
        got, want = c(x), fn(y)
        assert tuple(got.shape) == tuple(want.shape), f"s0={n}"
        np.testing.assert_array_equal(got.numpy(), want.numpy())
        got.mul_(0)
        want.mul_(0)
        np.testing.assert_array_equal(x.numpy(), y.numpy())   # it aliases the argument
    (group,) = c._groups.values()
    assert group.served_without_retrace >= 4
