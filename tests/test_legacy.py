"""PyTorch 0.3-era API: Variable (incl. volatile), legacy tensor types as constructors
and dtypes, torch.Tensor(...), x.type(), legacy add_(value, other)."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.autograd import Variable


def test_variable_is_a_tensor():
    v = Variable(torch.ones(2), requires_grad=True)
    assert isinstance(v, torch.Tensor) and v.requires_grad and v.is_leaf
    (v * 3).sum().backward()
    assert v.grad.tolist() == [3.0, 3.0]
    assert isinstance(v.data, torch.Tensor) and not v.data.requires_grad
    w = Variable(torch.ones(2))
    assert not w.requires_grad
    assert not (w + w).requires_grad and (w + v).requires_grad


def test_volatile_propagates_no_graph_even_with_weights_requiring_grad():
    w = torch.randn(3, 2, requires_grad=True)
    x = Variable(torch.randn(4, 3), volatile=True)
    assert x.volatile and not x.requires_grad
    y = x.mm(w).clamp(min=0)
    z = (y * 2).sum()
    assert not y.requires_grad and y.grad_fn is None
    assert not z.requires_grad and z.grad_fn is None
    assert z.volatile
    w2 = torch.randn(2, 2, requires_grad=True)
    out = y.mm(w2)  # the seed's x.mm(w1).clamp(min=0).mm(w2) pattern
    assert not out.requires_grad and out.grad_fn is None


def test_legacy_tensor_type_constructors():
    f = torch.FloatTensor([1, 2])
    assert f.dtype == torch.float32 and f.tolist() == [1.0, 2.0]
    assert torch.FloatTensor(2, 3).shape == (2, 3)
    assert torch.LongTensor([1, 2]).dtype == torch.int64
    assert torch.LongTensor(3).shape == (3,)
    b = torch.ByteTensor([1, 0])
    assert b.dtype == torch.uint8
    assert torch.DoubleTensor([1.5]).dtype == torch.float64
    assert torch.IntTensor([1]).dtype == torch.int32
    assert torch.FloatTensor(torch.Size([2, 2])).shape == (2, 2)
    assert torch.FloatTensor(np.array([1.0, 2.0])).dtype == torch.float32
    assert isinstance(f, torch.FloatTensor) and not isinstance(f, torch.LongTensor)


def test_type_conversions_and_type_string():
    x = torch.randn(2, 3)
    assert x.type() == "torch.FloatTensor"
    d = x.type(torch.DoubleTensor)
    assert d.dtype == torch.float64 and d.type() == "torch.DoubleTensor"
    assert x.type(torch.LongTensor).type() == "torch.LongTensor"
    assert x.type("torch.IntTensor").dtype == torch.int32
    assert x.type(torch.float16).dtype == torch.float16
    assert torch.tensor([True]).type() == "torch.BoolTensor"
    assert torch.ByteTensor([1]).type() == "torch.ByteTensor"
    dtype = torch.FloatTensor
    assert torch.randn(10, 20).type(dtype).shape == (10, 20)


def test_torch_Tensor_constructor():
    a = np.arange(6.0).reshape(2, 3)
    t = torch.Tensor(a)
    assert t.dtype == torch.float32 and t.tolist() == a.tolist()
    a[0, 0] = 100
    assert t[0, 0].item() == 0.0  # copies
    assert torch.Tensor(2, 3).shape == (2, 3) and torch.Tensor(2, 3).dtype == torch.float32
    assert torch.Tensor([1, 2]).dtype == torch.float32
    assert torch.Tensor().shape == (0,)
    assert isinstance(torch.Tensor(1), torch.Tensor)


def test_legacy_add_value_other_and_addcmul():
    x = torch.ones(3)
    x.add_(2, torch.tensor([1.0, 2.0, 3.0]))  # x += 2 * other
    assert x.tolist() == [3.0, 5.0, 7.0]
    x.sub_(1, torch.ones(3))
    assert x.tolist() == [2.0, 4.0, 6.0]
    y = torch.zeros(2)
    y.addcmul_(0.5, torch.tensor([2.0, 4.0]), torch.tensor([1.0, 1.0]))
    assert y.tolist() == [1.0, 2.0]
    assert torch.zeros(2).addcmul(torch.ones(2), torch.ones(2), value=3).tolist() == [3.0, 3.0]


def test_loss_data_index_zero_legacy_idiom():
    x = Variable(torch.randn(3), requires_grad=True)
    loss = (x * x).sum()
    with pytest.warns(UserWarning, match="0-dim"):
        value = loss.data[0]
    assert float(value) == pytest.approx(loss.item())


def test_legacy_update_through_data_and_grad_data():
    w = Variable(torch.randn(3, 2), requires_grad=True)
    x = Variable(torch.randn(4, 3))
    loss = x.mm(w).pow(2).sum()
    loss.backward()
    before = w.data.clone()
    w.data -= 0.1 * w.grad.data
    np.testing.assert_allclose(w.data.numpy(), (before - 0.1 * w.grad).numpy(), rtol=1e-6)
    w.grad.data.zero_()
    assert w.grad.abs().sum().item() == 0.0
