"""Negative padding that crops more than a dim holds (found by the second fuzz pass).

PAD's eager rule cropped first and padded after, so pads (-2, 1) of a size-1 dim gave
size 1 where its own shape rule (and codegen's masked view) say 0: a compile trace then
stopped on the shape mismatch, and ``conv_transpose2d`` (whose inner pad is
``dilation * (k - 1) - padding``) returned a (3, 1, 3, 1) result where PyTorch's is
(3, 1, 3, 0), and it raised a bare ``windows`` error for other sizes PyTorch refuses."""
import itertools
import warnings

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn.functional as F
from tracegrad._ops.shape import pad_dims
from tracegrad._primitives.registry import ShapeError


def _reference_pad(x: np.ndarray, before: int, after: int) -> np.ndarray:
    """Element j reads x[j - before], 0 outside x: the meaning of PAD along one dim."""
    n = len(x) + before + after
    return np.array([x[j - before] if 0 <= j - before < len(x) else 0.0 for j in range(n)],
                    np.float32)


CASES = [(d, b, a) for d, b, a in itertools.product(range(4), range(-5, 3), range(-5, 3))
         if d + b + a >= 0]


def test_pad_primitive_matches_its_meaning_for_every_crop():
    for d, b, a in CASES:
        x = np.arange(1, d + 1, dtype=np.float32)
        got = pad_dims(tg.tensor(x), [(b, a)]).numpy()
        np.testing.assert_array_equal(got, _reference_pad(x, b, a), err_msg=str((d, b, a)))


@pytest.mark.parametrize("d,b,a", [(1, -2, 1), (3, -4, 2), (3, 1, -4), (2, -3, 2)])
def test_pad_crop_beyond_the_dim_compiles_and_matches_eager(d, b, a):
    x = np.arange(1, d + 1, dtype=np.float32).reshape(1, d)
    w = np.random.RandomState(0).randn(d + b + a).astype(np.float32)

    def fn(t, ww):
        return (pad_dims(t, [(0, 0), (b, a)]) * ww).sum() + t.sum()

    def run(f):
        t, ww = tg.tensor(x, requires_grad=True), tg.tensor(w)
        out = f(t, ww)
        out.backward()
        return out.item(), t.grad.numpy()

    with warnings.catch_warnings():
        warnings.simplefilter("error")   # a stopped trace warns: it must compile now
        got = run(tg.compile(fn, fullgraph=True))
    want = run(fn)
    assert got[0] == pytest.approx(want[0], rel=1e-6)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    np.testing.assert_allclose(want[1], 1 + np.array(
        [w[i + b] if 0 <= i + b < len(w) else 0.0 for i in range(d)], np.float32)[None])


@pytest.mark.parametrize("d,pads", [(1, (-2, 1)), (3, (-2, -2)), (0, (-1, 1)), (2, (-3, 4))])
def test_functional_pad_refuses_crops_larger_than_the_dim_as_pytorch(d, pads):
    with pytest.raises(ShapeError, match=r"pad: negative padding .* size"):
        F.pad(tg.zeros(2, d), pads)


def test_functional_pad_keeps_a_crop_to_empty():
    assert tuple(F.pad(tg.zeros(2, 3), (-1, -2)).shape) == (2, 0)


@pytest.mark.parametrize("case", [
    # (input spatial, kernel, stride, padding, output_padding, dilation): output size 0
    ((4, 1), (2, 1), (1, 4), (1, 2), (0, 3), (1, 3)),
    ((1, 3), (1, 2), (1, 1), (0, 2), (0, 0), (1, 1)),
])
def test_conv_transpose2d_refuses_an_empty_output_with_its_name(case):
    size, k, s, p, op, d = case
    x = tg.zeros((2, 1) + size)
    w = tg.zeros((1, 1) + k)
    with pytest.raises(ShapeError, match=r"conv_transpose2d: .*output size .* too small"):
        F.conv_transpose2d(x, w, stride=s, padding=p, output_padding=op, dilation=d)


def test_conv_transpose1d_output_size_one_with_a_large_crop_is_right():
    # inner pad (-2, 2): the whole dilated input is cropped on one side and padded back
    x = np.random.RandomState(1).randn(1, 1, 2).astype(np.float32)
    w = np.random.RandomState(2).randn(1, 1, 1).astype(np.float32)
    got = F.conv_transpose1d(tg.tensor(x), tg.tensor(w), stride=3, padding=1,
                             output_padding=2).numpy()
    # out[j] = sum_i x[i] w[j + 1 - 3 i], length (2 - 1) * 3 - 2 + 0 + 2 + 1 = 4
    want = np.zeros((1, 1, 4), np.float32)
    for j in range(4):
        for i in range(2):
            if j + 1 - 3 * i == 0:
                want[0, 0, j] += x[0, 0, i] * w[0, 0, 0]
    np.testing.assert_allclose(got, want, rtol=1e-6)
