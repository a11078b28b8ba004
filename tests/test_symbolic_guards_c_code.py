"""Sizes read by C code (NOTE (guards instead of a retrace) in tracegrad/compiler/symint.py):
a branch on a value that C computed from a symbolic size, taken one way at the traced
sizes and the other way inside the range the fit serves (here: at 55), must never be
served from the guards with the wrong branch.  Each case is one way Python or a library
reads an integer without asking it (before: every one of them gave the wrong branch)."""
import ctypes
import math
import operator
import struct
from fractions import Fraction

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.compiler import dynamic

WINDOW = 55   # inside the planned range of a fit at 8, 9, 17, 26 (its top is ~1024)
TABLE = [0] * 55 + [1] + [0] * 2000


def _list_index(n):
    return TABLE[n] == 1


def _count_of_range(n):
    return sum(1 for _ in range(n)) == 55


# each: the condition, True at 55 and False at 8, 9, 17, 26 and at the planned range's top
CONDITIONS = {
    "float < n < float": lambda n: 50.5 < n < 60,
    "float == n": lambda n: 55.0 == n,
    "float * n": lambda n: 27 < 0.5 * n < 28,
    "n * float": lambda n: 27 < n * 0.5 < 28,
    "float + n": lambda n: 0.5 + n == 55.5,
    "float - n": lambda n: 60.5 - n == 5.5,
    "float / n": lambda n: 0.0180 < 1.0 / n < 0.0182,
    "float // n": lambda n: 110.0 // n == 2.0 and 120.0 // n == 2.0,
    "float % n": lambda n: 110.5 % n == 0.5,
    "float ** n": lambda n: 1.7 < 1.01 ** n < 1.74,
    "complex * n": lambda n: (1j * n).imag == 55,
    "divmod(int, n)": lambda n: divmod(110, n) == (2, 0),
    "divmod(float, n)": lambda n: divmod(110.0, n) == (2.0, 0.0),
    "int % n": lambda n: 110 % n == 0 and 165 % n == 0,
    "int // n": lambda n: 110 // n == 2 and 111 // n == 2,
    "int ** n": lambda n: 2 ** n == 2 ** 55,
    "pow(float, n)": lambda n: 1.7 < pow(1.01, n) < 1.74,
    "math.log2": lambda n: 5.7 < math.log2(n) < 5.8,
    "math.log": lambda n: 4.0 < math.log(n) < 4.01,
    "math.sqrt": lambda n: 7.4 < math.sqrt(n) < 7.42,
    "math.gcd": lambda n: math.gcd(n, 55) == 55,
    "math.isqrt": lambda n: math.isqrt(n) == 7 and n % 5 == 0,
    "math.comb": lambda n: math.comb(n, 2) == 1485,
    "math.ldexp": lambda n: math.ldexp(1.0, -n) == 2.0 ** -55,
    "math.isclose": lambda n: math.isclose(n, 55),
    "round(float * n)": lambda n: round(0.1 * n) == 6 and n % 11 == 0,
    "abs(int - n)": lambda n: abs(55 - n) < 1,
    "n.bit_length()": lambda n: n.bit_length() == 6 and n % 11 == 0,
    "n.to_bytes": lambda n: n.to_bytes(2, "little") == (55).to_bytes(2, "little"),
    "operator.index": lambda n: operator.index(n) == 55,
    "range(n)": _count_of_range,
    "len(range(n))": lambda n: len(range(n)) == 55,
    "a list indexed by n": _list_index,
    "a list repeated n times": lambda n: len([0] * n) == 55,
    "a dict lookup that misses": lambda n: {55: True}.get(n, False),
    "a set membership that misses": lambda n: n in {55, 56},
    "np.float32 < n": lambda n: np.float32(50.5) < n < np.float32(60),
    "np.float64 * n": lambda n: 27 < np.float64(0.5) * n < 28,
    "np.int64(n)": lambda n: int(np.int64(n)) == 55,
    "np.zeros(n)": lambda n: np.zeros(n).size == 55,
    "np.sqrt(n)": lambda n: 7.4 < float(np.sqrt(n)) < 7.42,
    "struct.pack": lambda n: struct.pack("<i", n) == struct.pack("<i", 55),
    "ctypes.c_int": lambda n: ctypes.c_int(n).value == 55,
    "%d formatting": lambda n: "%d" % n == "55",
    "f-string": lambda n: f"{n}" == "55",
    "Fraction(n)": lambda n: Fraction(n, 2) == Fraction(55, 2),
    "float(n)": lambda n: float(n) == 55.0,
    "int(n)": lambda n: int(n) == 55,
    "str(n)": lambda n: str(n) == "55",
    "hash(n)": lambda n: hash(n) == hash(55),
    "math.floor(float * n)": lambda n: math.floor(0.1 * n) == 5 and n % 11 == 0,
    "a mean's 1/n through math.sqrt": lambda n: math.isclose(math.sqrt(1 / n),
                                                            math.sqrt(1 / 55)),
    "a mean's 1/n through struct": lambda n: struct.pack("<d", 1 / n) == struct.pack(
        "<d", 1 / 55),
}


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_a_branch_on_a_size_read_by_c_code_is_never_served_wrong(name):
    condition = CONDITIONS[name]
    assert condition(WINDOW) and not any(condition(m) for m in (8, 9, 17, 26, 1031))

    def fn(x):
        return x * 2 if condition(x.shape[0]) else x * 3
    c = torch.compile(fn, dynamic=True)
    for n in (8, 9, WINDOW, 12):
        x = torch.randn(n, 2)
        np.testing.assert_allclose(c(x).numpy(), fn(x).numpy(), rtol=1e-6,
                                   err_msg=f"{name} at s0={n}")


