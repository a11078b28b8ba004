"""Resizing and rearranging layers (PixelShuffle/Unshuffle, ChannelShuffle, Upsample,
Unfold, Softmax2d), in-place activation aliases and gumbel_softmax against NumPy, with
PyTorch 2.13's reprs."""
import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn
import tracegrad.nn.functional as F

rng = np.random.default_rng(0)


def test_pixel_shuffle_moves_channels_to_space():
    x = rng.standard_normal((2, 8, 3, 3))
    out = nn.PixelShuffle(2)(torch.tensor(x)).numpy()
    # out[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w]
    ref = x.reshape(2, 2, 2, 2, 3, 3).transpose(0, 1, 4, 2, 5, 3).reshape(2, 2, 6, 6)
    np.testing.assert_array_equal(out, ref)
    assert repr(nn.PixelShuffle(2)) == "PixelShuffle(upscale_factor=2)"


def test_upsample_nearest_repeats_pixels():
    x = rng.standard_normal((1, 2, 3, 4))
    out = nn.Upsample(scale_factor=2)(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(out, x.repeat(2, axis=2).repeat(2, axis=3))
    out = nn.Upsample(size=(6, 8))(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(out, x.repeat(2, axis=2).repeat(2, axis=3))
    assert repr(nn.Upsample(scale_factor=2)) == "Upsample(scale_factor=2.0, mode='nearest')"
    assert repr(nn.Upsample(size=(4, 5))) == "Upsample(size=(4, 5), mode='nearest')"


def test_softmax2d_normalises_channels():
    x = rng.standard_normal((2, 3, 4, 5))
    out = nn.Softmax2d()(torch.tensor(x)).numpy()
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out, e / e.sum(axis=1, keepdims=True), rtol=1e-12)
    assert repr(nn.Softmax2d()) == "Softmax2d()"
    with pytest.raises(ValueError, match="Softmax2d: expected input to be 3D or 4D, got 2D"):
        nn.Softmax2d()(torch.zeros(3, 4))


def test_pixel_unshuffle_inverts_pixel_shuffle_and_channel_shuffle_order():
    x = rng.standard_normal((2, 3, 4, 6))
    t = torch.tensor(x, requires_grad=True)
    down = nn.PixelUnshuffle(2)(t)
    assert tuple(down.shape) == (2, 12, 2, 3)
    np.testing.assert_array_equal(nn.PixelShuffle(2)(down).detach().numpy(), x)
    # out[n, c*r*r + i*r + j, h, w] = x[n, c, h*r + i, w*r + j]
    assert down[1, 2 * 4 + 1 * 2 + 0, 1, 2].item() == x[1, 2, 1 * 2 + 1, 2 * 2 + 0]
    down.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), np.ones_like(x))
    # torch 2.13: channel_shuffle(arange(12).view(1, 6, 1, 2), 2)
    y = nn.ChannelShuffle(2)(torch.arange(12.0).view(1, 6, 1, 2))
    assert y.flatten().tolist() == [0.0, 1.0, 6.0, 7.0, 2.0, 3.0, 8.0, 9.0, 4.0, 5.0, 10.0, 11.0]
    assert repr(nn.PixelUnshuffle(2)) == "PixelUnshuffle(downscale_factor=2)"
    assert repr(nn.ChannelShuffle(3)) == "ChannelShuffle(groups=3)"
    with pytest.raises(torch.ShapeError, match="divisible by downscale_factor"):
        F.pixel_unshuffle(torch.zeros(1, 1, 3, 4), 2)


def test_upsampling_nearest2d_unfold_and_deprecated_aliases():
    x = torch.tensor(rng.standard_normal((1, 2, 3, 4)))
    up = nn.UpsamplingNearest2d(scale_factor=2)
    assert repr(up) == "UpsamplingNearest2d(scale_factor=2.0, mode='nearest')"
    with pytest.warns(UserWarning, match="upsample_nearest` is deprecated"):
        alias = F.upsample_nearest(x, scale_factor=2)
    np.testing.assert_array_equal(up(x).numpy(), alias.numpy())
    with pytest.warns(UserWarning, match="upsample` is deprecated"):
        F.upsample(x, scale_factor=2)
    unfold = nn.Unfold(kernel_size=(2, 3))
    assert repr(unfold) == "Unfold(kernel_size=(2, 3), dilation=1, padding=0, stride=1)"
    np.testing.assert_array_equal(unfold(x).numpy(), F.unfold(x, (2, 3)).numpy())


def test_inplace_activation_aliases_and_gumbel_softmax():
    x = torch.tensor([-1.0, 0.5, 2.0])
    assert F.relu_(x) is x and x.tolist() == [0.0, 0.5, 2.0]
    y = torch.tensor([-2.0, 0.5, 2.0])
    F.hardtanh_(y)
    assert y.tolist() == [-1.0, 0.5, 1.0]
    z = torch.tensor([-1.0, 3.0])
    F.leaky_relu_(z, 0.5)
    assert z.tolist() == [-0.5, 3.0]
    torch.manual_seed(0)
    logits = torch.tensor([[1.0, 2.0, 0.5, -1.0]] * 4000, requires_grad=True)
    soft = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(soft.sum(-1).detach().numpy(), 1.0, rtol=1e-6)
    hard = F.gumbel_softmax(logits, hard=True)
    assert set(np.unique(hard.detach().numpy())) == {0.0, 1.0}
    # Gumbel-max: argmax frequencies follow softmax(logits)
    freq = hard.detach().numpy().mean(0)
    p = np.exp([1.0, 2.0, 0.5, -1.0])
    np.testing.assert_allclose(freq, p / p.sum(), atol=0.03)
    (hard[:, 1]).sum().backward()  # straight-through: the soft sample's gradient
    assert np.abs(logits.grad.numpy()).sum() > 0
