"""``F.one_hot`` inside a compiled function: it checks its class values (eager mode raises
on one out of range), so the call runs eagerly with the usual "cannot be traced" warning
naming one_hot, instead of a TypeError from comparing a traced tensor; values as eager."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn.functional as F
from tracegrad._errors import TraceError


def _targets(y):
    return F.one_hot(y, 4).float() * 2


def test_one_hot_in_a_compiled_function_runs_eagerly_with_a_clear_warning():
    compiled = torch.compile(_targets)
    y = torch.tensor([0, 3, 1])
    # old: "tracing _targets failed ... (TypeError: '<' not supported ...)"
    with pytest.warns(RuntimeWarning, match=r"cannot be traced.*one_hot"):
        got = compiled(y)
    np.testing.assert_array_equal(got.numpy(), _targets(y).numpy())
    with pytest.raises(RuntimeError, match="class values must be in"):
        compiled(torch.tensor([0, 4]))   # out of range: eager's error


def test_one_hot_under_fullgraph_raises_trace_error():
    with pytest.raises(TraceError, match="one_hot"):
        torch.compile(_targets, fullgraph=True)(torch.tensor([1, 2]))
