"""Fuzz 7 regression: logsumexp of a bool tensor raised NotImplementedError ('"abs" not
implemented for Bool', from its max guard) where PyTorch computes it in the default float
dtype; integer inputs already agreed. Eager and compiled against PyTorch."""
import numpy as np
import pytest

import tracegrad as tg

torch = pytest.importorskip("torch")

CASES = [np.array([True, False, True]), np.array([[True], [False]]),
         np.array([[1, 5], [2**40, 3]]), np.array([[3, -4, 2**24 + 1]], np.int32)]


@pytest.mark.parametrize("k", range(len(CASES)))
@pytest.mark.parametrize("keepdim", [False, True])
def test_logsumexp_of_integers_and_bools_matches_torch(k, keepdim):
    x = CASES[k]
    want = torch.logsumexp(torch.tensor(x), 0, keepdim=keepdim)
    for fn in (tg.logsumexp, tg.compile(lambda a, d, kd: tg.logsumexp(a, d, keepdim=kd))):
        got = fn(tg.tensor(x), 0, keepdim)
        assert str(got.dtype) == str(want.dtype).replace("torch", "tracegrad")
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
