"""Writes into expanded tensors, as PyTorch 2.13 allows and refuses them (NOTE
(overlapping writes) in _ops/writes.py), and copy_'s gradient; each case found or checked
by tests/test_fuzz6_view_chains.py."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch


def _expanded():
    return torch.arange(4.0)[None].expand(3, 4)


@pytest.mark.parametrize("write", [lambda z: z.mul_(2), lambda z: z.copy_(torch.ones(3, 4)),
                                   lambda z: z.clamp_(0, 1), lambda z: z.neg_(),
                                   lambda z: z.__setitem__((slice(None), 0), 7.0)])
def test_a_write_into_an_expanded_dim_raises(write):
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        write(_expanded())


@pytest.mark.parametrize("write,row", [(lambda z: z.fill_(1.0), [1.0] * 4),
                                       (lambda z: z.zero_(), [0.0] * 4),
                                       (lambda z: z.__setitem__(0, 7.0), [7.0] * 4),
                                       (lambda z: z[1].add_(1), [1.0, 2.0, 3.0, 4.0])])
def test_fill_zero_and_a_write_into_one_row_pass(write, row):
    z = _expanded()
    write(z)
    np.testing.assert_array_equal(z._base.numpy(), row)


def test_a_row_of_an_expand_written_with_autograd_keeps_the_new_values():
    x = torch.zeros(4, 3, requires_grad=True)
    h = x * 1
    h.unsqueeze(0).expand(2, 4, 3)[0] = 5.0   # (whole-view write-back put the old back)
    np.testing.assert_array_equal(h.detach().numpy(), np.full((4, 3), 5.0))
    (h * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((4, 3)))


def test_backward_through_a_fill_of_an_expanded_view_raises_as_pytorch():
    x = torch.zeros(2, requires_grad=True)
    h = x * 1
    h.unsqueeze(0).expand(3, 2).fill_(-7.0)   # the write itself passes
    np.testing.assert_array_equal(h.detach().numpy(), [-7.0, -7.0])
    with pytest.raises(RuntimeError, match="backward through an in-place write into an "
                                           "expanded view"):
        (h * 2).sum().backward()


def test_copy_over_a_tensor_in_the_graph_gives_it_a_zero_gradient():
    x = torch.arange(4.0).requires_grad_()
    w = torch.ones(4, requires_grad=True)
    h = x * 1
    h.copy_(w)
    (h * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(4))   # PyTorch: zeros, not None
    np.testing.assert_array_equal(w.grad.numpy(), np.full(4, 2.0))


def test_a_row_of_overlapping_windows_written_with_autograd_counts_each_element_once():
    """``u[:, 1] = 0`` into windows that share elements 2 and 4: the whole-view write-back
    gave x.grad 4 and 8 there (each copy's gradient counted); PyTorch 2.13: 2 and 4."""
    x = torch.arange(8.0).requires_grad_()
    h = x * 1
    u = h.unfold(0, 3, 2)
    u[:, 1] = 0.0
    (h * torch.arange(8.0)).sum().backward()
    np.testing.assert_array_equal(h.detach().numpy(), [0, 0, 2, 0, 4, 0, 6, 7])
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 2, 0, 4, 0, 6, 7])


def _windows_written(lib, write):
    x = lib.arange(8.0).requires_grad_()
    h = x * 1
    write(lib, h.unfold(0, 3, 2))   # windows [0..2], [2..4], [4..6]: 2 and 4 shared
    (h * lib.arange(8.0)).sum().backward()
    return h.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("write", [
    lambda lib, u: u.masked_fill_(lib.tensor([[False, True, False]] * 3), 0.0),
    lambda lib, u: u.__setitem__(lib.tensor([0, 2]), 0.0),
    lambda lib, u: u.index_put_((lib.tensor([0, 2]),), lib.tensor(0.0))],
    ids=["masked_fill_", "setitem with an index tensor", "index_put_"])
def test_a_selection_of_overlapping_windows_written_with_autograd_as_pytorch(write):
    """Before: the whole-view write-back put row 1's old copy of element 2 back over row
    0's new value, and the gradient of a shared element was counted once per window."""
    real = pytest.importorskip("torch")
    for got, want in zip(_windows_written(torch, write), _windows_written(real, write)):
        np.testing.assert_array_equal(got, want)


def test_a_write_into_a_row_of_an_expand_keeps_the_sign_of_zero():
    """Only changed elements are written back into an overlapping view; -0.0 == 0.0, so
    the comparison also looks at the sign."""
    x = torch.zeros(1, 3)
    x.expand(2, 3)[0].neg_()   # (neg_ writes back through commit_inplace)
    assert np.signbit(x.numpy()).all()
