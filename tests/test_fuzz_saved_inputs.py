"""A compiled function's backward reads its inputs as eager mode's backward would: an
in-place change to an input between the call and ``backward()`` raises exactly where
eager raises (a derivative rule saved it), and is harmless where eager does not save it
(softmax saves its output; NOTE (inputs read by backward) in compiler/partition.py)."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn.functional as F

INPLACE_ERROR = "modified by an inplace operation"
TARGET = np.array([1, 2, 0, 4])

# each compiled function once with eager mode's answer: x.grad after the change of x
NOT_SAVED = {
    "softmax": lambda x, w: F.softmax(x, 1),
    "softmax(x*1)": lambda x, w: F.softmax(x * 1.0, 1),
    "log_softmax": lambda x, w: F.log_softmax(x, 1),
    "sigmoid": lambda x, w: tg.sigmoid(x) * 2,
    "tanh": lambda x, w: tg.tanh(x) + 1,
    "exp": lambda x, w: tg.exp(x) + 1,
    "relu": lambda x, w: F.relu(x) * 3,
    "layer_norm": lambda x, w: F.layer_norm(x, (5,)),
    "cross_entropy": lambda x, w: F.cross_entropy(x, tg.tensor(TARGET)),
    "x*w": lambda x, w: x * w,
}

# eager mode saves w (shape (4, 5) or its transpose): changing it must raise
SAVES_W = {
    "x*w": lambda x, w: x * w,
    "x*w.t().t()": lambda x, w: x * w.t().t(),
    "x@w.t()": lambda x, w: x @ w.t(),
    "x.t()*w.t()": lambda x, w: x.t() * w.t(),
    "x[:, :3]*w[:, 1:4]": lambda x, w: x[:, :3] * w[:, 1:4],
    "where(w>0, x*w, x)": lambda x, w: tg.where(w > 0, x * w, x),
}


def _inputs(seed: int):
    r = np.random.RandomState(seed)
    x = tg.tensor(r.randn(4, 5).astype(np.float32), requires_grad=True)
    w = tg.tensor(r.randn(4, 5).astype(np.float32))
    return x, w


def _grad_after_change(fn, seed: int, change):
    x, w = _inputs(seed)
    y = fn(x, w)
    with tg.no_grad():
        change(x, w)
    (y * y).sum().backward()
    return x.grad.numpy()


@pytest.mark.parametrize("name", sorted(NOT_SAVED))
def test_changing_an_input_eager_does_not_save_keeps_backward_exact(name):
    fn = NOT_SAVED[name]
    compiled = tg.compile(fn)
    for seed in range(3):   # the first call traces, the later ones replay
        want = _grad_after_change(fn, seed, lambda x, w: x.mul_(-2.0).add_(1.0))
        got = _grad_after_change(compiled, seed, lambda x, w: x.mul_(-2.0).add_(1.0))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def _raises_as_eager(fn, run):
    """``run(f, seed)`` raises eager's in-place error for ``fn`` and its compiled form, at
    the first call (a trace) and the replays after it; returns the compiled form."""
    compiled = tg.compile(fn)
    for seed in range(3):
        for f in (fn, compiled):
            with pytest.raises(RuntimeError, match=INPLACE_ERROR):
                run(f, seed)
    return compiled


@pytest.mark.parametrize("name", sorted(SAVES_W))
def test_changing_an_input_eager_saves_raises_as_eager(name):
    fn = SAVES_W[name]
    # before the fix: a gradient from the changed w
    compiled = _raises_as_eager(fn, lambda f, seed: _grad_after_change(
        f, seed, lambda x, w: w.add_(1.0)))
    for seed in range(3):   # unchanged, both give the same gradient
        np.testing.assert_allclose(_grad_after_change(compiled, seed, lambda x, w: None),
                                   _grad_after_change(fn, seed, lambda x, w: None),
                                   rtol=1e-5, atol=1e-6)


def test_changing_a_captured_tensor_eager_saves_raises_as_eager():
    w = tg.tensor(np.random.RandomState(0).randn(5, 3).astype(np.float32))
    compiled = tg.compile(lambda x: (x @ w).sum())
    for _ in range(2):
        x, _ = _inputs(1)
        loss = compiled(x)
        with tg.no_grad():
            w.mul_(2.0)
        with pytest.raises(RuntimeError, match=INPLACE_ERROR):
            loss.backward()


def test_inputs_changed_after_backward_are_free_to_change():
    compiled = tg.compile(lambda x, w: x * w)
    x, w = _inputs(0)
    compiled(x, w).sum().backward()
    with tg.no_grad():
        w.add_(1.0)   # after backward: nothing reads it any more
    np.testing.assert_allclose(x.grad.numpy(), w.numpy() - 1.0, rtol=1e-6)


# results changed in place before backward: eager mode raises where a rule saved the
# result itself (exp, sigmoid, tanh save their output), else the change is harmless
RESULT_SAVED = {
    "exp": lambda x: tg.exp(x),
    "sigmoid": lambda x: tg.sigmoid(x),
    "tanh(x) and x*2": lambda x: (tg.tanh(x), x * 2),
}
RESULT_NOT_SAVED = {
    "softmax": lambda x: F.softmax(x, 1),
    "x*2": lambda x: x * 2,
    "log_softmax and x+1": lambda x: (F.log_softmax(x, 1), x + 1),
}
WEIGHTS = np.random.RandomState(5).randn(4, 5).astype(np.float32)


def _grad_after_result_change(fn, seed: int):
    x, _ = _inputs(seed)
    out = fn(x)
    outs = out if isinstance(out, tuple) else (out,)
    with tg.no_grad():
        outs[0].mul_(2.0)
    sum(((o * tg.tensor(WEIGHTS)).sum() for o in outs), tg.tensor(0.0)).backward()
    return x.grad.numpy()


@pytest.mark.parametrize("name", sorted(RESULT_SAVED))
def test_changing_a_result_eager_saves_raises_as_eager(name):
    # before the fix: a gradient from the doubled result
    _raises_as_eager(RESULT_SAVED[name], _grad_after_result_change)


@pytest.mark.parametrize("name", sorted(RESULT_NOT_SAVED))
def test_changing_a_result_eager_does_not_save_keeps_backward_exact(name):
    fn = RESULT_NOT_SAVED[name]
    compiled = tg.compile(fn)
    for seed in range(3):
        np.testing.assert_allclose(_grad_after_result_change(compiled, seed),
                                   _grad_after_result_change(fn, seed), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_changing_class_targets_keeps_backward_exact(reduction):
    # the targets are small: the backward recomputes the one-hot rows from a copy of them
    def fn(x, t):
        return F.cross_entropy(x, t, reduction=reduction) * 1.5

    compiled = tg.compile(fn)
    for seed in range(3):
        grads = []
        for f in (fn, compiled):
            x, _ = _inputs(seed)
            t = tg.tensor(TARGET)
            loss = f(x, t)
            with tg.no_grad():
                t.fill_(3)
            (loss * tg.arange(4.0) if reduction == "none" else loss).sum().backward()
            grads.append(x.grad.numpy())
        np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-6)


def test_changing_a_small_input_a_recompute_reads_keeps_backward_exact():
    # x is read by the backward anyway (the mul saves it), so exp(x + b - max) is
    # recomputed from x and b; eager mode saves no b: the call copies it (it is small)
    def fn(x, b):
        return F.softmax(x + b, 1) * x

    compiled = tg.compile(fn)
    for seed in range(3):
        grads = []
        for f in (fn, compiled):
            x, _ = _inputs(seed)
            b = tg.tensor(np.arange(5, dtype=np.float32))
            y = f(x, b)
            with tg.no_grad():
                b.mul_(-3.0)
            (y * tg.tensor(WEIGHTS)).sum().backward()
            grads.append(x.grad.numpy())
        np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-6)
    # and it is still recomputed: the forward saves x and the result, no (4, 5) temp
    x, _ = _inputs(0)
    report = compiled.explain(x, tg.tensor(np.arange(5, dtype=np.float32)))
    big = sorted(o.kind for o in report.forward.outputs if tuple(o.shape) == (4, 5))
    assert big == ["buffer", "input"]
