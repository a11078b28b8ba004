"""Signed zeros, NaN and infinities: compiled (LLVM) against eager (NumPy), bit for bit.

Found by an audit of every public math function compiled against eager over adversarial
inputs: atan, asin, asinh and atan2 gave +0.0 for -0.0 (their expansions negate where
x < 0, which -0.0 is not) and sign(-0.0) gave -0.0 where np.sign gives +0.0.
"""
import numpy as np
import pytest

import tracegrad as torch

FNS = {"atan": torch.atan, "asin": torch.asin, "asinh": torch.asinh, "sign": torch.sign,
       "atan2_tiny": lambda t: torch.atan2(t, torch.full_like(t, 1e30)),
       "atan2_flip": lambda t: torch.atan2(t, t.flip(0)), "sinh": torch.sinh,
       "atanh": torch.atanh, "tanh": torch.tanh, "sin": torch.sin, "expm1": torch.expm1,
       "log1p": torch.log1p, "erf": torch.erf, "sqrt": torch.sqrt, "tan": torch.tan}
VALUES = [0.0, -0.0, 1e-30, -1e-30, 1e-20, -1e-20, 1e-45, -1e-45, np.inf, -np.inf, np.nan,
          1.0, -1.0, 0.5, -0.5, 3.0, -3.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(FNS))
def test_special_values_match_eager(name, dtype):
    x = np.array(VALUES, dtype)
    fn = FNS[name]
    with np.errstate(all="ignore"):
        want = fn(torch.from_numpy(x.copy())).numpy()
        got = torch.compile(fn, fullgraph=True)(torch.from_numpy(x.copy())).numpy()
    assert np.array_equal(np.isnan(got), np.isnan(want)), x[np.isnan(got) != np.isnan(want)]
    exact = ~np.isnan(want) & ((want == 0) | np.isinf(want))
    assert np.array_equal(got[exact], want[exact]), x[exact]
    bad = exact & (np.signbit(got) != np.signbit(want))
    assert not bad.any(), f"{name}: sign of {x[bad]} -> {got[bad]}, eager {want[bad]}"
    close = ~np.isnan(want) & ~exact
    np.testing.assert_allclose(got[close], want[close], rtol=8 * np.finfo(dtype).eps)
