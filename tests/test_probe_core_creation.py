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


def test_arange_refuses_bounds_against_the_step():
    # before: arange(5, 0) and arange(0, 5, -1) returned an empty tensor (NumPy's answer)
    for args in [(5, 0), (0, 5, -1), (0.0, -1.0, 0.5)]:
        with pytest.raises(RuntimeError, match="inconsistent with step sign"):
            tg.arange(*args)
    with pytest.raises(RuntimeError, match="nonzero"):
        tg.arange(0, 5, 0)
    assert tg.arange(3, 3).shape == (0,)                   # an empty range is fine
    assert tg.arange(10, 0, -3).tolist() == [10, 7, 4, 1]


def test_sizes_must_be_non_negative_ints():
    with pytest.raises(RuntimeError, match="negative dimension"):
        tg.zeros(-1)
    with pytest.raises(RuntimeError, match="negative dimension"):
        tg.ones(2, -3)
    with pytest.raises(TypeError, match="float"):
        tg.zeros(2.0)
    assert tg.zeros(np.int64(2), tg.tensor(3)).shape == (2, 3)


def test_creation_argument_errors_are_runtime_errors():
    with pytest.raises(RuntimeError, match="non-negative"):
        tg.linspace(0, 1, -1)
    with pytest.raises(RuntimeError, match="std >= 0"):
        tg.normal(0.0, -1.0, (2,))
    with pytest.raises(RuntimeError, match="from=5 >= to=5"):
        tg.randint(5, 5, (3,))


def test_scalar_tensor_and_triangle_indices():
    assert tg.scalar_tensor(3).dtype is tg.float32 and tg.scalar_tensor(3).item() == 3.0
    assert tg.scalar_tensor(3, dtype=tg.int64).dtype is tg.int64
    rows, cols = np.tril_indices(3, 1, 4)
    assert tg.tril_indices(3, 4, 1).tolist() == [rows.tolist(), cols.tolist()]
    rows, cols = np.triu_indices(4, -1, 3)
    assert tg.triu_indices(4, 3, -1).tolist() == [rows.tolist(), cols.tolist()]
    assert tg.tril_indices(2, 2).dtype is tg.int64


def test_creation_errors_match_torch():
    torch = pytest.importorskip("torch")
    for call in [lambda m: m.arange(5, 0), lambda m: m.arange(0, 5, 0), lambda m: m.zeros(-1),
                 lambda m: m.linspace(0, 1, -1), lambda m: m.normal(0.0, -1.0, (2,)),
                 lambda m: m.randint(5, 5, (3,))]:
        with pytest.raises(RuntimeError):
            call(torch)
        with pytest.raises(RuntimeError):
            call(tg)
    with pytest.raises(TypeError):
        torch.zeros(2.0)
    assert tg.tril_indices(4, 3, -1).tolist() == torch.tril_indices(4, 3, -1).tolist()
