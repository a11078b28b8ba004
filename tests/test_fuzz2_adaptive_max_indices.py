"""``adaptive_max_pool2d(..., return_indices=True)`` ignored the flag (found by the second
fuzz pass): it returned the pooled tensor alone, so ``out, idx = ...`` unpacked its batch
dim into two wrong tensors. Indices against a brute-force reference, ties to the first."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn.functional as F


def _reference(x: np.ndarray, out_hw):
    H, W = x.shape[-2:]
    vals = np.empty(x.shape[:-2] + tuple(out_hw), x.dtype)
    idx = np.empty(x.shape[:-2] + tuple(out_hw), np.int64)
    for lead in np.ndindex(x.shape[:-2]):
        for i in range(out_hw[0]):
            hs, he = (i * H) // out_hw[0], -(-((i + 1) * H) // out_hw[0])
            for j in range(out_hw[1]):
                ws, we = (j * W) // out_hw[1], -(-((j + 1) * W) // out_hw[1])
                best = None
                for h in range(hs, he):
                    for w in range(ws, we):
                        if best is None or x[lead + (h, w)] > x[lead + best]:
                            best = (h, w)
                vals[lead + (i, j)] = x[lead + best]
                idx[lead + (i, j)] = best[0] * W + best[1]
    return vals, idx


@pytest.mark.parametrize("shape,out_hw", [((2, 3, 7, 6), (3, 4)), ((1, 2, 5, 9), (2, 2)),
                                          ((3, 4, 4), (4, 3)), ((2, 1, 6, 6), (3, 3))])
def test_adaptive_max_pool2d_returns_values_and_indices(shape, out_hw):
    x = np.random.default_rng(len(shape) + out_hw[0]).standard_normal(shape).astype(np.float32)
    x[..., 0, :2] = x[..., 1, :2]   # ties: the first position wins, as in PyTorch
    out, idx = F.adaptive_max_pool2d(tg.tensor(x), out_hw, return_indices=True)
    want_vals, want_idx = _reference(x, out_hw)
    np.testing.assert_array_equal(out.numpy(), want_vals)
    np.testing.assert_array_equal(idx.numpy(), want_idx)
    assert idx.dtype == tg.int64
    np.testing.assert_array_equal(F.adaptive_max_pool2d(tg.tensor(x), out_hw).numpy(),
                                  want_vals)
