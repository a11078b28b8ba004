"""NOTE (no collector while compiling) in compiler/entry.py: Python's cyclic collector is
paused while a new signature traces and compiles, and left as it was found afterwards,
whatever the compile ends in."""
import gc
import warnings

import numpy as np
import pytest

import tracegrad as torch


def _probe(seen: list):
    def f(x):
        seen.append(gc.isenabled())
        return (x * 2).sum()
    return f


def test_the_collector_is_paused_during_a_compile_and_back_after():
    assert gc.isenabled()
    seen: list = []
    c = torch.compile(_probe(seen))
    x = torch.ones(5)
    assert float(c(x)) == 10.0
    assert seen == [False] and gc.isenabled()
    c(x)   # a replay runs no Python of the function
    assert seen == [False] and gc.isenabled()


def test_a_collector_the_user_turned_off_stays_off():
    gc.disable()
    try:
        seen: list = []
        torch.compile(_probe(seen))(torch.ones(3))
        assert seen == [False] and not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_comes_back_after_a_failed_trace():
    def data_dependent(x):
        if float(x.sum()) > 0:   # .item() in a trace: falls back to eager
            return x * 2
        return x

    c = torch.compile(data_dependent)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(c(torch.ones(2)).numpy(), [2.0, 2.0])
    assert gc.isenabled()
    with pytest.raises(Exception):
        torch.compile(data_dependent, fullgraph=True)(torch.ones(2))
    assert gc.isenabled()