def test_each_case_would_be_served_wrong_if_the_guard_trace_missed_it(monkeypatch):
    """The cases above test something: with every size served from the first fit
    (the guards ignored), the branch at 55 is the wrong one."""
    condition = CONDITIONS["float < n < float"]

    def fn(x):
        return x * 2 if condition(x.shape[0]) else x * 3
    monkeypatch.setattr(dynamic._Fit, "without_retrace",
                        lambda self, n: self.instance(self.entry, n))
    c = torch.compile(fn, dynamic=True)
    for n in (8, 9):
        c(torch.randn(n, 2))
    x = torch.randn(WINDOW, 2)
    assert not np.allclose(c(x).numpy(), fn(x).numpy())


def test_a_size_as_a_tensor_op_s_scalar_hashes_silently_and_is_served():
    """The tracer's table of constants hashes the size (SILENT_HASHES in symint.py): no
    escape there, so ``x * n + n`` is served on its guards; the user's own hash of it is
    an escape (the cases above)."""
    def scaled(x):
        n = x.shape[0]
        return x * n + n
    c = torch.compile(scaled, dynamic=True)
    for n in (8, 9, 30, 55):
        x = torch.randn(n, 2)
        np.testing.assert_allclose(c(x).numpy(), scaled(x).numpy(), rtol=1e-6)
    (group,) = c._groups.values()
    assert group.fits[0].guarded.why_not is None, group.fits[0].guarded.why_not
    assert group.served_without_retrace == 3


def test_a_size_where_the_fit_found_a_constant_retraces_and_says_where():
    """``n // 100`` is 0 at every probe size, a SymInt in the guard trace: that trace
    cannot serve (each size retraces, correct at 108 and 208).  Before, describing the
    disagreement read the SymInt with ``int.__int__`` (a TypeError once SymInt stopped
    being an int) and the function was not symbolic at all."""
    def hundreds(x):
        return x * (x.shape[0] // 100) + 1
    c = torch.compile(hundreds, dynamic=True)
    for n in (8, 9, 30, 108, 208, 55):
        x = torch.randn(n, 2)
        np.testing.assert_allclose(c(x).numpy(), hundreds(x).numpy(), err_msg=f"s0={n}")
    assert "in the trace, the constant 0 in the fit" in c.cache_info().symbolic[0]
