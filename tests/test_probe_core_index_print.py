"""Indexing with a list of index sequences, ``nonzero`` of a 0-d tensor, and how tensors
print and format, as PyTorch 2.13 (expected strings written out; torch compared where
installed)."""
import numpy as np
import pytest

import tracegrad as tg


def test_a_list_of_index_sequences_is_a_tuple_of_indices():
    # before: x[[rows, cols]] indexed dim 0 twice (shape (2, 2, 4)) instead of x[rows, cols]
    x = tg.arange(12).reshape(3, 4)
    assert x[[tg.tensor([0, 1]), tg.tensor([1, 2])]].tolist() == [1, 6]
    assert x[[[0, 1], [1, 2]]].tolist() == [1, 6]
    assert x[[slice(None), 1]].tolist() == [1, 5, 9]
    assert x[[None, 0]].shape == (1, 4)
    assert x[[[0, 2]]].tolist() == [[0, 1, 2, 3], [8, 9, 10, 11]]
    assert x[[0, 2]].tolist() == [[0, 1, 2, 3], [8, 9, 10, 11]]    # ints: one index
    y = tg.zeros(3, 4)
    y[[tg.tensor([0, 1]), tg.tensor([1, 2])]] = 1.0
    want = np.zeros((3, 4))
    want[[0, 1], [1, 2]] = 1
    np.testing.assert_array_equal(y.numpy(), want)


def test_nonzero_of_a_0d_tensor():
    # before: NumPy's "Calling nonzero on 0d arrays is not allowed" ValueError
    assert tg.tensor(5).nonzero().shape == (1, 0)
    assert tg.tensor(0).nonzero().shape == (0, 0)
    assert tg.tensor(5).nonzero().dtype is tg.int64
    assert [t.tolist() for t in tg.tensor(5).nonzero(as_tuple=True)] == [[0]]
    assert [t.tolist() for t in tg.tensor(0).nonzero(as_tuple=True)] == [[]]


REPRS = [
    (lambda: tg.tensor([], dtype=tg.int64), "tensor([], dtype=tracegrad.int64)"),
    (lambda: tg.tensor([], dtype=tg.bool), "tensor([], dtype=tracegrad.bool)"),
    (lambda: tg.tensor([]), "tensor([])"),
    (lambda: tg.tensor([1.0, float("nan"), float("inf"), -float("inf")]),
     "tensor([1., nan, inf, -inf])"),
    (lambda: tg.tensor([-0.0, 1.0]), "tensor([-0., 1.])"),
    (lambda: tg.tensor([0.0, 10.0]), "tensor([ 0., 10.])"),
    (lambda: tg.tensor([1e8, 1.0]), "tensor([1.0000e+08, 1.0000e+00])"),
    (lambda: tg.tensor([1e8]), "tensor([100000000.])"),
    (lambda: tg.tensor([1000.0, 1.0]), "tensor([1000.,    1.])"),
    (lambda: tg.tensor([1001.0, 1.0]), "tensor([1.0010e+03, 1.0000e+00])"),
    (lambda: tg.arange(2000), "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"),
    (lambda: tg.arange(2000.0), "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, "
                                "1.9980e+03,\n        1.9990e+03])"),
]


@pytest.mark.parametrize("make,want", REPRS, ids=[r[1][:30] for r in REPRS])
def test_repr_matches_pytorchs_layout(make, want):
    # before: empty int/bool tensors printed without their dtype, nan/inf were padded to
    # the widest element, integer-valued floats 1000x apart did not switch to scientific
    assert repr(make()) == want


def test_repr_names_dtypes_against_the_default_dtype():
    tg.set_default_dtype(tg.float64)
    try:
        assert repr(tg.tensor([1.0, 2.0])) == "tensor([1., 2.])"
        assert repr(tg.tensor([1.0, 2.0], dtype=tg.float32)) == \
            "tensor([1., 2.], dtype=tracegrad.float32)"
        assert repr(tg.tensor([], dtype=tg.float32)) == "tensor([], dtype=tracegrad.float32)"
    finally:
        tg.set_default_dtype(tg.float32)


def test_reprs_match_torch():
    torch = pytest.importorskip("torch")
    for make, _ in REPRS:
        got = make()
        want = torch.from_numpy(got.numpy().copy())
        assert repr(got).replace("tracegrad.", "torch.") == repr(want)


