"""Padding layers against np.pad (constant, reflect, edge = replicate, wrap = circular),
their gradients, and PyTorch 2.13's reprs and errors."""
import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn

NUMPY_MODE = {"Constant": "constant", "Zero": "constant", "Reflection": "reflect",
              "Replication": "edge", "Circular": "wrap"}


def _np_pad(x, padding, mode, value=0.0):
    pairs = [(0, 0)] * x.ndim
    for i in range(len(padding) // 2):
        pairs[x.ndim - 1 - i] = (padding[2 * i], padding[2 * i + 1])
    kw = {"constant_values": value} if mode == "constant" else {}
    return np.pad(x, pairs, mode=mode, **kw)


@pytest.mark.parametrize("kind", list(NUMPY_MODE))
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_values_and_gradients_match_numpy(kind, dims):
    rng = np.random.default_rng(dims)
    x = rng.standard_normal((2, 3) + (4,) * dims)
    padding = tuple(min(p, 3) for p in range(2 * dims, 0, -1))  # uneven amounts, all < 4
    args = (padding, 1.5) if kind == "Constant" else (padding,)
    layer = getattr(nn, f"{kind}Pad{dims}d")(*args)
    t = torch.tensor(x, requires_grad=True)
    out = layer(t)
    value = 1.5 if kind == "Constant" else 0.0
    np.testing.assert_allclose(out.detach().numpy(), _np_pad(x, padding, NUMPY_MODE[kind], value))
    # the corner element feeds several outputs under replicate/circular: a finite
    # difference of the weighted output sum checks its gradient adds them all
    weights = rng.standard_normal(tuple(out.shape))
    (out * torch.tensor(weights)).sum().backward()
    eps = 1e-6
    idx = (1, 2) + (0,) * dims
    bumped = x.copy()
    bumped[idx] += eps
    fd = ((_np_pad(bumped, padding, NUMPY_MODE[kind], value) -
           _np_pad(x, padding, NUMPY_MODE[kind], value)) * weights).sum() / eps
    assert t.grad.numpy()[idx] == pytest.approx(fd, rel=1e-4, abs=1e-6)


def test_reprs_and_int_padding_as_pytorch():
    assert repr(nn.ConstantPad2d((1, 1, 2, 0), 3.5)) == \
        "ConstantPad2d(padding=(1, 1, 2, 0), value=3.5)"
    assert repr(nn.ConstantPad1d(2, 0.0)) == "ConstantPad1d(padding=(2, 2), value=0.0)"
    assert repr(nn.ZeroPad2d(2)) == "ZeroPad2d((2, 2, 2, 2))"
    assert repr(nn.ReflectionPad1d((3, 1))) == "ReflectionPad1d((3, 1))"
    assert repr(nn.ReplicationPad3d(1)) == "ReplicationPad3d((1, 1, 1, 1, 1, 1))"
    assert repr(nn.CircularPad2d(1)) == "CircularPad2d((1, 1, 1, 1))"
    assert nn.ZeroPad1d(1).padding == (1, 1)


def test_wrong_padding_or_rank_is_named():
    with pytest.raises(ValueError, match="ZeroPad2d: padding must be an int or a tuple of 4"):
        nn.ZeroPad2d((1, 2))
    with pytest.raises(ValueError, match=r"ReflectionPad2d: expected a 3D or 4D input, got "
                                         r"shape \(5,\)"):
        nn.ReflectionPad2d(1)(torch.zeros(5))
