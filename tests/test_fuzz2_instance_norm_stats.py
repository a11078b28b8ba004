"""``instance_norm``'s running statistics were ignored (found by the second fuzz pass,
which listed public parameters their function never reads): ``use_input_stats=False``
normalised with the input's own statistics, and ``InstanceNorm2d(track_running_stats=True)``
had no buffers, so in eval mode it differed from PyTorch. References computed in NumPy."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn as nn
import tracegrad.nn.functional as F

X = np.random.default_rng(0).standard_normal((3, 4, 5, 6)).astype(np.float32)


def _normalise(x, mean, var, eps=1e-5):
    return (x - mean) / np.sqrt(var + eps)


def test_use_input_stats_false_normalises_with_the_running_statistics():
    rm = np.array([0.5, -1.0, 0.0, 2.0], np.float32)
    rv = np.array([1.0, 2.0, 0.5, 4.0], np.float32)
    got = F.instance_norm(tg.tensor(X), tg.tensor(rm), tg.tensor(rv), use_input_stats=False)
    np.testing.assert_allclose(got.numpy(), _normalise(X, rm[:, None, None], rv[:, None, None]),
                               rtol=1e-5, atol=1e-6)


def test_use_input_stats_false_without_statistics_raises():
    with pytest.raises(ValueError, match="instance_norm: running_mean and running_var"):
        F.instance_norm(tg.tensor(X), use_input_stats=False)


def test_instance_norm_module_tracks_statistics_and_uses_them_in_eval():
    m = nn.InstanceNorm2d(4, momentum=0.2, track_running_stats=True)
    assert sorted(m.state_dict()) == ["num_batches_tracked", "running_mean", "running_var"]
    rm, rv = np.zeros(4), np.ones(4)
    for step in range(3):
        x = X * (step + 1) + step
        out = m(tg.tensor(x)).numpy()
        mean, var = x.mean((2, 3), keepdims=True), x.var((2, 3), keepdims=True)
        np.testing.assert_allclose(out, _normalise(x, mean, var), rtol=1e-4, atol=1e-5)
        n = x.shape[2] * x.shape[3]
        rm = 0.8 * rm + 0.2 * mean.mean(0).reshape(-1)
        rv = 0.8 * rv + 0.2 * (var * n / (n - 1)).mean(0).reshape(-1)
    np.testing.assert_allclose(m.running_mean.numpy(), rm, rtol=1e-5)
    np.testing.assert_allclose(m.running_var.numpy(), rv, rtol=1e-5)
    m.eval()
    np.testing.assert_allclose(m(tg.tensor(X)).numpy(),
                               _normalise(X, rm[:, None, None], rv[:, None, None]),
                               rtol=1e-4, atol=1e-5)


def test_without_tracking_eval_still_uses_the_input_statistics():
    m = nn.InstanceNorm2d(4).eval()
    assert m.running_mean is None
    want = _normalise(X, X.mean((2, 3), keepdims=True), X.var((2, 3), keepdims=True))
    np.testing.assert_allclose(m(tg.tensor(X)).numpy(), want, rtol=1e-4, atol=1e-5)
