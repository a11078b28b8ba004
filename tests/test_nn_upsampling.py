"""PixelShuffle, Upsample and Softmax2d against NumPy, with PyTorch 2.13's reprs."""
import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn

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
