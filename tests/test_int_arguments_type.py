"""``type()`` of a symbolic int argument (NOTE (type of a followed value) in
tracegrad/compiler/int_args.py): compiled takes eager's branch at every value."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch


def _type_is(x, n):
    return x + 1.0 if type(n) is int else x - 1.0


def _type_equals(x, n):
    return x + 1.0 if type(n) == int else x - 1.0   # noqa: E721 - the case under test


def _type_name(x, n):
    return x * 2.0 if type(n).__name__ == "int" else x * 3.0


def _type_of_an_item(x, cfg):
    return x + 1.0 if type(cfg["n"]) is int else x - 1.0


def _type_of_an_expression(x, n):
    return x + 1.0 if type(n + 1) is int else x - 1.0


def _int_add_unbound(x, n):
    return x * float(int.__add__(n, 1))


def _type_in_a_helper(x, n):
    def scale(m):
        return 2.0 if type(m) is int else 5.0
    return x * scale(n)


def _types_mapped(x, n):
    return x + 1.0 if int in set(map(type, [n, n + 1])) else x - 1.0


@pytest.mark.parametrize("fn", [_type_is, _type_equals, _type_name, _type_of_an_expression,
                                _int_add_unbound, _type_in_a_helper, _types_mapped])
@pytest.mark.parametrize("dynamic", [None, True])
def test_type_of_a_symbolic_int_takes_eagers_branch(fn, dynamic):
    x = torch.tensor(np.arange(4, dtype=np.float32))
    compiled = torch.compile(fn, dynamic=dynamic)
    for n in (3, 5, 7, 9):
        np.testing.assert_array_equal(compiled(x, n).numpy(), fn(x, n).numpy())


def test_type_of_an_int_inside_a_dict_argument():
    x = torch.tensor(np.arange(4, dtype=np.float32))
    compiled = torch.compile(_type_of_an_item)
    for n in (3, 5, 7):
        np.testing.assert_array_equal(compiled(x, {"n": n}).numpy(),
                                      _type_of_an_item(x, {"n": n}).numpy())


def test_type_of_a_tensor_keeps_the_int_symbolic():
    """``type()`` of anything else than a followed number costs nothing: one program
    serves every value of the int after it turned symbolic."""
    def f(x, n):
        return x * n if type(x) is torch.Tensor else x

    x = torch.tensor(np.arange(4, dtype=np.float32))
    compiled = torch.compile(f)
    for n in range(2, 9):
        np.testing.assert_array_equal(compiled(x, n).numpy(), f(x, n).numpy())
    assert compiled.cache_info().misses == 2


def test_explain_of_a_function_that_takes_the_type_of_a_symbolic_int():
    compiled = torch.compile(_type_is, dynamic=True)
    x = torch.tensor(np.arange(4, dtype=np.float32))
    report = compiled.explain(x, 7)   # (the trace on SymArgs raised: traced on the value)
    assert [k.ops for k in report.kernels] == [["ADD"]]
    np.testing.assert_array_equal(compiled(x, 7).numpy(), _type_is(x, 7).numpy())
