"""Tensor creation, attributes, conversion, memory sharing with NumPy, repr, and
reproducible random streams."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import tracegrad as torch


def test_tensor_infers_pytorch_dtypes():
    assert torch.tensor([1.0, 2.0]).dtype == torch.float32
    assert torch.tensor([1, 2]).dtype == torch.int64
    assert torch.tensor([True]).dtype == torch.bool
    assert torch.tensor(3.0).shape == () and torch.tensor(3.0).ndim == 0
    assert torch.tensor(np.array([1.0])).dtype == torch.float64  # NumPy keeps its dtype
    assert torch.tensor(np.array([1], np.int32)).dtype == torch.int32
    assert torch.tensor([[1, 2], [3, 4]], dtype=torch.float16).dtype == torch.float16
    assert torch.tensor([torch.tensor(1.0), torch.tensor(2.0)]).tolist() == [1.0, 2.0]
    assert torch.tensor([]).shape == (0,)


def test_tensor_copies_but_from_numpy_and_as_tensor_share():
    a = np.zeros(3, np.float32)
    t = torch.tensor(a)
    a[0] = 1
    assert t[0].item() == 0.0
    f = torch.from_numpy(a)
    a[1] = 2
    assert f.tolist() == [1.0, 2.0, 0.0]
    f[2] = 3
    assert a[2] == 3
    assert torch.as_tensor(a).data_ptr() == a.__array_interface__["data"][0]
    n = f.numpy()
    assert n is a or np.shares_memory(n, a)
    assert np.shares_memory(np.asarray(f), a)
    f.add_(1)  # in-place ops write through to the NumPy array
    assert a.tolist() == [2.0, 3.0, 4.0]


def test_in_place_through_data_shares_storage():
    w = torch.ones(3, requires_grad=True)
    w.data -= 0.5
    assert w.tolist() == [0.5, 0.5, 0.5] and w.requires_grad
    w.data.mul_(2)
    assert w.tolist() == [1.0, 1.0, 1.0]
    arr = w.detach().numpy()
    w.data.zero_()
    assert arr.tolist() == [0.0, 0.0, 0.0]


def test_data_setter_takes_storage_and_device():
    p = torch.zeros(2, requires_grad=True)
    new = torch.ones(3)
    new._device = torch.device("cuda:0")  # a device tag only: no GPU needed to check it
    p.data = new
    assert p.tolist() == [1.0, 1.0, 1.0] and p.device == new.device and p.requires_grad


def test_creation_functions():
    assert torch.zeros(2, 3).tolist() == [[0.0] * 3] * 2
    assert torch.ones((2,)).dtype == torch.float32
    assert torch.zeros(torch.Size([2, 2])).shape == (2, 2)
    assert torch.full((2,), 7).dtype == torch.int64
    assert torch.full((2,), 7.0).tolist() == [7.0, 7.0]
    assert torch.full((1,), True).dtype == torch.bool
    assert torch.empty(3, 4).shape == (3, 4)
    assert torch.arange(5).tolist() == [0, 1, 2, 3, 4] and torch.arange(5).dtype == torch.int64
    assert torch.arange(1, 2, 0.25).tolist() == [1.0, 1.25, 1.5, 1.75]
    assert torch.arange(0, 1, 0.5).dtype == torch.float32
    np.testing.assert_allclose(torch.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5))
    assert torch.eye(2).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert torch.eye(2, 3).shape == (2, 3)
    x = torch.ones(2, 3, dtype=torch.float64)
    for like in (torch.zeros_like, torch.ones_like, torch.empty_like, torch.rand_like, torch.randn_like):
        out = like(x)
        assert out.shape == (2, 3) and out.dtype == torch.float64
    assert torch.full_like(x, 4).tolist() == [[4.0] * 3] * 2
    assert torch.zeros(2, requires_grad=True).requires_grad


def test_random_creation_and_manual_seed_reproducibility():
    def draw():
        return [torch.rand(3).tolist(), torch.randn(2, 2).tolist(), torch.randint(0, 10, (5,)).tolist(),
                torch.randperm(6).tolist(), torch.normal(0.0, 1.0, size=(3,)).tolist(),
                torch.empty(4).uniform_(-1, 1).tolist(), torch.empty(2).normal_().tolist()]
    torch.manual_seed(123)
    first = draw()
    torch.manual_seed(123)
    assert draw() == first
    torch.manual_seed(124)
    assert draw() != first
    r = torch.rand(1000)
    assert 0 <= r.min().item() and r.max().item() < 1
    assert sorted(torch.randperm(6).tolist()) == list(range(6))
    assert torch.randint(3, (4,)).dtype == torch.int64
    g = torch.Generator().manual_seed(5)
    a = torch.randn(3, generator=g)
    g.manual_seed(5)
    assert torch.randn(3, generator=g).tolist() == a.tolist()
    state = torch.get_rng_state()
    x = torch.rand(2)
    torch.set_rng_state(state)
    assert torch.rand(2).tolist() == x.tolist()


def test_attributes():
    t = torch.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and t.size() == (2, 3, 4) and t.size(1) == 3 and t.size(-1) == 4
    assert isinstance(t.size(), torch.Size) and t.size() == torch.Size([2, 3, 4])
    assert repr(t.size()) in ("torch.Size([2, 3, 4])", "tracegrad.Size([2, 3, 4])")
    assert t.dim() == 3 and t.ndim == 3 and t.numel() == 24 and t.nelement() == 24
    assert t.dtype == torch.float32 and str(t.device) == "cpu" and not t.is_cuda
    assert t.is_floating_point() and not torch.tensor([1]).is_floating_point()
    assert t.element_size() == 4 and t.stride() == (12, 4, 1)
    assert len(t) == 2
    assert t.T.shape == (4, 3, 2)


def test_conversions():
    t = torch.tensor([1.7, -2.2])
    assert torch.tensor([2.5]).item() == 2.5 and isinstance(torch.tensor(3).item(), int)
    assert t.tolist() == pytest.approx([1.7, -2.2])
    assert t.long().tolist() == [1, -2] and t.long().dtype == torch.int64
    assert t.int().dtype == torch.int32 and t.double().dtype == torch.float64
    assert t.float().dtype == torch.float32 and t.half().dtype == torch.float16
    assert t.bool().tolist() == [True, True] and t.byte().dtype == torch.uint8
    assert t.to(torch.float64).dtype == torch.float64
    assert t.to("cpu", torch.int64).dtype == torch.int64
    assert t.to(torch.zeros(1, dtype=torch.int32)).dtype == torch.int32
    assert t.to(dtype=torch.float64).dtype == torch.float64
    assert t.cpu() is t or t.cpu().tolist() == t.tolist()
    assert t.type_as(torch.tensor([1])).dtype == torch.int64
    assert float(torch.tensor(2.5)) == 2.5 and int(torch.tensor(3)) == 3
    assert bool(torch.tensor([1])) is True
    assert [0, 1, 2][torch.tensor(1)] == 1  # __index__
    c = t.clone()
    c[0] = 0
    assert t[0].item() != 0
    assert t.new_zeros(2).dtype == torch.float32 and t.new_tensor([1, 2]).dtype == torch.float32
    assert t.new_ones((2, 2)).shape == (2, 2) and t.new_full((2,), 3.0).tolist() == [3.0, 3.0]


def test_copy_pickle_deepcopy():
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    d = copy.deepcopy(t)
    assert d.tolist() == [1.0, 2.0] and d.requires_grad and d.data_ptr() != t.data_ptr()
    p = pickle.loads(pickle.dumps(t))
    assert p.tolist() == [1.0, 2.0] and p.requires_grad


def test_dtype_objects():
    assert torch.float32 is torch.float and torch.float64 is torch.double and torch.int64 is torch.long
    assert repr(torch.float32) == "tracegrad.float32"
    assert torch.float32.is_floating_point and not torch.int64.is_floating_point
    assert torch.get_default_dtype() == torch.float32


# ---- repr ----------------------------------------------------------------------------

@pytest.mark.parametrize("make,expected", [
    (lambda: torch.tensor([1.0, 2.0]), "tensor([1., 2.])"),
    (lambda: torch.tensor([1.5, -2.25]), "tensor([ 1.5000, -2.2500])"),
    (lambda: torch.tensor(3.5), "tensor(3.5000)"),
    (lambda: torch.tensor([1, 2]), "tensor([1, 2])"),
    (lambda: torch.tensor([True, False]), "tensor([ True, False])"),
    (lambda: torch.tensor([1.0, 2.0], dtype=torch.float64), "tensor([1., 2.], dtype=tracegrad.float64)"),
    (lambda: torch.tensor([1, 2], dtype=torch.int32), "tensor([1, 2], dtype=tracegrad.int32)"),
    (lambda: torch.tensor([1.0, 2.0], requires_grad=True), "tensor([1., 2.], requires_grad=True)"),
    (lambda: torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "tensor([[1., 2.],\n        [3., 4.]])"),
    (lambda: torch.tensor([]), "tensor([])"),
    (lambda: torch.zeros(2, 0), "tensor([], size=(2, 0))"),
])
def test_repr_like_pytorch(make, expected):
    assert repr(make()) == expected


def test_repr_grad_fn_and_long_tensors():
    x = torch.ones(2, requires_grad=True)
    assert repr(x * 2) == "tensor([2., 2.], grad_fn=<MulBackward0>)"
    assert repr((x * 2).sum()) == "tensor(4., grad_fn=<SumBackward0>)"
    long = repr(torch.arange(5000.0))
    assert "..." in long and long.startswith("tensor([") and len(long) < 200
    assert f"{torch.tensor(2.0):.2f}" == "2.00"
    assert str(torch.tensor([1.0])) == repr(torch.tensor([1.0]))