def test_format_of_a_0d_tensor_is_its_number():
    # before: f"{loss}" printed "tensor(2.5000)"; PyTorch prints the number
    assert f"{tg.tensor(2.5)}" == "2.5"
    assert f"{tg.tensor(3)}" == "3"
    assert f"{tg.tensor(2.5, requires_grad=True) * 2}" == "5.0"
    assert f"{tg.tensor(2.5):.3f}" == "2.500"
    assert f"{tg.tensor([1, 2])}" == "tensor([1, 2])"
    with pytest.raises(TypeError, match="format"):
        f"{tg.tensor([2.5]):.2f}"


def test_item_of_many_elements_raises_runtime_error():
    with pytest.raises(RuntimeError, match="2 elements"):
        tg.tensor([1.0, 2.0]).item()
    with pytest.raises(RuntimeError, match="0 elements"):
        tg.tensor([]).item()


def test_size_arithmetic_stays_a_size():
    s = tg.zeros(2, 3).shape
    for out, want in [(s + (4,), (2, 3, 4)), ((4,) + s, (4, 2, 3)), (s * 2, (2, 3, 2, 3)),
                      (s[1:], (3,))]:
        assert type(out) is tg.Size and out == want
    assert repr(s + (4,)) == "tracegrad.Size([2, 3, 4])"


def test_gather_and_scatter_shape_errors_name_the_shapes():
    # before: NumPy's "shape mismatch: indexing arrays could not be broadcast together" (an
    # IndexError) or "index 5 is out of bounds for axis 1" for an index wider than self
    x = tg.arange(24).reshape(2, 3, 4)
    with pytest.raises(RuntimeError, match=r"dimension 0 expected index \[3, 3, 1\] to be no "
                                           r"larger than self \[2, 3, 4\] apart from dimension 1"):
        tg.gather(x, 1, tg.zeros(3, 3, 1, dtype=tg.int64))
    assert tg.gather(x, 1, tg.zeros(2, 5, 1, dtype=tg.int64)).shape == (2, 5, 1)
    with pytest.raises(RuntimeError, match="no larger than self"):
        tg.zeros(3, 5).scatter_add(0, tg.tensor([[0, 1, 2, 0, 0, 0]]), tg.ones(2, 6))
    with pytest.raises(RuntimeError, match="no larger than src"):
        tg.zeros(3, 5).scatter_add(0, tg.tensor([[0, 1, 2, 0, 0]]), tg.ones(2, 4))
    with pytest.raises(RuntimeError, match="no larger than self"):
        tg.zeros(3, 5).scatter(0, tg.tensor([[0, 1, 2, 0, 0, 0]]), tg.ones(2, 6))
    with pytest.raises(RuntimeError, match="same rank"):
        tg.zeros(3, 5).scatter(0, tg.tensor([0, 1]), tg.ones(2, 5))


def test_scatter_refuses_a_src_of_another_dtype():
    # before: the float64 src was cast into the float32 tensor silently
    with pytest.raises(RuntimeError, match="self.dtype to be equal to src.dtype"):
        tg.zeros(3, 5).scatter(0, tg.tensor([[0]]), tg.ones(2, 5, dtype=tg.float64))
    out = tg.zeros(3, 5).scatter(0, tg.tensor([[2, 0]]), tg.tensor([[1.0, 2.0]]))
    want = np.zeros((3, 5), np.float32)
    want[2, 0], want[0, 1] = 1.0, 2.0
    np.testing.assert_array_equal(out.numpy(), want)


def test_equality_with_a_non_number_falls_back_to_identity():
    # before: t == "a" raised TypeError and t == [1, 2] compared elementwise; PyTorch's
    # __eq__ gives NotImplemented for them, so Python answers False (True for !=)
    t = tg.tensor([1, 2])
    assert (t == "a") is False and (t != "a") is True
    assert (t == [1, 2]) is False and (t == (1, 2)) is False and (t == None) is False  # noqa: E711
    assert (t == np.array([1, 3])).tolist() == [True, False]
    assert (t == np.int64(1)).tolist() == [True, False]
    assert t in [t] and 2 in t
