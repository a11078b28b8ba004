"""Which results of a compiled call require grad, as eagerly: a result computed from a
detached value does not (before: every float result of a call with a backward did), and
a function that enables grad inside returns results that do even when it is called under
no_grad (before: none did, and they had no gradient)."""
import numpy as np
import pytest

import tracegrad as tg


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
