"""Pooling with ``ceil_mode=True`` over a padded input shorter than the kernel span
(found by the second fuzz pass, against PyTorch): PyTorch gives one window that
overhangs the end, tracegrad raised ``the (padded) input ... is smaller than the kernel
span``. Values and gradients against a brute-force reference, eager and compiled."""
import itertools
import warnings

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn.functional as F
from tracegrad._primitives.registry import ShapeError


def _max_pool_reference(x: np.ndarray, k: int, s: int, p: int, d: int, out: int):
    """(result, gradient of its sum) of max_pool1d over the last dim of ``x``."""
    size = x.shape[-1]
    res = np.full(x.shape[:-1] + (out,), -np.inf, np.float32)
    grad = np.zeros_like(x)
    for j in range(out):
        taps = [j * s - p + i * d for i in range(k)]
        taps = [t for t in taps if 0 <= t < size]
        if not taps:
            continue
        vals = x[..., taps]
        res[..., j] = vals.max(-1)
        first = np.argmax(vals, -1)   # NOTE: ties go to the first tap, as amax's rule
        for idx in np.ndindex(x.shape[:-1]):
            grad[idx + (taps[first[idx]],)] += 1
    return res, grad


def _overhanging_cases():
    for size, k, s, p, d in itertools.product(range(1, 7), range(2, 5), range(1, 4),
                                              range(0, 3), range(1, 4)):
        span = d * (k - 1) + 1
        if p > k // 2 or size + 2 * p >= span:
            continue   # PyTorch refuses the padding, or the kernel fits: not this case
        if -(size + 2 * p - span) >= s or p >= d * (k - 1):
            continue   # ceil_mode leaves no window either / the one window sees only padding
        yield size, k, s, p, d


CASES = list(_overhanging_cases())


def test_the_grid_holds_cases():
    assert len(CASES) >= 10


@pytest.mark.parametrize("size,k,s,p,d", CASES[::3])
def test_max_pool1d_ceil_mode_window_overhangs_the_padded_input(size, k, s, p, d):
    x = np.random.RandomState(size * 100 + k * 10 + s).randn(2, 3, size).astype(np.float32)
    want, want_grad = _max_pool_reference(x, k, s, p, d, 1)

    def pool(t):
        return F.max_pool1d(t, k, stride=s, padding=p, dilation=d, ceil_mode=True)

    for fn in (pool, tg.compile(pool)):
        t = tg.tensor(x, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(t)
        out.sum().backward()
        np.testing.assert_array_equal(out.detach().numpy(), want)
        np.testing.assert_array_equal(t.grad.numpy(), want_grad)


@pytest.mark.parametrize("count_include_pad,want", [(True, 1.0), (False, 3.0)])
def test_avg_pool1d_ceil_mode_window_overhangs(count_include_pad, want):
    # one window [-1, 3) clipped to the padded end 2: 3 places with the padding, 1 without
    def pool(t):
        return F.avg_pool1d(t, 4, stride=2, padding=1, ceil_mode=True,
                            count_include_pad=count_include_pad)
    for fn in (pool, tg.compile(pool)):
        assert fn(tg.tensor([[[3.0]]])).tolist() == [[[want]]]


def test_without_ceil_mode_it_still_raises_naming_the_pool():
    with pytest.raises(ShapeError, match="max_pool1d: the \\(padded\\) input of size 9"):
        F.max_pool1d(tg.zeros(1, 1, 7), 4, stride=2, padding=1, dilation=3)
