"""PyTorch's public dtype questions (promote_types, result_type, can_cast, finfo, iinfo),
NumPy scalars on the left of an operator, and add/sub's alpha, as user scripts written
for ``import torch`` call them. Expected values are PyTorch 2.13's, written out; where
torch is installed the whole tables are checked against it too."""
import itertools

import numpy as np
import pytest

import tracegrad as tg

NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]


def _torch():
    return pytest.importorskip("torch")


def test_promote_types_takes_and_returns_dtypes():
    # before: tracegrad.promote_types was the NumPy-level helper (AttributeError on .kind)
    assert tg.promote_types(tg.int8, tg.uint8) is tg.int16
    assert tg.promote_types(tg.int64, tg.float16) is tg.float16
    assert tg.promote_types(tg.bool, tg.uint8) is tg.uint8
    assert tg.promote_types(tg.float32, tg.float64) is tg.float64
    with pytest.raises(TypeError, match="type2"):
        tg.promote_types(tg.float32, 3)


def test_result_type_ranks_dimensioned_tensors_over_0d_over_scalars():
    # before: tracegrad.result_type was an internal helper taking four arguments
    ints = tg.tensor([1, 2], dtype=tg.int32)
    assert tg.result_type(ints, 2.5) is tg.float32
    assert tg.result_type(ints, 2) is tg.int32
    assert tg.result_type(ints, tg.tensor(3)) is tg.int32
    assert tg.result_type(ints, tg.tensor(3.0, dtype=tg.float64)) is tg.float64
    assert tg.result_type(tg.tensor(1, dtype=tg.int8), 1.5) is tg.float32
    assert tg.result_type(tg.tensor([1], dtype=tg.uint8), tg.tensor(1, dtype=tg.int8)) is tg.uint8
    assert tg.result_type(tg.tensor([True]), tg.tensor(1.5)) is tg.float32
    assert tg.result_type(tg.tensor(True), 1) is tg.int64
    assert tg.result_type(2, tg.tensor([True])) is tg.int64
    assert tg.result_type(2, 3.0) is tg.float32
    assert tg.result_type(tg.tensor([1.0], dtype=tg.float16), tg.tensor(1.0, dtype=tg.float64)) \
        is tg.float16


def test_can_cast_refuses_float_to_int_and_anything_to_bool():
    assert not tg.can_cast(tg.float32, tg.int32)
    assert not tg.can_cast(tg.int64, tg.bool)
    assert tg.can_cast(tg.float64, tg.float16)
    assert tg.can_cast(tg.int64, tg.uint8)
    assert tg.can_cast(tg.bool, tg.float32)


def test_dtype_tables_match_torch():
    torch = _torch()
    for a, b in itertools.product(NAMES, NAMES):
        ta, tb = getattr(torch, a), getattr(torch, b)
        ga, gb = getattr(tg, a), getattr(tg, b)
        assert tg.promote_types(ga, gb).name == str(torch.promote_types(ta, tb))[6:], (a, b)
        assert tg.can_cast(ga, gb) == torch.can_cast(ta, tb), (a, b)
        for shape_b in [(2,), ()]:
            got = tg.result_type(tg.ones(2, dtype=ga), tg.ones(shape_b, dtype=gb))
            want = torch.result_type(torch.ones(2, dtype=ta), torch.ones(shape_b, dtype=tb))
            assert got.name == str(want)[6:], (a, b, shape_b)
        for scalar in [True, 2, 2.5]:
            got = tg.result_type(tg.ones(2, dtype=ga), scalar)
            assert got.name == str(torch.result_type(torch.ones(2, dtype=ta), scalar))[6:]


def test_finfo_and_iinfo():
    f16 = tg.finfo(tg.float16)
    assert (f16.max, f16.min, f16.eps, f16.bits) == (65504.0, -65504.0, 0.0009765625, 16)
    assert f16.resolution == 0.001 and f16.dtype == "float16"
    f32 = tg.finfo()
    assert f32.eps == 1.1920928955078125e-07 and f32.resolution == 1e-06
    assert f32.tiny == f32.smallest_normal == 1.1754943508222875e-38
    assert isinstance(f32.eps, float) and f32 == tg.finfo(tg.float32)
    assert tg.iinfo(tg.int8).min == -128 and tg.iinfo(tg.uint8).max == 255
    assert tg.iinfo(tg.int32).bits == 32 and tg.iinfo(tg.int64).max == 2**63 - 1
    with pytest.raises(TypeError):
        tg.finfo(tg.int32)
    with pytest.raises(TypeError):
        tg.iinfo(tg.float32)
    with pytest.raises(TypeError):
        tg.iinfo(tg.bool)


