"""``masked_fill_`` into an expanded tensor: PyTorch 2.13 writes (with a deprecation
UserWarning) where other in-place ops refuse; a memory location several elements share
gets the value where any of them is masked. Expected values from NumPy."""
import numpy as np
import pytest

import tracegrad as tg

MASK = np.array([[True, False, False], [False, False, True]])


def _expected_base(base: np.ndarray, shape, mask: np.ndarray, value) -> np.ndarray:
    """Each base element gets ``value`` where any element of the expand that reads it is
    masked."""
    index = np.broadcast_to(np.arange(base.size).reshape(base.shape), shape)
    out = base.copy().reshape(-1)
    out[np.unique(index[mask])] = value
    return out.reshape(base.shape)


@pytest.mark.parametrize("base", [np.array([1.0, 2.0, 3.0]), np.array([[1.0], [2.0]])])
def test_masked_fill_into_an_expand_warns_and_writes_the_shared_element(base):
    x = tg.tensor(base)
    view = x.expand(2, 3)
    with pytest.warns(UserWarning, match="masked_fill_ on expanded tensors is deprecated"):
        out = view.masked_fill_(tg.tensor(MASK), 9.0)
    assert out is view
    want = _expected_base(base, (2, 3), MASK, 9.0)
    np.testing.assert_array_equal(x.numpy(), want)
    np.testing.assert_array_equal(view.numpy(), np.broadcast_to(want, (2, 3)))


def test_masked_fill_into_an_expand_with_a_tensor_value_and_broadcast_mask():
    x = tg.tensor([1.0, 2.0, 3.0])
    with pytest.warns(UserWarning):
        x.expand(4, 3).masked_fill_(tg.tensor([False, True, False]), tg.tensor(7.0))
    np.testing.assert_array_equal(x.numpy(), [1.0, 7.0, 3.0])


def test_masked_fill_into_an_expand_matches_torch():
    torch = pytest.importorskip("torch")
    for lib in (torch, tg):
        base = lib.tensor([[1.0, 2.0, 3.0]])
        with pytest.warns(UserWarning):
            base.expand(2, 3).masked_fill_(lib.tensor(MASK), -1.0)
        if lib is torch:
            want = base.numpy()
    np.testing.assert_array_equal(base.numpy(), want)


def test_backward_through_masked_fill_into_an_expand_raises_as_pytorch():
    w = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    view = w.clone().expand(2, 3)
    with pytest.warns(UserWarning):
        view.masked_fill_(tg.tensor(MASK), 1.0)
    with pytest.raises(RuntimeError, match="single memory location"):
        view.sum().backward()


def test_other_in_place_ops_into_an_expand_still_raise():
    with pytest.raises(RuntimeError, match="single memory location"):
        tg.tensor([1.0, 2.0, 3.0]).expand(2, 3).mul_(2)
