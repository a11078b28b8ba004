"""A Python number the trace read (a module's attribute, a global, a closure variable) is
a constant of the compiled program; changing it must retrace, never replay the old
constant (before: dropout's p, a LeakyReLU's slope, a scale set by hand, a global and a
closure variable all kept their traced values)."""
import numpy as np

import tracegrad as tg
import tracegrad.nn as nn

X = tg.tensor(np.linspace(-2.0, 2.0, 12, dtype=np.float32).reshape(3, 4))
SCALE = 1.0


class Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = 1.0
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return self.lin(x) * self.scale


def _agree(compiled, eager):
    np.testing.assert_allclose(compiled(X).detach().numpy(), eager(X).detach().numpy(),
                               rtol=1e-6)


def test_changed_module_attributes_retrace():
    scaled, drop, leaky = Scaled(), nn.Dropout(0.0), nn.LeakyReLU(0.1)
    cases = [(scaled, "scale", 2.5), (drop, "p", 1.0), (leaky, "negative_slope", 0.5)]
    for module, name, value in cases:
        compiled = tg.compile(module)
        _agree(compiled, module)
        setattr(module, name, value)
        _agree(compiled, module)


def test_attributes_of_a_submodule_inside_a_compiled_function():
    model = nn.Sequential(nn.Linear(4, 4), nn.LeakyReLU(0.1), nn.Dropout(0.0))
    compiled = tg.compile(lambda x: model(x).sum(1))
    for slope in (0.1, 0.3, 0.3, 0.1):
        model[1].negative_slope = slope
        _agree(compiled, lambda x: model(x).sum(1))


def test_unrelated_attribute_writes_do_not_retrace():
    scaled = Scaled()
    compiled = tg.compile(scaled)
    for k in range(4):
        compiled(X)
        nn.Linear(2, 2).note = k    # another module's attribute: no retrace
        scaled.scale = 1.0          # the same value again: no retrace
    info = compiled.cache_info()
    assert info.misses == 1 and info.hits == 3


def test_changed_global_and_closure_variables_retrace():
    global SCALE
    by_global = tg.compile(lambda x: x * SCALE)
    factor = 2.0
    by_closure = tg.compile(lambda x: x * factor)
    for value in (1.0, 3.0, 3.0, -1.0):
        SCALE = factor = value
        _agree(by_global, lambda x: x * SCALE)
        _agree(by_closure, lambda x: x * factor)
    SCALE = 1.0