def test_finfo_matches_torch():
    torch = _torch()
    for name in ["float16", "float32", "float64"]:
        want, got = torch.finfo(getattr(torch, name)), tg.finfo(getattr(tg, name))
        for attr in ["bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution",
                     "dtype"]:
            assert getattr(got, attr) == getattr(want, attr), (name, attr)
        assert repr(got) == repr(want)


@pytest.mark.parametrize("scalar", [np.float64(1.5), np.float32(1.5), np.int64(2)])
def test_numpy_scalar_on_the_left_gives_a_tensor(scalar):
    # before: np.float64(1.5) * t converted t through __array__ and returned a float64
    # ndarray; PyTorch returns a float32 tensor
    x = tg.tensor([1.0, 2.0])
    for out, want in [(scalar * x, [1.0, 2.0]), (scalar + x, [1.0, 2.0]),
                      (scalar - x, [-1.0, -2.0])]:
        assert isinstance(out, tg.Tensor) and out.dtype is tg.float32
    np.testing.assert_allclose((scalar * x).numpy(), float(scalar) * np.array([1.0, 2.0]))
    np.testing.assert_allclose((scalar / x).numpy(), float(scalar) / np.array([1.0, 2.0]))
    assert (scalar > x).dtype is tg.bool


def test_add_and_sub_alpha_with_a_scalar_operand():
    # before: sub(t, 1, alpha=2) raised "mul: expected at least one tensor operand"
    assert tg.sub(tg.tensor([1, 2]), 1, alpha=2).tolist() == [-1, 0]
    assert tg.add(tg.tensor([1, 2]), 3, alpha=2).tolist() == [7, 8]
    assert tg.add(tg.tensor([1.0, 2.0]), tg.tensor([1, 2]), alpha=2.5).tolist() == [3.5, 7.0]
    # PyTorch refuses a float alpha for integer operands (it gave a float32 [3.5, 7.0])
    with pytest.raises(RuntimeError, match="alpha"):
        tg.add(tg.tensor([1, 2]), tg.tensor([1, 2]), alpha=2.5)
    x = tg.tensor([1, 2])
    with pytest.raises(RuntimeError, match="alpha"):
        x.add_(1, alpha=0.5)
    with pytest.raises(RuntimeError, match="bool"):
        tg.tensor([4, 5]).sub_(True)


def test_alpha_matches_torch():
    torch = _torch()
    for fn in [lambda m: m.sub(m.tensor([1, 2]), 1, alpha=2),
               lambda m: m.add(m.tensor([1.0, 2.0]), 2, alpha=-1.5),
               lambda m: m.tensor([1.0, 2.0]).sub_(m.tensor([3.0, 1.0]), alpha=2)]:
        want, got = fn(torch), fn(tg)
        assert got.tolist() == want.tolist() and str(got.dtype)[10:] == str(want.dtype)[6:]


def test_a_python_int_wraps_into_a_narrow_integer_tensors_dtype():
    # before: NumPy's OverflowError ("Python integer -1 out of bounds for uint8"), and
    # uint8 > -1 compared against -1 instead of PyTorch's 255
    u8 = tg.tensor([1, 2], dtype=tg.uint8)
    assert (u8 * -1).tolist() == [255, 254] and (u8 * -1).dtype is tg.uint8
    assert (u8 + 256).tolist() == [1, 2]
    assert (300 - u8).tolist() == [43, 42]
    assert (u8 > -1).tolist() == [False, False]
    assert (u8 // -1).tolist() == [0, 0]
    assert (tg.tensor([1, 2], dtype=tg.int8) + 1000).tolist() == [-23, -22]
    assert (tg.tensor([1], dtype=tg.int64) + 2**40).tolist() == [2**40 + 1]


def test_bit_shifts():
    # before: ``<<`` and ``>>`` raised TypeError (no __lshift__/__rshift__)
    assert (tg.tensor([1, -3]) << 2).tolist() == [4, -12]
    assert (tg.tensor([5, -5]) >> 1).tolist() == [2, -3]
    assert (1 << tg.tensor([1, 2])).tolist() == [2, 4]
    assert (tg.tensor([8]) >> tg.tensor([1, 3])).tolist() == [4, 1]
    assert (tg.tensor([1, 2], dtype=tg.uint8) << 7).tolist() == [128, 0]
    with pytest.raises(NotImplementedError):
        tg.tensor([1.0]) << 1


def test_wrapping_and_shifts_match_torch():
    torch = _torch()
    for fn in [lambda m: m.tensor([1, 2], dtype=m.uint8) * -1,
               lambda m: m.tensor([1, 2], dtype=m.int8) + 1000,
               lambda m: m.tensor([1, 2], dtype=m.uint8) > -1,
               lambda m: m.tensor([5, -5, 7]) >> m.tensor([1, 2, 0]),
               lambda m: m.tensor([64], dtype=m.int8) << 1]:
        got, want = fn(tg), fn(torch)
        assert got.tolist() == want.tolist() and got.dtype.name == str(want.dtype)[6:]
