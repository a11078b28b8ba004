"""Found by fuzzing in-place writes through views against PyTorch 2.13 (fuzz5): eager
tracegrad differed from PyTorch, so compiled programs (which match eager) did too.

- ``flip`` returned a view (a reversed slice); PyTorch's is a copy, so a write into
  ``x.flip(0)`` changed ``x``.
- ``zero_``/``fill_``/``copy_`` of a constant over a whole tensor in the graph made it stop
  requiring grad: its inputs got no gradient (``None``; a loss of it alone raised "does
  not require grad") where PyTorch gives zeros.
"""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch

real_torch = pytest.importorskip("torch")


def _write_into_a_flip(x):
    h = x * 1
    y = h.flip(1)
    y.mul_(3)
    y[0] = -1.0
    return h, y


@pytest.mark.parametrize("compiled", [False, True])
def test_a_write_into_a_flip_leaves_its_source_alone(compiled):
    data = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    f = torch.compile(_write_into_a_flip, fullgraph=True) if compiled else _write_into_a_flip
    for _ in range(2):   # trace, then replay
        got = f(torch.tensor(data))
        want = _write_into_a_flip(real_torch.tensor(data))
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a.numpy(), b.numpy())



def _overwrite(lib, how):
    def f(x, w):
        h = x * w
        if how == "zero_":
            h.zero_()
        elif how == "fill_":
            h.view(-1).fill_(2.0)
        else:
            h.copy_(lib.ones(h.shape))
        return (h * 3).sum() + (x * 0.5).sum()
    return f


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("how", ["zero_", "fill_", "copy_"])
def test_overwriting_a_tensor_in_the_graph_gives_its_inputs_zero_gradients(how, compiled):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((2, 3)).astype(np.float32)
    w_data = data + 1
    w_data[0, 0] = np.nan      # the overwritten value never reaches the result
    results = []
    for lib, f in ((torch, _overwrite(torch, how)), (real_torch, _overwrite(real_torch, how))):
        if lib is torch and compiled:
            f = torch.compile(f, fullgraph=True)
        for _ in range(2 if lib is torch else 1):
            x = lib.tensor(data, requires_grad=True)
            w = lib.tensor(w_data, requires_grad=True)
            loss = f(x, w)
            loss.backward()
        results.append((loss.detach().numpy(), x.grad.numpy(), w.grad))
    (loss, gx, gw), (want_loss, want_gx, want_gw) = results
    np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
    np.testing.assert_array_equal(gx, want_gx)
    assert gw is not None, "w lost its (zero) gradient"
    np.testing.assert_array_equal(gw.numpy(), want_gw.numpy())


def _fill_with_a_tensor(lib):
    def f(x, w):
        h = x * 2
        h[:, 0].fill_(w.sum() * 0.5)     # a 0-dim tensor value: PyTorch's FillBackward
        return (h * h).sum()
    return f


@pytest.mark.parametrize("compiled", [False, True])
def test_fill_with_a_tensor_value_passes_its_gradient(compiled):
    """``fill_(tensor)`` took ``value.item()``: the value's gradient was lost (w.grad
    None where PyTorch has one) and a compile trace stopped at the item()."""
    data = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    results = []
    for lib in (torch, real_torch):
        f = _fill_with_a_tensor(lib)
        if lib is torch and compiled:
            f = torch.compile(f, fullgraph=True)
        for _ in range(2 if lib is torch else 1):
            x = lib.tensor(data, requires_grad=True)
            w = lib.tensor(data[0] - 1, requires_grad=True)
            loss = f(x, w)
            loss.backward()
        results.append((loss.detach().numpy(), x.grad.numpy(), w.grad))
    (loss, gx, gw), (want_loss, want_gx, want_gw) = results
    np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
    np.testing.assert_allclose(gx, want_gx, rtol=1e-6)
    assert gw is not None, "fill_ dropped its value's gradient"
    np.testing.assert_allclose(gw.numpy(), want_gw.numpy(), rtol=1e-6)


def test_fill_with_a_tensor_of_one_dimension_is_refused_as_in_pytorch():
    with pytest.raises(RuntimeError, match=r"fill_: only supports a 0-dimension value .*\(1,\)"):
        torch.zeros(3).fill_(torch.ones(1))
