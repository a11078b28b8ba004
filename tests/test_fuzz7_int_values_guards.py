"""Fuzz 7 regressions: with dynamic=None an int argument that changed becomes symbolic,
and when a tensor's shape then changes the ints are values again (NOTE (dims before
constant ints)): the call looks its entry up a second time, by the ints' values. That
entry's guards (a config dict, a global, a module attribute read by the function) were
never checked there, so a call back at the first shape replayed state read at its trace:
x * cfg["eps"] gave 1e-5 after cfg["eps"] = 0.1 (found by a fuzz7 probe of an nn.Module
compiled with its attributes edited between calls)."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn as nn

SCALE = 1.0


def _calls(compiled, change):
    """Shape (2, 4) with n=2, then (3, 4) with n=3, then the change, then (2, 4), n=2."""
    compiled(tg.ones(2, 4), 2)
    compiled(tg.ones(3, 4), 3)
    change()
    return compiled(tg.ones(2, 4), 2)


def test_dict_value_read_after_the_ints_became_values_again():
    cfg = {"eps": 1e-5}
    got = _calls(tg.compile(lambda x, n: x * cfg["eps"]), lambda: cfg.update(eps=0.1))
    np.testing.assert_array_equal(got.numpy(), np.full((2, 4), 0.1, np.float32))


def test_global_read_after_the_ints_became_values_again():
    def fn(x, n):
        return x * SCALE + n

    def change():
        global SCALE
        SCALE = -3.0
    try:
        got = _calls(tg.compile(fn), change)
    finally:
        globals()["SCALE"] = 1.0
    np.testing.assert_array_equal(got.numpy(), np.full((2, 4), -1.0, np.float32))


@pytest.mark.parametrize("what", ["attribute", "weight"])
def test_module_state_read_after_the_ints_became_values_again(what):
    tg.manual_seed(0)

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.scale = nn.Linear(4, 4), 2.0

        def forward(self, x, n):
            return self.lin(x) * self.scale + n

    m = Scaled()

    def change():
        if what == "attribute":
            m.scale = 0.5
        else:
            with tg.no_grad():
                m.lin.weight.mul_(0.9)
    with tg.no_grad():
        got = _calls(tg.compile(m), change)
        want = m(tg.ones(2, 4), 2)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
