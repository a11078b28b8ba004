"""cross_entropy and nll_loss with class-index targets: values and gradients, eager and
compiled, against a NumPy reference of PyTorch's definition; one row kernel per direction
(NOTE (one-pass cross entropy), NOTE (recompute in backward))."""
import numpy as np
import pytest

import tracegrad
from tracegrad.autograd.gradcheck import gradcheck
from tracegrad.nn import functional as F

RNG = np.random.default_rng(11)
REDUCTIONS = ("mean", "sum", "none")


def reference(x, t, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """PyTorch's cross_entropy for class indices, in float64 NumPy. x: (N, C, ...)."""
    x = np.asarray(x, np.float64)
    if x.ndim == 1:
        x, t = x[None], np.asarray(t).reshape(1)
    C = x.shape[1]
    xl = np.moveaxis(x, 1, -1).reshape(-1, C)
    tl = np.asarray(t).reshape(-1).astype(np.int64)
    m = xl.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):
        logp = xl - m - np.log(np.exp(xl - m).sum(axis=1, keepdims=True))
    w = np.ones(C) if weight is None else np.asarray(weight, np.float64)
    valid = tl != ignore_index
    safe = np.where(valid, tl, 0)
    w_t = np.where(valid, w[safe], 0.0)
    nll = np.where(valid, -logp[np.arange(len(tl)), safe] * w_t, 0.0)
    loss = nll
    if label_smoothing:
        smooth = np.where(valid, -(logp * w).sum(axis=1), 0.0)
        loss = nll * (1 - label_smoothing) + smooth * (label_smoothing / C)
    if reduction == "none":
        return loss.reshape(np.asarray(t).shape)
    if reduction == "sum":
        return loss.sum()
    denom = w_t.sum()
    return loss.sum() / denom if denom else np.float64(np.nan)


def random_case(shape, ignore=True, special=None):
    x = (RNG.standard_normal(shape) * 3).astype(np.float32)
    C = shape[1] if len(shape) > 1 else shape[0]
    tshape = (shape[0],) + tuple(shape[2:]) if len(shape) > 1 else ()
    t = RNG.integers(0, C, tshape)
    if ignore and t.ndim:
        t[RNG.random(tshape) < 0.25] = -100
    if special is not None:
        flat = x.reshape(-1)
        flat[RNG.choice(flat.size, 2, replace=False)] = special
    return x, np.asarray(t, np.int64)


def call(fn, x, t, compiled, **kw):
    """(loss, d sum(loss) / dx) through tracegrad, eager or compiled."""
    tx = tracegrad.from_numpy(x.copy()).requires_grad_()
    def loss_fn(a, b):
        return fn(a, b, **kw)
    f = tracegrad.compile(loss_fn) if compiled else loss_fn
    loss = f(tx, tracegrad.from_numpy(t))
    loss.sum().backward()
    return loss.detach().numpy(), tx.grad.numpy()


