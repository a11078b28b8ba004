"""Compiled equals eager at the edges of the number line: signed zeros and infinities
where a kernel expands a primitive into scalar ops (atan2's branch cut)."""
import itertools

import numpy as np
import pytest

import tracegrad as tg

EDGES = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 2.5, -1e-30]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_atan2_signed_zeros_and_infinities_match_numpy(dtype):
    # before: atan2(0.0, -0.0) gave 0 (NumPy: pi), atan2(-0.0, -1) gave pi (NumPy: -pi),
    # and atan2(+-inf, +-inf) gave NaN (NumPy: +-pi/4, +-3pi/4)
    y, x = (np.array(v, dtype) for v in zip(*itertools.product(EDGES, EDGES)))
    want = np.arctan2(y, x)
    got = tg.compile(tg.atan2)(tg.tensor(y), tg.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    np.testing.assert_allclose(tg.atan2(tg.tensor(y), tg.tensor(x)).numpy(), want, rtol=0)
