"""SymInt (tracegrad/compiler/symint.py): a size that follows s0 through arithmetic,
records a guard at each comparison and an escape where it turns into a plain value."""
import math
from fractions import Fraction

import numpy as np
import pytest

from tracegrad.compiler.symint import Recorder, SymInt, guard_text, symbol


def _s0(n=16):
    rec = Recorder()
    return symbol(n, rec), rec


def test_arithmetic_follows_s0_as_a_polynomial():
    s, rec = _s0(16)
    def value(x):           # the plain value, read without recording anything
        return x._v if isinstance(x, SymInt) else x
    e = (s * 3 + 2) * s - 1 - s
    assert value(e) == 16 * 50 - 1 - 16 and isinstance(e, SymInt)
    assert e.expr == (-1, 1, 3)           # 3*s0^2 + s0 - 1
    assert type(s - s) is int and s - s == 0   # a constant: a plain int
    assert math.prod((s, 4, 2)).expr == (0, 8) and sum([s, s]).expr == (0, 2)
    assert ((2 * s) ** 2).expr == (0, 0, 4)
    assert type((32 * s) // s) is int and (32 * s) // s == 32 and (32 * s) % s == 0
    assert rec.guards == {} and rec.escapes == []


def test_comparisons_record_guards_with_their_outcome():
    s, rec = _s0(16)
    assert s > 10 and not s > 100 and s != 12 and s % 2 == 0 and max(s, 3) is s
    texts = rec.texts()
    assert "s0 > 10" in texts and "s0 <= 100" in texts and "s0 != 12" in texts
    assert "s0 % 2 == 0" in texts and "s0 >= 3" in texts
    assert rec.broken(16) is None and rec.broken(40) is None
    assert rec.broken(12) == "s0 != 12" and rec.broken(8) == "s0 > 10"
    assert rec.broken(17) == "s0 % 2 == 0"
    assert rec.broken(200) == "s0 <= 100"


def test_conditions_true_for_every_size_from_2_are_no_guards():
    s, rec = _s0(5)
    assert s != 1 and s > 0 and s >= 2 and not s == 0 and s + 3 > 1 and bool(s)
    assert rec.guards == {}


def test_floor_division_by_a_constant_guards_the_residue_and_stays_exact():
    s, rec = _s0(16)
    half = s // 2
    assert half._v == 8 and half.expr == (0, Fraction(1, 2))
    assert rec.texts() == ["s0 % 2 == 0"]
    q = (3 * s + 1) // 4    # 49 // 4 = 12, residue 1
    assert q._v == 12 and rec.broken(16) is None
    assert rec.broken(20) is None and rec.broken(18) == "(3*s0 + 1) % 4 == 1"


def test_a_residue_is_pinned_as_soon_as_it_is_taken():
    """C code reads an int without asking (``table[n % 3]``): a residue handed on could
    steer the trace where no guard sees it, so taking it is the guard."""
    s, rec = _s0(16)
    assert not s % 50 == 49 and s % 2 == 0 and (1, 2, 3)[s % 3] == 2
    assert rec.texts() == ["s0 % 50 == 16", "s0 % 2 == 0", "s0 % 3 == 1"]
    assert rec.broken(166) is None
    assert rec.broken(18) == "s0 % 50 == 16" and rec.broken(116) == "s0 % 3 == 1"


@pytest.mark.parametrize("use", [int, float, str, repr, lambda s: f"{s}", lambda s: s / 2,
                                 lambda s: s & 1, lambda s: round(s, -1), lambda s: 2 ** s,
                                 lambda s: s // 2.0, lambda s: 0.5 * s, lambda s: 7 // s,
                                 lambda s: divmod(7, s), lambda s: complex(s), lambda s: s * 1j,
                                 lambda s: hash(s), lambda s: s.bit_length(),
                                 lambda s: np.zeros(s), lambda s: range(s),
                                 lambda s: [0, 1][s % 2:][s // 16], lambda s: "%d" % s])
def test_uses_that_leave_the_polynomials_are_escapes(use):
    s, rec = _s0(16)
    use(s)
    assert rec.escapes, "no escape recorded"


def test_a_recorder_closed_after_the_trace_records_nothing():
    s, rec = _s0(16)
    rec.active = False
    assert s > 3 and int(s) == 16 and type(s + 1) is int
    assert rec.guards == {} and rec.escapes == []


def test_guard_text_reads_as_the_condition_that_held():
    assert guard_text((-100, 1), "<", True) == "s0 < 100"
    assert guard_text((-100, 1), "<", False) == "s0 >= 100"
    assert guard_text((100, -1), ">", True) == "s0 < 100"
    assert guard_text((-5, 2), "==", False) == "2*s0 - 5 != 0"
    assert guard_text((0, 1), ("%", 2, "==", 0), True) == "s0 % 2 == 0"
    assert guard_text((1, 3), ("%", 4, "<", 2), False) == "(3*s0 + 1) % 4 >= 2"


def test_a_float_comparison_is_an_exact_guard_from_either_side():
    """NOTE (no int underneath): ``50.5 < n`` reaches the SymInt (float's comparison
    returns NotImplemented for it) and records ``s0 > 50.5`` exactly."""
    s, rec = _s0(55)
    assert 50.5 < s < 60.0 and not np.float32(2.5) > s and s != float("nan")
    assert s < float("inf") and rec.escapes == []
    assert rec.texts() == ["s0 > 50.5", "s0 < 60", "s0 >= 2.5"]
    assert rec.broken(51) is None and rec.broken(50) == "s0 > 50.5"
    assert rec.broken(60) == "s0 < 60"


def test_an_integer_s_identities_stay_followed():
    s, rec = _s0(16)
    assert round(s) is s and math.floor(s) is s and math.ceil(s) is s
    assert math.trunc(s) is s and s.real is s and s.numerator is s and s.denominator == 1
    assert (~s).expr == (-1, -1) and math.prod([s, 2]).expr == (0, 2)
    assert np.prod(np.array([s, 2], dtype=object)).expr == (0, 2)
    assert isinstance(s, int) and not isinstance(s, bool) and type(s) is SymInt
    assert rec.escapes == []
