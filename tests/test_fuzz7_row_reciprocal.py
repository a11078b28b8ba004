"""Fuzz 7 regressions: a division inside a row kernel lowered twice (in the reduction loop
and in the store loop) must round the same way in both. With one column the reduction
loop folds the column index, and the old depth-based choice of NOTE (row reciprocal)
divided there but multiplied by the reciprocal in the store loop: x - max(x) was 2.4e-7,
log_softmax over one column -6e-8 (found by tests/test_fuzz7_programs.py, seed 15)."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn.functional as F

ROWS = np.array([[-2.54], [2.14], [0.37], [-1e-3]], np.float32)


@pytest.mark.parametrize("dynamic", [False, True])
def test_log_softmax_of_a_divided_single_column_is_zero(dynamic):
    fn = tg.compile(lambda h: F.log_softmax(h / 3, -1), dynamic=dynamic)
    got = fn(tg.tensor(ROWS)).numpy()
    np.testing.assert_array_equal(got, np.zeros_like(ROWS))


def test_row_max_subtracted_from_a_divided_single_column_is_zero():
    def centred(h):
        h = (h / 3 + 1) * (-4 / 3) + (h / 3 + 1) * -2
        return h - h.amax(-1, keepdim=True)
    got = tg.compile(centred)(tg.tensor(ROWS)).numpy()
    np.testing.assert_array_equal(got, np.zeros_like(ROWS))


def test_softmax_of_a_tensor_quotient_single_column_is_one():
    y = tg.tensor(np.array([[0.3], [0.7], [3.0], [-0.1]], np.float32))
    fn = tg.compile(lambda h, y: F.softmax(h / y, -1) + (h / y - (h / y).amax(-1, keepdim=True)))
    got = fn(tg.tensor(ROWS), y).numpy()
    np.testing.assert_array_equal(got, np.ones_like(ROWS))


@pytest.mark.parametrize("cols", [1, 2, 17])
def test_divided_rows_match_eager_bit_for_bit_at_the_row_maximum(cols):
    rng = np.random.default_rng(cols)
    x = tg.tensor(rng.standard_normal((5, cols)).astype(np.float32))
    fn = lambda h: h / 3 - (h / 3).amax(-1, keepdim=True)   # noqa: E731
    got, want = tg.compile(fn)(x).numpy(), fn(x).numpy()
    # the maximum's own position is exactly 0 in both, whatever the rounding of h / 3
    np.testing.assert_array_equal(got.max(-1), want.max(-1))
