"""Tensors a compiled function reads outside its arguments, rebound or reshaped between
calls: a global or closure variable bound to a new tensor replayed the program on the old
one (a wrong answer, no warning); a parameter given data of another shape or dtype
(``p.data = ...``, ``model.double()``) raised "input in1: expected float32[2, 3]" where
eager works. Both now retrace (compiler/python_guards.py, Entry.captured_changed)."""
from __future__ import annotations

import pytest

import tracegrad as torch
from tracegrad import nn

SCALE = torch.ones(3)


def _times_global_scale(x):
    return (x * SCALE).sum()


def test_a_rebound_global_tensor_is_read_again():
    global SCALE
    f = torch.compile(_times_global_scale)
    x = torch.arange(3.0)
    try:
        assert float(f(x)) == 3.0
        SCALE = torch.full((3,), 2.0)
        assert float(f(x)) == float(_times_global_scale(x)) == 6.0
        assert float(f(x)) == 6.0 and f.cache_info().misses == 2
    finally:
        SCALE = torch.ones(3)


def test_a_rebound_closure_tensor_is_read_again():
    w = torch.ones(3)

    def f(x):
        return (x * w).sum()
    cf = torch.compile(f)
    x = torch.arange(3.0)
    assert float(cf(x)) == 3.0
    w = torch.full((3,), 3.0)
    assert float(cf(x)) == float(f(x)) == 9.0


def test_a_rebound_global_model_is_run():
    global MODEL
    torch.manual_seed(0)
    MODEL = nn.Linear(3, 2)
    f = torch.compile(lambda x: MODEL(x).sum())
    x = torch.arange(3.0)
    f(x)
    MODEL = nn.Linear(3, 2)
    assert float(f(x)) == pytest.approx(float(MODEL(x).sum()), rel=1e-6)


def test_parameter_data_of_another_shape_retraces():
    m = nn.Linear(3, 2)
    f = torch.compile(lambda x: m(x).sum())
    x = torch.arange(3.0)
    f(x)
    m.weight.data = torch.ones(4, 3)
    m.bias.data = torch.ones(4)
    assert float(f(x)) == float(m(x).sum()) == 16.0


def test_a_model_cast_to_double_retraces():
    torch.manual_seed(0)
    m = nn.Linear(3, 2)
    f = torch.compile(lambda x: m(x).sum())
    f(torch.arange(3.0))
    m.double()
    x = torch.arange(3.0, dtype=torch.float64)
    got = f(x)
    assert got.dtype == torch.float64
    assert float(got) == pytest.approx(float(m(x).sum()), rel=1e-12)


class _Holder:
    pass


def test_a_rebound_object_attribute_is_read_again():
    h = _Holder()
    h.t = torch.ones(3)
    f = torch.compile(lambda x: (x * h.t).sum())
    x = torch.arange(3.0)
    f(x)
    h.t = torch.full((3,), 5.0)
    assert float(f(x)) == 15.0
