"""Containers the function iterates are compared by contents at any depth (NOTE
(contents at any depth) in compiler/access_paths.py), and one too large to compare at
every call runs eagerly: compiled equals eager after each in-place edit."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.compiler import access_paths

DEEP = [[[[1.0, 2.0], [3.0]], [[4.0]]]]


def _sum_deep(x):
    s = 0.0
    for a in DEEP:
        for b in a:
            for c in b:
                for d in c:
                    s = s + d
    return x * s


def _check(compiled, fn, x):
    np.testing.assert_array_equal(compiled(x).numpy(), fn(x).numpy())


@pytest.mark.parametrize("edit", [lambda: DEEP[0][0][0].__setitem__(0, 10.0),
                                  lambda: DEEP[0][1][0].append(5.0),
                                  lambda: DEEP[0][0][1].__setitem__(0, 3)])
def test_an_edit_four_levels_down_retraces(edit):
    saved = [[[list(c) for c in b] for b in a] for a in DEEP]
    try:
        x = torch.ones(3)
        compiled = torch.compile(_sum_deep)
        _check(compiled, _sum_deep, x)
        edit()
        _check(compiled, _sum_deep, x)
        assert compiled.cache_info().misses == 2
        _check(compiled, _sum_deep, x)
        assert compiled.cache_info().misses == 2
    finally:
        DEEP[:] = saved


def test_a_list_that_holds_itself():
    table: list = [1.0, [2.0]]
    table.append(table)

    def f(x):
        return x * sum(v for v in table[1]) + x * table[0] + len(table)

    compiled = torch.compile(f)
    x = torch.ones(2)
    _check(compiled, f, x)
    table[1][0] = 7.0
    _check(compiled, f, x)


def test_contents_too_large_to_compare_run_eagerly(monkeypatch):
    monkeypatch.setattr(access_paths, "MAX_FROZEN_ITEMS", 50)
    rows = [[float(i + j) for i in range(10)] for j in range(8)]

    def f(x):
        return x * sum(sum(r) for r in rows)

    compiled = torch.compile(f)
    x = torch.ones(2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _check(compiled, f, x)
    assert any("more than 50 items" in str(w.message) for w in caught)
    rows[7][9] = -100.0
    _check(compiled, f, x)
