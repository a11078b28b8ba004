"""``as_strided``, ``unfold`` and ``storage_offset`` (NOTE (strided views) in
_ops/strided.py): values, view-ness and writes through them, gradients and errors, against
PyTorch 2.13 where it is installed and NumPy's ``as_strided`` otherwise; compiled against
eager."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided as np_as_strided

import tracegrad as torch


def _np_strided(a: np.ndarray, size, stride, offset) -> np.ndarray:
    flat = np.ascontiguousarray(a).reshape(-1)
    return np_as_strided(flat[offset:], size, tuple(s * flat.itemsize for s in stride))


@pytest.mark.parametrize("size,stride,offset", [
    ((2, 2), (1, 2), 1), ((3, 3), (1, 1), 0), ((2, 3), (0, 3), 5), ((), (), 7), ((4,), (3,), 0),
    ((2, 0, 3), (1, 1, 1), 11)])
def test_as_strided_reads_the_storage_as_numpy_does(size, stride, offset):
    a = np.arange(12.0).reshape(3, 4)
    got = torch.tensor(a).as_strided(size, stride, offset)
    np.testing.assert_array_equal(got.numpy(), _np_strided(a, size, stride, offset))
    assert tuple(got.stride()) == stride and got.storage_offset() == offset


def test_as_strided_reads_the_storage_under_any_layout_and_offset():
    x = torch.arange(12.0).reshape(3, 4)
    # the storage, not x.t()'s layout; the default offset is where the input starts
    np.testing.assert_array_equal(x.t().as_strided((2, 2), (1, 2)).numpy(), [[0, 2], [1, 3]])
    np.testing.assert_array_equal(x[1:].as_strided((2,), (1,)).numpy(), [4, 5])
    np.testing.assert_array_equal(torch.as_strided(x[1:], (2,), (1,), 0).numpy(), [0, 1])
    assert x[1:, 2:].storage_offset() == 6 and x.t().storage_offset() == 0


def test_a_write_through_as_strided_reaches_the_base_and_its_other_views():
    x = torch.arange(12.0).reshape(3, 4)
    row = x[1]
    y = x.as_strided((2, 2), (1, 4), 5)
    assert y._base is x._base
    y.fill_(-1.0)
    want = np.arange(12.0)
    want[[5, 6, 9, 10]] = -1
    np.testing.assert_array_equal(x.numpy().reshape(-1), want)
    np.testing.assert_array_equal(row.numpy(), want[4:8])


def test_as_strided_gradients_accumulate_over_overlapping_elements():
    x = torch.tensor(np.arange(6.0), requires_grad=True)
    (x.as_strided((3, 3), (1, 1)) ** 2).sum().backward()
    # element i is read min(i, 2, 5 - i... ) times: once per window holding it
    counts = np.array([1, 2, 3, 2, 1, 0])
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.arange(6.0) * counts)


def test_as_strided_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((3, 4))
    w = rng.standard_normal((2, 3))

    def f(a):
        return float((_np_strided(a, (2, 3), (3, 2), 1) ** 3 * w).sum())

    x = torch.tensor(data, requires_grad=True)
    (x.t().as_strided((2, 3), (3, 2), 1) ** 3 * torch.tensor(w)).sum().backward()
    eps, numeric = 1e-6, np.zeros_like(data)
    for i in np.ndindex(data.shape):
        d = np.zeros_like(data)
        d[i] = eps
        numeric[i] = (f(data + d) - f(data - d)) / (2 * eps)
    np.testing.assert_allclose(x.grad.numpy(), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("args,match", [
    (((2, 2), (1,)), "mismatch in length of strides and shape"),
    (((2,), (-1,), 3), "non-negative"),
    (((4, 4), (4, 1), 1), r"out of bounds for the storage of 12 elements"),
    (((2,), (1,), -1), "storage offset must be non-negative"),
])
def test_as_strided_refuses_what_pytorch_refuses(args, match):
    with pytest.raises(RuntimeError, match=match):
        torch.arange(12.0).reshape(3, 4).as_strided(*args)


def test_as_strided_between_the_elements_of_a_non_contiguous_tensor_is_refused():
    base = torch.from_numpy(np.arange(12.0)[::2])   # a root whose storage has gaps
    # storage positions 0, 2, 4 hold its elements 0, 1, 2 (as PyTorch reads them)
    np.testing.assert_array_equal(base.as_strided((3,), (2,)).numpy(), [0, 2, 4])
    # PyTorch reads the memory between them (NumPy's, not the tensor's): refused here
    with pytest.raises(RuntimeError, match="as_strided: .* non-contiguous"):
        base.as_strided((3,), (1,))


@pytest.mark.parametrize("dim,size,step", [(0, 2, 1), (1, 3, 1), (1, 2, 2), (-1, 1, 3),
                                           (0, 3, 5), (1, 4, 1)])
def test_unfold_is_a_view_of_the_windows(dim, size, step):
    a = np.arange(12.0).reshape(3, 4)
    x = torch.tensor(a)
    u = x.unfold(dim, size, step)
    d = dim % 2
    count = (a.shape[d] - size) // step + 1
    want = np.stack([np.take(a, range(i * step, i * step + size), axis=d)
                     for i in range(count)], axis=d)   # (..., count, ..., size) after moveaxis
    np.testing.assert_array_equal(u.numpy(), np.moveaxis(want, d + 1, -1))
    assert u._base is x


def test_unfold_of_a_zero_dim_tensor_and_errors():
    np.testing.assert_array_equal(torch.tensor(3.0).unfold(0, 1, 1).numpy(), [3.0])
    with pytest.raises(RuntimeError, match="unfold: maximum size for tensor at dimension 1 is 4"):
        torch.zeros(3, 4).unfold(1, 5, 1)
    with pytest.raises(RuntimeError, match="unfold: step is 0"):
        torch.zeros(3, 4).unfold(1, 2, 0)


def test_unfold_gradient_accumulates_over_overlapping_windows():
    x = torch.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    x.unfold(1, 3, 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.tile([1.0, 2.0, 2.0, 1.0], (3, 1)))


def test_a_write_into_non_overlapping_windows_reaches_the_base():
    x = torch.arange(8.0)
    x.unfold(0, 2, 3).mul_(-1)   # windows [0, 1], [3, 4], [6, 7]: each element once
    np.testing.assert_array_equal(x.numpy(), [0, -1, 2, -3, -4, 5, -6, -7])


def _windows_and_writes(lib, x):
    h = x * 2
    h.unfold(1, 2, 2).mul_(3)
    h[:, ::2].diagonal().add_(1)
    a = h.as_strided((2, 2), (1, 3), 1)
    return (h * h).sum() + a.sum() + h.unfold(0, 2, 1).pow(2).sum()


@pytest.mark.parametrize("compiled", [False, True])
def test_compiled_strided_views_match_eager_and_pytorch(compiled):
    data = np.arange(12.0).reshape(3, 4) / 5
    fn = torch.compile(_windows_and_writes, fullgraph=True) if compiled else _windows_and_writes
    for _ in range(2 if compiled else 1):   # trace, then replay
        x = torch.tensor(data, requires_grad=True)
        out = fn(torch, x)
        out.backward()
    real = pytest.importorskip("torch")
    rx = real.tensor(data, requires_grad=True)
    want = _windows_and_writes(real, rx)
    want.backward()
    np.testing.assert_allclose(out.item(), want.item(), rtol=1e-9)
    np.testing.assert_allclose(x.grad.numpy(), rx.grad.numpy(), rtol=1e-9)


def test_the_view_ops_are_views_as_in_pytorch():
    real = pytest.importorskip("torch")
    ops = {
        "diagonal of stepped columns": lambda x: x[:, :, ::2].diagonal(),
        "diagonal(-1, 2, 0)": lambda x: x.diagonal(-1, 2, 0),
        "unfold": lambda x: x.unfold(2, 2, 1), "narrow": lambda x: x.narrow(1, 1, 2),
        "select": lambda x: x.select(1, 1), "expand": lambda x: x[:1].expand(3, 3, 4),
        "movedim": lambda x: x.movedim(0, 2), "unflatten": lambda x: x.unflatten(2, (2, 2)),
        "unflatten of a transpose": lambda x: x.transpose(1, 2).unflatten(2, (3, 1)),
        "as_strided": lambda x: x.as_strided((2, 2), (1, 1), 1),
        "unbind": lambda x: x.unbind(1)[1], "chunk": lambda x: x.chunk(2, 2)[1],
    }
    for name, op in ops.items():
        x, rx = torch.arange(24.0).reshape(2, 3, 4), real.arange(24.0).reshape(2, 3, 4)
        y, ry = op(x), op(rx)
        assert y._base is x._base and ry._base is rx._base, name
        assert (y.storage_offset(), tuple(y.stride())) == (ry.storage_offset(), ry.stride()), name
        y.fill_(-1.0)
        ry.fill_(-1.0)
        np.testing.assert_array_equal(x.numpy(), rx.numpy(), err_msg=name)


def _strided_argument(x):
    return x.as_strided((2, 2), (1, 2), 1) * 1


@pytest.mark.parametrize("make", [lambda: torch.arange(6.0).reshape(2, 3),
                                  lambda: torch.arange(6.0).reshape(3, 2).t(),
                                  lambda: torch.arange(8.0)[2:]],
                         ids=["contiguous", "transposed", "a slice"])
def test_as_strided_of_an_argument_runs_eagerly_under_compile(make):
    """The storage under an argument depends on its layout at each call (the trace sees a
    contiguous tensor): refused in the trace, so every layout gets eager's answer."""
    compiled = torch.compile(_strided_argument)
    with pytest.warns(RuntimeWarning, match="as_strided: the storage under a compiled"):
        got = compiled(make())
    np.testing.assert_array_equal(got.numpy(), _strided_argument(make()).numpy())


def _write_through_a_reshape(x):
    x.reshape(-1)[0] = 5.0   # a copy for a transposed x (the write is lost), else a view
    return x * 1


@pytest.mark.parametrize("first", ["contiguous", "transposed"])
def test_a_write_through_a_reshape_of_an_argument_gives_eagers_answer_under_compile(first):
    """Before, a transposed argument's reshape was a view in the trace (a copy eagerly),
    so the compiled write landed in x (NOTE (argument layouts) in _ops/strided.py). Now
    the contiguous layout compiles (the reshape is a view there too) and the transposed
    one runs eagerly: both give eager's values, in either order."""
    makers = {"contiguous": lambda: torch.arange(6.0).reshape(2, 3),
              "transposed": lambda: torch.arange(6.0).reshape(3, 2).t()}
    compiled = torch.compile(_write_through_a_reshape)
    for name in (first, "transposed" if first == "contiguous" else "contiguous"):
        want_x, x = makers[name](), makers[name]()
        want = _write_through_a_reshape(want_x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # (transposed: the trace refuses the write)
            got = compiled(x)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
        np.testing.assert_array_equal(x.numpy(), want_x.numpy())
