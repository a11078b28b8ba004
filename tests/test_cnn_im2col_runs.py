"""im2col as runs of channels (NOTE (channels last in a column), tracegrad/nn/_conv.py,
and NOTE (runs), runtime/copy_table.py): the table keeps one entry per run of C
channels and the driver copies a run with one vector load and store."""
import re

import numpy as np
import pytest

import tracegrad
import tracegrad.nn as nn
import tracegrad.nn.functional as F
from tracegrad.runtime.copy_table import MAX_RUN, run_length

rng = np.random.default_rng(0)


def test_run_length_of_channel_runs_with_padding():
    # 3 windows of 3 offsets x 4 channels; the first offset of the first window is padding
    starts = [-1, 0, 4, 0, 4, 8, 4, 8, 12]
    table = np.concatenate([np.full(4, -1) if s < 0 else np.arange(s, s + 4)
                            for s in starts]).astype(np.int32)
    assert run_length(table, 16) == 4


@pytest.mark.parametrize("table, src, want", [
    (np.arange(12, dtype=np.int32), 12, 12),              # one run
    (np.array([0, 1, 2, 5, 6, 7], np.int32), 8, 1),       # runs of 3: a plain table
    (np.array([0, 1, 2, 3, 5, 6, 7, 8], np.int32), 9, 4),
    (np.array([0, 1, 2, 3, -1, 5, 6, 7], np.int32), 9, 1),  # padding inside a run
    (np.array([0, 1, 2, 3, 4, 5, 6, 7], np.int32), 6, 1),   # a run longer than the source
    (np.arange(256, dtype=np.int32), 256, MAX_RUN),
])
def test_run_length_cases(table, src, want):
    assert run_length(table, src) == want


def _driver_vectors(fn):
    programs = [p for e in fn._cache.values() for p in (e.forward, e.backward) if p]
    return "".join(d for p in programs for d in p.drivers)


@pytest.mark.parametrize("stride, padding, fill", [(2, 1, 0.0), (1, 1, 0.0), (1, 0, 0.0),
                                                   (2, 0, 2.5)])
def test_im2col_of_channels_last_activations_copies_runs(stride, padding, fill):
    tracegrad.manual_seed(0)
    lin = nn.Linear(6, 8)
    w = tracegrad.from_numpy(rng.standard_normal((5, 8, 3, 3)).astype(np.float32))
    x = tracegrad.from_numpy(rng.standard_normal((4, 7, 7, 6)).astype(np.float32))

    def fn(x):
        # channels-last activations (a linear layer over the last dim), viewed as NCHW
        h = lin(x).relu().permute(0, 3, 1, 2)
        if fill:
            h = F.pad(h, (1, 1, 1, 1), value=fill)
        return F.conv2d(h, w, stride=stride, padding=padding)

    compiled = tracegrad.compile(fn)
    with tracegrad.no_grad():
        np.testing.assert_allclose(compiled(x).numpy(), fn(x).numpy(), rtol=1e-5, atol=1e-5)
    # runs of the 8 channels (3 * 8 where no padding breaks a window row)
    runs = {int(r) for r in re.findall(r"<(\d+) x float>", _driver_vectors(compiled))}
    assert runs and all(r % 8 == 0 for r in runs), runs


def test_conv_weight_and_input_gradients_with_channels_last_columns():
    """Conv gradients through the (*k, C) column order, compared with a NumPy conv."""
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 2))
    g = rng.standard_normal((2, 4, 2, 2))
    xt = tracegrad.from_numpy(x).requires_grad_()
    wt = tracegrad.from_numpy(w).requires_grad_()
    out = F.conv2d(xt, wt, stride=(2, 3), padding=(0, 1))
    want = np.zeros((2, 4, 2, 2))
    xp = np.pad(x, ((0, 0), (0, 0), (0, 0), (1, 1)))
    for i in range(2):
        for j in range(2):
            want[:, :, i, j] = np.einsum("nchw,ochw->no", xp[:, :, 2 * i:2 * i + 3,
                                                             3 * j:3 * j + 2], w)
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-10)
    gx, gw = tracegrad.autograd.grad((out * tracegrad.from_numpy(g)).sum(), (xt, wt))
    want_gw = np.zeros_like(w)
    want_gxp = np.zeros_like(xp)
    for i in range(2):
        for j in range(2):
            patch = xp[:, :, 2 * i:2 * i + 3, 3 * j:3 * j + 2]
            want_gw += np.einsum("no,nchw->ochw", g[:, :, i, j], patch)
            want_gxp[:, :, 2 * i:2 * i + 3, 3 * j:3 * j + 2] += np.einsum(
                "no,ochw->nchw", g[:, :, i, j], w)
    np.testing.assert_allclose(gw.numpy(), want_gw, rtol=1e-10)
    np.testing.assert_allclose(gx.numpy(), want_gxp[:, :, :, 1:-1], rtol=1e-10)
