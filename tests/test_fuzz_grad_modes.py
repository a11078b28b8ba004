"""Which results of a compiled call require grad, as eagerly: a result computed from a
detached value does not (before: every float result of a call with a backward did), and
a function that enables grad inside returns results that do even when it is called under
no_grad (before: none did, and they had no gradient)."""
import numpy as np
import pytest

import tracegrad as tg
from tracegrad.compiler.errors import TraceError


def _enable_inside(x):
    with tg.enable_grad():
        y = x * 3
    return y, y * 2   # y * 2: under the caller's no_grad again


FUNCTIONS = {
    "a detached result": (lambda x: (x * 2, x.detach() * 3), False),
    "a detached first result": (lambda x: (x.detach() * 3, x * 2), False),
    "enable_grad under no_grad": (_enable_inside, True),
}


def _call(fn, under_no_grad, seed):
    x = tg.tensor(np.random.RandomState(seed).randn(2, 3).astype(np.float32),
                  requires_grad=True)
    if under_no_grad:
        with tg.no_grad():
            outs = fn(x)
    else:
        outs = fn(x)
    flags = [o.requires_grad for o in outs]
    for o in outs:
        if o.requires_grad:
            (o * o).sum().backward()
    return flags, None if x.grad is None else x.grad.numpy()


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_results_require_grad_as_eagerly(name):
    fn, under_no_grad = FUNCTIONS[name]
    compiled = tg.compile(fn)
    for seed in range(3):
        want_flags, want_grad = _call(fn, under_no_grad, seed)
        got_flags, got_grad = _call(compiled, under_no_grad, seed)
        assert got_flags == want_flags
        assert (got_grad is None) == (want_grad is None)
        if want_grad is not None:
            np.testing.assert_allclose(got_grad, want_grad, rtol=1e-6)


def _retained(x):
    h = x * 2
    h.retain_grad()
    return (h * h).sum(), h


def _retained_inside(x):
    h = x * 2
    h.retain_grad()
    (h * h).sum().backward()
    return h.grad


def test_a_returned_retain_grad_tensor_gets_its_grad():
    """Before: the compiled call returned ``h`` with ``.grad`` None after backward (the
    compiled backward computes only the arguments' gradients); now it runs eagerly."""
    x = tg.tensor(np.random.RandomState(0).randn(4).astype(np.float32), requires_grad=True)
    f = tg.compile(_retained)
    for _ in range(2):
        with pytest.warns(RuntimeWarning, match="retain_grad") if _ == 0 else _no_warning():
            loss, h = f(x)
        loss.backward()
        np.testing.assert_allclose(h.grad.numpy(), 4 * x.detach().numpy(), rtol=1e-6)
    with pytest.raises(TraceError, match="retain_grad"):
        tg.compile(_retained, fullgraph=True)(x)


def test_retain_grad_with_the_backward_inside_stays_compiled():
    x = tg.tensor(np.random.RandomState(1).randn(4).astype(np.float32), requires_grad=True)
    f = tg.compile(_retained_inside, fullgraph=True)
    for _ in range(2):
        x.grad = None
        np.testing.assert_allclose(f(x).numpy(), 4 * x.detach().numpy(), rtol=1e-6)


def _no_warning():
    import contextlib
    import warnings
    ctx = contextlib.ExitStack()
    ctx.enter_context(warnings.catch_warnings())
    warnings.simplefilter("error")
    return ctx
