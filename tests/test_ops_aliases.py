"""PyTorch's aliases and small shape/dtype ops (tracegrad/_ops/aliases.py) against torch."""
import numpy as np
import pytest

import tracegrad as tg
from torch_parity_testing import compare, compiled_matches_eager

torch = pytest.importorskip("torch")
rng = np.random.default_rng(0)
X = rng.standard_normal((3, 4))
Y = np.where(rng.random((3, 4)) < 0.3, X, rng.standard_normal((3, 4)))


@pytest.mark.parametrize("name", ["greater_equal", "less_equal", "not_equal", "greater",
                                  "less"])
def test_comparison_aliases(name):
    compare(lambda m, a, b: getattr(m, name)(a, b), lambda m, a, b: getattr(m, name)(a, b), X, Y)
    compare(lambda m, a, b: getattr(a, name)(b), lambda m, a, b: getattr(a, name)(b), X, Y)
    compare(lambda m, a: getattr(m, name)(a, 0.5), lambda m, a: getattr(m, name)(a, 0.5),
            np.arange(5))


@pytest.mark.parametrize("call", [
    lambda m, a: m.moveaxis(a, 0, -1), lambda m, a: a.moveaxis((0, 1), (1, 0)),
    lambda m, a: m.fix(a * 3), lambda m, a: m.positive(a), lambda m, a: m.fliplr(a),
    lambda m, a: m.flipud(a), lambda m, a: m.sgn(a), lambda m, a: m.deg2rad(a * 90),
    lambda m, a: a.rad2deg(), lambda m, a: m.diagflat(a), lambda m, a: m.diagflat(a[0], -1),
    lambda m, a: m.hsplit(a, 2), lambda m, a: m.vsplit(a, [1]), lambda m, a: a.hsplit([1, 3]),
])
def test_views_and_scalings_with_gradients(call):
    compare(call, call, X, grad=(0,))


@pytest.mark.parametrize("call", [
    lambda m, a: m.dsplit(a.reshape(1, 3, 4), 2), lambda m, a: m.hsplit(a[0], 2),
    lambda m, a: m.isposinf(a), lambda m, a: a.isneginf(), lambda m, a: m.isreal(a),
    lambda m, a: m.signbit(a),
])
def test_floats_with_specials(call):
    a = X.copy()
    a[0, :3] = [np.inf, -np.inf, -0.0]
    compare(call, call, a)


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.bool_, np.float32])
def test_predicates_on_every_dtype(dtype):
    a = (np.arange(6).reshape(2, 3) - 2).astype(dtype)
    for name in ("isposinf", "isneginf", "isreal", "signbit"):
        compare(lambda m, t: getattr(m, name)(t), lambda m, t: getattr(m, name)(t), a)
    for name in ("deg2rad", "rad2deg", "fix", "sgn"):
        if dtype == np.bool_ and name in ("fix", "sgn"):
            continue
        if dtype == np.uint8 and name == "sgn":
            continue
        compare(lambda m, t: getattr(m, name)(t), lambda m, t: getattr(m, name)(t), a)
    ours, theirs = tg.tensor(a), torch.tensor(a)
    assert ours.is_signed() == theirs.is_signed()
    assert tg.is_complex(ours) == theirs.is_complex() is False
    assert ours.itemsize == theirs.itemsize and ours.nbytes == theirs.nbytes
    assert ours.is_cpu and ours.get_device() == theirs.get_device() == -1


def test_is_same_size_and_empty():
    assert tg.ones(2, 3).is_same_size(tg.zeros(2, 3))
    assert not tg.is_same_size(tg.ones(2, 3), tg.ones(3, 2))
    compare(lambda m, a: m.fliplr(a), lambda m, a: m.fliplr(a), np.zeros((0, 3)))


def test_errors_name_the_op_and_shape():
    with pytest.raises(tg.ShapeError, match=r"fliplr.*\(3,\)"):
        tg.fliplr(tg.ones(3))
    with pytest.raises(tg.ShapeError, match=r"vsplit.*\(3,\)"):
        tg.vsplit(tg.ones(3), 3)
    with pytest.raises(tg.ShapeError, match=r"hsplit.*size 4.*3 equal"):
        tg.hsplit(tg.ones(2, 4), 3)
    with pytest.raises(TypeError, match="positive.*bool"):
        tg.positive(tg.ones(2, dtype=tg.bool))
    with pytest.raises(TypeError, match="bfloat16.*half"):
        tg.ones(2).bfloat16()


def test_compiled_equals_eager():
    compiled_matches_eager(lambda a, b: tg.deg2rad(a) * tg.greater_equal(a, b) + tg.fix(b)
                           + tg.fliplr(a) + tg.signbit(b), X, Y)