SHAPES = [(7, 5), (1, 3), (6, 33), (4, 6, 3), (2, 5, 2, 3), (9,)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_matches_reference_eager_and_compiled(shape, reduction, weighted,
                                                           label_smoothing):
    x, t = random_case(shape)
    C = shape[1] if len(shape) > 1 else shape[0]
    w = RNG.uniform(0.2, 2.0, C).astype(np.float32) if weighted else None
    kw = dict(weight=None if w is None else tracegrad.from_numpy(w), reduction=reduction,
              label_smoothing=label_smoothing)
    ref = reference(x, t, w, reduction=reduction, label_smoothing=label_smoothing)
    eager, g_eager = call(F.cross_entropy, x, t, False, **kw)
    compiled, g_compiled = call(F.cross_entropy, x, t, True, **kw)
    np.testing.assert_allclose(eager, ref, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(compiled, ref, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(g_compiled, g_eager, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nan_and_inf_logits_match_eager(special, reduction):
    x, t = random_case((8, 6), special=special)
    x[-1] = -np.inf   # a whole row of -inf: log_softmax is NaN there, as in PyTorch
    x[-2, t[-2] if t[-2] >= 0 else 0] = -np.inf   # the target's own logit -inf: loss inf
    ref = reference(x, t, reduction=reduction)
    for compiled in (False, True):
        got, grad = call(F.cross_entropy, x, t, compiled, reduction=reduction)
        np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-6)
    _, g_eager = call(F.cross_entropy, x, t, False, reduction=reduction)
    np.testing.assert_allclose(grad, g_eager, rtol=2e-5, atol=1e-6)


def test_ignored_rows_with_nan_logits_contribute_zero_loss():
    # PyTorch: loss 0 on the ignored row, finite elsewhere; its gradient row is NaN there
    # too (log_softmax's backward is softmax * 0 = NaN), checked against eager
    x, t = random_case((5, 4), ignore=False)
    x[2] = np.nan
    t[2] = 7   # out of range, but ignored
    for weighted in (False, True):
        w = tracegrad.ones(4) if weighted else None
        for compiled in (False, True):
            got, grad = call(F.cross_entropy, x, t, compiled, ignore_index=7, weight=w,
                             reduction="none")
            assert got[2] == 0 and np.isfinite(got).all()
            assert np.isnan(grad[2]).all() and np.isfinite(np.delete(grad, 2, 0)).all()


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_of_log_softmax_matches_reference(reduction):
    x, t = random_case((6, 9))
    w = RNG.uniform(0.5, 1.5, 9).astype(np.float32)

    def fn(a, b, **kw):
        return F.nll_loss(F.log_softmax(a, 1), b, **kw)
    kw = dict(weight=tracegrad.from_numpy(w), reduction=reduction)
    ref = reference(x, t, w, reduction=reduction)
    eager, g_eager = call(fn, x, t, False, **kw)
    compiled, g_compiled = call(fn, x, t, True, **kw)
    np.testing.assert_allclose(eager, ref, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(compiled, ref, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(g_compiled, g_eager, rtol=2e-5, atol=1e-6)


def test_byte_targets_and_one_dimensional_input():
    x, t = random_case((5, 4), ignore=False)
    ref = reference(x, t)
    for compiled in (False, True):
        got, _ = call(F.cross_entropy, x, t.astype(np.uint8), compiled)
        np.testing.assert_allclose(got, ref, rtol=2e-6)
    x1 = x[0]
    t1 = np.asarray(t[0], np.int64)
    for compiled in (False, True):
        got, _ = call(F.cross_entropy, x1, t1, compiled)
        np.testing.assert_allclose(got, reference(x1, t1), rtol=2e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("compiled", [False, True])
def test_gradients_match_finite_differences(reduction, compiled):
    x = RNG.standard_normal((4, 5))
    t = tracegrad.tensor([1, -100, 4, 0])
    w = tracegrad.from_numpy(RNG.uniform(0.5, 2.0, 5))

    def fn(a):
        return F.cross_entropy(a, t, weight=w, reduction=reduction, label_smoothing=0.1)
    f = tracegrad.compile(fn) if compiled else fn
    assert gradcheck(f, (tracegrad.from_numpy(x).requires_grad_(),), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("bad", [5, 9, -1, -3])
@pytest.mark.parametrize("compiled", [False, True])
def test_out_of_range_target_raises(bad, compiled):
    x, t = random_case((4, 5), ignore=False)
    t[1] = bad
    f = tracegrad.compile(F.cross_entropy) if compiled else F.cross_entropy
    with pytest.raises(IndexError, match="out of bounds"):
        f(tracegrad.from_numpy(x), tracegrad.from_numpy(t))


def _reads_logits(program, shape):
    """Kernels of ``program`` that bind a buffer of ``shape``."""
    return [k for k in program.kernels
            if any(tuple(program.buffers[b].shape) == shape for b in k.buffers)]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_one_row_kernel_per_direction(reduction, label_smoothing):
    N, C = 16, 40
    x = tracegrad.from_numpy(RNG.standard_normal((N, C)).astype(np.float32)).requires_grad_()
    t = tracegrad.from_numpy(RNG.integers(0, C, N))
    w = tracegrad.from_numpy(RNG.uniform(0.5, 2.0, C).astype(np.float32))
    report = tracegrad.compile(
        lambda a, b: F.cross_entropy(a, b, weight=w, reduction=reduction,
                                     label_smoothing=label_smoothing)).explain(x, t)
    fwd, bwd = report.forward, report.backward
    # forward: one kernel reads the (N, C) logits and writes the one (N, C) value the
    # backward reads, exp(x - max), as eager mode saves it: the logits may change in place
    # before backward (NOTE (inputs read by backward) in compiler/partition.py)
    assert len(_reads_logits(fwd, (N, C))) == 1
    assert [o.kind for o in fwd.outputs if tuple(o.shape) == (N, C)] == ["buffer"]
    assert sorted(b.kind for b in fwd.buffers.values()
                  if tuple(b.shape) == (N, C)) == ["input", "output"]
    # the remaining forward steps are O(N): target clamping, the bounds-checking gathers
    # (of the class numbers, and of the weights) and the reduction over rows
    assert {s.node.op.name for s in fwd.externs} == {"GATHER"}
    assert all(k.work <= 4 * N for k in fwd.kernels if k not in _reads_logits(fwd, (N, C)))
    # backward: one kernel, no extern (no scatter)
    assert len(bwd.kernels) == 1 and not bwd.externs
    # the saved exp(x - max) is the value the sum's pass makes: computed once per element
    # (NOTE (row stash) in codegen.lower), not again in the pass that writes it
    (logits_kernel,) = _reads_logits(fwd, (N, C))
    assert logits_kernel.loop_ir.count("EXP(") == 1, logits_kernel.loop_ir


def test_log_softmax_and_softmax_backward_recompute_instead_of_saving():
    x = tracegrad.from_numpy(RNG.standard_normal((8, 32)).astype(np.float32)).requires_grad_()
    for fn in (tracegrad.log_softmax, tracegrad.softmax):
        # the backward reads the input anyway (eager mode's mul saves it): exp(x - max)
        # is recomputed from it; saved: the input and the result (no copies), and per-row
        # values only
        report = tracegrad.compile(lambda a, fn=fn: fn(a, -1) * a).explain(x)
        assert len(report.forward.kernels) == 1 and len(report.backward.kernels) == 1
        big = [o for o in report.forward.outputs if tuple(o.shape) == (8, 32)]
        assert sorted(o.kind for o in big) == ["buffer", "input"]
        # alone, the input may change in place before backward, as eagerly: exp(x - max)
        # is saved as eager mode saves it (NOTE (inputs read by backward))
        report = tracegrad.compile(lambda a, fn=fn: fn(a, -1)).explain(x)
        assert len(report.forward.kernels) == 1 and len(report.backward.kernels) == 1
        big = [o for o in report.forward.outputs if tuple(o.shape) == (8, 32)]
        assert [o.kind for o in big] == ["buffer", "buffer"]


def test_captured_targets_are_read_and_checked_at_every_call():
    # targets the function reads but does not take (a buffer updated in place): the
    # compiled program reads their new values and checks them at every call
    x, t = random_case((4, 5), ignore=False)
    targets = tracegrad.from_numpy(t.copy())
    f = tracegrad.compile(lambda a: F.cross_entropy(a, targets, reduction="none"))
    tx = tracegrad.from_numpy(x)
    np.testing.assert_allclose(f(tx).numpy(), reference(x, t, reduction="none"), rtol=2e-6)
    t2 = (t + 1) % 5
    targets.copy_(tracegrad.from_numpy(t2))
    np.testing.assert_allclose(f(tx).numpy(), reference(x, t2, reduction="none"), rtol=2e-6)
    targets.copy_(tracegrad.tensor([0, 1, -1, 4]))
    with pytest.raises(IndexError, match="out of bounds"):
        f(tx)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.15])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_probability_targets_are_one_row_kernel_per_direction(label_smoothing, reduction):
    N, C = 6, 20
    x = RNG.standard_normal((N, C)).astype(np.float32)
    p = RNG.uniform(0, 1, (N, C)).astype(np.float32)
    p /= p.sum(1, keepdims=True)
    q = p * (1 - label_smoothing) + label_smoothing / C
    logp = x - x.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    per_row = -(q * logp).sum(1)
    ref = {"none": per_row, "sum": per_row.sum(), "mean": per_row.mean()}[reduction]
    tx = tracegrad.from_numpy(x).requires_grad_()
    tp = tracegrad.from_numpy(p)
    f = tracegrad.compile(lambda a, b: F.cross_entropy(a, b, reduction=reduction,
                                                      label_smoothing=label_smoothing))
    loss = f(tx, tp)
    np.testing.assert_allclose(loss.detach().numpy(), ref, rtol=2e-5, atol=1e-6)
    loss.sum().backward()
    scale = {"none": 1.0, "sum": 1.0, "mean": 1.0 / N}[reduction]
    softmax = np.exp(logp)
    np.testing.assert_allclose(tx.grad.numpy(), scale * (softmax * q.sum(1, keepdims=True) - q),
                               rtol=2e-5, atol=1e-6)
    report = f.explain(tx, tp)
    assert len(_reads_logits(report.forward, (N, C))) == 1
    # saved for the backward: the targets (smoothed: a value of their own) and
    # exp(x - max), as eager mode saves them: the logits may change in place before
    # backward (NOTE (inputs read by backward) in compiler/partition.py)
    targets = "buffer" if label_smoothing else "input"
    assert sorted(o.kind for o in report.forward.outputs
                  if tuple(o.shape) == (N, C)) == sorted(["buffer", targets])
    assert len(report.backward.kernels) == 1 and not report.backward.externs


@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss])
def test_weight_of_the_wrong_size_raises(fn):
    x, t = random_case((4, 5), ignore=False)
    for w in (tracegrad.ones(4), tracegrad.ones(6), tracegrad.ones(5, 1)):
        with pytest.raises(RuntimeError, match="weight tensor should be defined"):
            fn(tracegrad.from_numpy(x), tracegrad.from_numpy(t), weight=w)
