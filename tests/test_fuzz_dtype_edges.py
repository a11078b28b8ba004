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


# in-place writes keep the written tensor's dtype: the value read after them is cast
# (a float result into an integer tensor raises, as in PyTorch: test_probe_core_inplace)
INPLACE_CASTS = {
    "int32 add_ int64 tensor": (lambda x, y: x.add_(y.long() * 3) * 1, np.int32, np.float32),
    "float16 mul_ float32 tensor": (lambda x, y: x.mul_(y) * 1, np.float16, np.float32),
    "float32 add_ float64": (lambda x, y: x.add_(y * 1e-9) * 1, np.float32, np.float64),
    "int masked_fill_ 2.7": (lambda x, y: x.masked_fill_(y > 0, 2.7) * 1, np.int32, np.float32),
}


@pytest.mark.parametrize("name", sorted(INPLACE_CASTS))
def test_a_value_written_in_place_is_read_in_the_tensors_dtype(name):
    # before: the traced value kept the op's result dtype (int x.add_(0.5) read as 1.5)
    fn, x_dtype, y_dtype = INPLACE_CASTS[name]
    compiled = tg.compile(fn)
    for seed in range(2):
        base = np.random.RandomState(seed).randn(5) * 3
        results = []
        for f in (fn, compiled):
            x = tg.tensor(base.astype(x_dtype))
            y = tg.tensor((base + 0.25).astype(y_dtype))
            out = f(x, y)
            results.append((out.numpy(), out.dtype, x.numpy()))
        np.testing.assert_array_equal(results[1][0], results[0][0])
        assert results[1][1] == results[0][1]
        np.testing.assert_array_equal(results[1][2], results[0][2])
