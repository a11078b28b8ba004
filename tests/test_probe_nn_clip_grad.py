"""clip_grad_norm_ the way training scripts call it: NaN gradients and orders 0 / -inf.

PyTorch takes the ``norm_type`` norm of the per-tensor norms and scales every gradient by
``clamp(max_norm / (total + 1e-6), max=1)``, so a NaN anywhere turns every gradient NaN
(the user sees the blow-up) and order 0 counts tensors with a nonzero entry."""
import math

import numpy as np
import pytest

import tracegrad as tg

NAN, INF = float("nan"), float("inf")


def _params(grads):
    params = []
    for g in grads:
        p = tg.nn.Parameter(tg.zeros(len(g)))
        p.grad = tg.tensor(np.array(g, dtype=np.float32))
        params.append(p)
    return params


def _expected(grads, max_norm, norm_type):
    """The norm of the per-tensor norms, then the clamped scale, in NumPy."""
    def vnorm(a):
        a = np.abs(np.asarray(a, dtype=np.float64))
        if norm_type == INF:
            return a.max()
        if norm_type == -INF:
            return a.min()
        if norm_type == 0:
            return float(np.count_nonzero(a))
        return np.sum(a ** norm_type) ** (1.0 / norm_type)
    total = vnorm([vnorm(g) for g in grads])
    coef = max_norm / (total + 1e-6)
    coef = coef if np.isnan(coef) else min(coef, 1.0)
    return total, [np.array(g, np.float32) * np.float32(coef) for g in grads]


CASES = [
    (INF, [[1.0], [NAN]]),          # the NaN in the last tensor: a Python max() dropped it
    (INF, [[NAN], [1.0]]),
    (2.0, [[1.0, NAN], [1.0]]),     # NaN norm: coef < 1 was False, nothing was scaled
    (1.0, [[NAN, 2.0], [3.0]]),
    (0, [[3.0, 0.0], [0.0]]),       # order 0 divided by zero
    (0, [[3.0, 1.0], [2.0]]),
    (-INF, [[3.0, 5.0], [2.0]]),    # min of the per-tensor minima
    (2.0, [[3.0, 4.0], [1.0, -2.0, 2.0]]),
    (0.5, [[3.0, 1.0], [2.0]]),
]


@pytest.mark.parametrize("norm_type,grads", CASES)
def test_clip_grad_norm_matches_numpy(norm_type, grads):
    params = _params(grads)
    total = tg.nn.utils.clip_grad_norm_(params, 1.0, norm_type=norm_type)
    want_total, want_grads = _expected(grads, 1.0, norm_type)
    np.testing.assert_allclose(float(total), want_total, rtol=1e-6, equal_nan=True)
    for p, want in zip(params, want_grads):
        np.testing.assert_allclose(p.grad.numpy(), want, rtol=1e-6, equal_nan=True)


def test_nan_gradient_makes_every_gradient_nan():
    params = _params([[1.0, 2.0], [NAN]])
    total = tg.nn.utils.clip_grad_norm_(params, 5.0)
    assert math.isnan(float(total))
    assert all(np.isnan(p.grad.numpy()).all() for p in params)


def test_nan_in_last_tensor_fails_error_if_nonfinite_for_inf_norm():
    params = _params([[1.0], [NAN]])
    with pytest.raises(RuntimeError, match="non-finite"):
        tg.nn.utils.clip_grad_norm_(params, 1.0, norm_type=INF, error_if_nonfinite=True)


@pytest.mark.parametrize("norm_type,grads", CASES)
def test_clip_grad_norm_matches_torch(norm_type, grads):
    torch = pytest.importorskip("torch")
    ours, theirs = _params(grads), []
    for g in grads:
        p = torch.nn.Parameter(torch.zeros(len(g)))
        p.grad = torch.tensor(g, dtype=torch.float32)
        theirs.append(p)
    a = tg.nn.utils.clip_grad_norm_(ours, 1.0, norm_type=norm_type)
    b = torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type=norm_type)
    np.testing.assert_allclose(float(a), float(b), rtol=1e-5, equal_nan=True)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, equal_nan=True)


def _clipped_steps(norm_type, compiled):
    rng = np.random.default_rng(0)
    m = tg.nn.Linear(4, 3)
    with tg.no_grad():
        m.weight.copy_(tg.tensor(rng.standard_normal((3, 4)).astype(np.float32)))
        m.bias.copy_(tg.tensor([0.5, 0.0, -1.0]))
    opt = tg.optim.SGD(m.parameters(), lr=0.1)
    x = tg.tensor(rng.standard_normal((5, 4)).astype(np.float32))

    def step(x):
        opt.zero_grad()
        (m(x) ** 2).mean().backward()
        total = tg.nn.utils.clip_grad_norm_(m.parameters(), 0.5, norm_type=norm_type)
        opt.step()
        return total

    f = tg.compile(step, fullgraph=True) if compiled else step
    totals = [float(f(x)) for _ in range(3)]
    return totals, m.weight.detach().numpy()


@pytest.mark.parametrize("norm_type", [0, -INF, INF, 2.0])
def test_compiled_step_clips_like_eager(norm_type):
    # order 0 divided by zero while tracing (1 / norm_type); -inf took sum(|g|^-inf)
    eager, compiled = _clipped_steps(norm_type, False), _clipped_steps(norm_type, True)
    np.testing.assert_allclose(compiled[0], eager[0], rtol=1e-6)
    np.testing.assert_allclose(compiled[1], eager[1], rtol=1e-6)
