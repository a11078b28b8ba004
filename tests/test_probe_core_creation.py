"""``tensor(data)``'s dtype inference as PyTorch 2.13's: NumPy scalars, 0-d arrays and
tensors keep their dtype, Python floats take the default dtype, and a list's dtype is the
promotion of its elements' (expected dtypes written out; checked against torch too where
it is installed)."""
import numpy as np
import pytest

import tracegrad as tg

CASES = [
    # (data, expected dtype name)
    (lambda: np.float64(1.5), "float64"),
    (lambda: np.float32(1.5), "float32"),
    (lambda: np.float16(1.5), "float16"),
    (lambda: np.int64(3), "int64"),
    (lambda: np.int32(3), "int32"),
    (lambda: np.int8(3), "int8"),
    (lambda: np.uint8(3), "uint8"),
    (lambda: np.bool_(True), "bool"),
    (lambda: np.array(2.5), "float64"),
    (lambda: [np.float64(1.5), np.float64(2)], "float64"),
    (lambda: [np.float64(1.5), 2.0], "float64"),
    (lambda: [np.float32(1.5), 2.0], "float32"),
    (lambda: [np.float16(1.5), 2], "float16"),
    (lambda: [np.int32(1), 2], "int64"),
    (lambda: [np.int32(1), np.int8(2)], "int32"),
    (lambda: [np.int64(1), 2.5], "float32"),
    (lambda: [[np.float64(1.5)]], "float64"),
    (lambda: [np.array([1.0, 2.0]), np.array([3.0, 4.0])], "float64"),
    (lambda: [1, 2.5], "float32"),
    (lambda: [True, 2], "int64"),
    (lambda: [True, False], "bool"),
    (lambda: [], "float32"),
    (lambda: [[1, 2], [3, 4]], "int64"),
    (lambda: range(3), "int64"),
    (lambda: [tg.tensor(1.5, dtype=tg.float64), tg.tensor(2.5, dtype=tg.float64)], "float64"),
    (lambda: [tg.tensor(1, dtype=tg.int8), 2], "int64"),
]


def _numpy_values(data):
    """data with its tracegrad tensors as NumPy scalars of their dtype (for NumPy)."""
    if isinstance(data, list):
        return [d.numpy()[()] if isinstance(d, tg.Tensor) else d for d in data]
    return data


@pytest.mark.parametrize("make,want", CASES, ids=[str(i) for i in range(len(CASES))])
def test_tensor_infers_pytorchs_dtype(make, want):
    # before: NumPy scalars became float32/int64 (np.float64(1.5) -> float32, np.int8 -> int64)
    data = make()
    got = tg.tensor(data)
    assert got.dtype.name == want
    np.testing.assert_array_equal(got.numpy(), np.array(_numpy_values(data), dtype=want))


def test_tensor_dtype_inference_matches_torch():
    torch = pytest.importorskip("torch")
    for i, (make, _) in enumerate(CASES):
        data = make()
        want = torch.tensor(_numpy_values(data)).dtype   # (NumPy scalars keep their dtype)
        assert tg.tensor(data).dtype.name == str(want)[6:], i


def test_as_tensor_of_a_numpy_scalar_keeps_its_dtype():
    assert tg.as_tensor(np.float64(1.5)).dtype is tg.float64
    assert tg.as_tensor([np.float64(1.5)]).dtype is tg.float64


def test_default_dtype_still_applies_to_python_floats_only():
    tg.set_default_dtype(tg.float64)
    try:
        assert tg.tensor([1.5, 2]).dtype is tg.float64
        assert tg.tensor(np.float32(1.5)).dtype is tg.float32
        assert tg.tensor([np.int64(1), 2.5]).dtype is tg.float64
    finally:
        tg.set_default_dtype(tg.float32)


def test_uninferable_data_raises_as_pytorch():
    with pytest.raises(RuntimeError, match="NoneType"):
        tg.tensor([1, None])
    with pytest.raises(RuntimeError, match="NoneType"):
        tg.tensor(None)
    with pytest.raises(TypeError, match="str"):
        tg.tensor("abc")
