"""sinh and cosh where exp(|x|) overflows but they do not (NOTE (sinh and cosh near
overflow) in tracegrad/_ops/trig.py): eager and compiled against NumPy."""
import numpy as np
import pytest

import tracegrad as torch

WINDOW = {np.float64: (709.79, 710.475), np.float32: (88.73, 89.41), np.float16: (11.09, 11.77)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])   # float16: was inf
@pytest.mark.parametrize("name", ["sinh", "cosh"])
def test_finite_up_to_their_own_overflow(dtype, name):
    lo, hi = WINDOW[dtype]
    x = np.concatenate([np.linspace(lo, hi, 50), -np.linspace(lo, hi, 50),
                        [1.0, -2.5, 30.0, hi + 1, -hi - 1, 1e6, np.inf, -np.inf, np.nan, -0.0]])
    with np.errstate(over="ignore"):   # (1e6 is inf in float16)
        x = x.astype(dtype)
        want = getattr(np, name)(x.astype(np.float64)).astype(dtype)   # (rounded once)
    fn = getattr(torch, name)
    compiled = torch.compile(lambda t: fn(t), fullgraph=True)
    for got in (fn(torch.from_numpy(x)).numpy(), compiled(torch.from_numpy(x)).numpy()):
        finite = np.isfinite(want)
        assert np.isfinite(got[:100]).all() and finite[:100].all()
        err = np.abs(got[finite] - want[finite]) / np.spacing(np.abs(want[finite]))
        assert err.max() <= 3, x[finite][np.argmax(err)]
        assert np.array_equal(got[~finite], want[~finite], equal_nan=True)
        assert np.array_equal(np.signbit(got[~np.isnan(want)]), np.signbit(want[~np.isnan(want)]))


def test_gradient_of_the_branch_not_taken_sends_no_nan():
    x = torch.tensor([1.0, -2.0, 0.0, 750.0, -750.0], dtype=torch.float64, requires_grad=True)
    torch.sinh(x).sum().backward()
    with np.errstate(over="ignore"):
        want = np.cosh([1.0, -2.0, 0.0, 750.0, -750.0])   # inf past 710.48, as NumPy
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-15)
