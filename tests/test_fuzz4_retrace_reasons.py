"""TRACEGRAD_DEBUG=1 names the guard that broke when a call retraces (issue 13: "why a
call retraced"); it said only "a guard of the traced step failed", then "(signature
changed)" for a signature that had not changed."""
from __future__ import annotations

import pytest

import tracegrad as torch
from tracegrad import nn

from fuzz4_testing import cross_entropy_step
from tracegrad.compiler.debug import set_debug_level


@pytest.fixture
def debug_log(caplog):
    set_debug_level(1)
    try:
        with caplog.at_level("DEBUG", logger="tracegrad"):
            yield caplog
    finally:
        set_debug_level(0)


def test_each_retrace_names_its_guard(debug_log):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.1), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    step = torch.compile(cross_entropy_step(model, opt))
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    step(x, y)
    step(x, y)                       # the first step's .grad fields were None
    model.eval()
    step(x, y)
    model[2] = nn.Linear(8, 3)
    step(x, y)
    step(x, y)                       # the new layer's .grad fields were None
    opt.param_groups[0]["momentum"] = 0.9
    step(x, y)
    log = debug_log.text
    for why in ("a .grad was set or cleared outside the step",
                "Sequential switched train()/eval()",
                "an attribute, parameter, buffer or submodule of Sequential changed",
                "SGD.param_groups changed"):
        assert f"a guard of the traced call failed ({why}" in log, why
    assert "(signature changed)" not in log
    assert log.count("grad_mode=True (a guard failed)") == 5
