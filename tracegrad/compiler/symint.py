"""Symbolic sizes seen by the traced code, and the guards they record (issue 13).

NOTE (guards instead of a retrace): a symbolic group (``dynamic.SymbolicGroup``) serves a
new size ``m`` of ``s0`` without running the user's function again when the trace that
made its program relied on nothing about the size but recorded conditions.  One trace per
fit (the "guard trace") runs with every size that follows ``s0`` held as a ``SymInt``: an
integer that also carries its value as a polynomial in ``s0``.  Arithmetic (``+ - *``, a
power, ``//`` and ``%`` by a constant) gives SymInts; a comparison (``== != < <= > >=``,
``bool()``, ``min``/``max``, a dict lookup's ``==``) records a ``Guard`` (the expression,
the operator, the outcome at the traced size); a use whose result cannot be followed
(``int()``, ``float()``, a true division, formatting, ``len()``) records an ESCAPE, and
a group whose guard trace escaped retraces at every new size as before.

A SymInt is no ``int`` (NOTE (no int underneath)): every use of its value calls one of
its methods, so a use that is not followed is an escape and never a silent read.  A hash
is an escape too (a dict lookup that misses compares with nothing), except where
SILENT_HASHES audited it.  What no method sees is code that inspects the type itself
(``type(n) is int``): the access-path recorder sees the user's calls of ``type`` and
escapes (NOTE (type of a followed value) in int_args.py); in library code the guard
trace may take another path than a plain trace.  Three checks after the guard trace stay as a second line: every size-dependent value of the
traced graph (a node's shape, a view's target, a slice bound, a constant) must be a
SymInt (or a mean's ``1/N`` SymFloat) whose polynomial is the one the fit found there; a
tensor the trace made and the program reads must have had the same values at every
probe size; the function must return no Python value.  ``dynamic.SERVE_ON_GUARDS =
False`` retraces every new size as before.
"""
from __future__ import annotations

import math
import operator
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np

from .followed import Followed, opened

# tracegrad/, codegen/ and runtime/ (installed as one package, in the repo as three folders)
PACKAGE_DIRS = tuple({str(Path(__file__).resolve().parents[1]),
                      str(Path(__file__).resolve().parents[2] / "codegen"),
                      str(Path(__file__).resolve().parents[2] / "runtime")})

MAX_ESCAPES_KEPT = 4


def _norm(coefs) -> tuple:
    """A polynomial's coefficients (lowest power first), without trailing zeros, each an
    ``int`` where it is whole (exact, and cheap to evaluate)."""
    out = [int(c) if Fraction(c).denominator == 1 else Fraction(c) for c in coefs]
    while len(out) > 1 and out[-1] == 0:
        out.pop()
    return tuple(out) or (0,)


def _add(a: tuple, b: tuple, sign: int = 1) -> tuple:
    n = max(len(a), len(b))
    return _norm([(a[k] if k < len(a) else 0) + sign * (b[k] if k < len(b) else 0)
                  for k in range(n)])


def _mul(a: tuple, b: tuple) -> tuple:
    out = [0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i + j] += x * y
    return _norm(out)


def _divide(a: tuple, b: tuple):
    """``a / b`` as a polynomial when ``b`` divides ``a`` exactly, else None."""
    rem, q = [Fraction(c) for c in a], [Fraction(0)] * max(len(a) - len(b) + 1, 1)
    for k in range(len(a) - len(b), -1, -1):
        factor = rem[k + len(b) - 1] / b[-1]
        q[k] = factor
        for j, c in enumerate(b):
            rem[k + j] -= factor * c
    return _norm(q) if not any(rem) else None


def evaluate(coefs: tuple, n: int):
    value = 0
    for c in reversed(coefs):
        value = value * n + c
    return value


def poly_text(coefs: tuple) -> str:
    """``3*s0^2 + 2*s0 - 1``."""
    terms = []
    for k in range(len(coefs) - 1, -1, -1):
        c = coefs[k]
        if c == 0 and (k or terms):
            continue
        sym = "" if k == 0 else "s0" if k == 1 else f"s0^{k}"
        mag = abs(c)
        body = (_number(mag) if not sym else sym if mag == 1 else f"{_number(mag)}*{sym}")
        terms.append(("-" if c < 0 else "+", body))
    sign, body = terms[0]
    text = ("-" if sign == "-" else "") + body
    return text + "".join(f" {s} {b}" for s, b in terms[1:])


class Recorder:
    """What one guard trace relied on: ``guards`` (expression, operator, outcome) and
    ``escapes`` (why its sizes cannot be followed).  Closed once the trace ends: a SymInt
    that outlives it (kept in a cache, a module attribute) then acts as a plain int."""

    def __init__(self) -> None:
        self.active = True
        self.guards: dict[tuple, bool] = {}
        self.escapes: list[str] = []
        opened(self)

    def escape(self, what: str) -> None:
        if self.active and len(self.escapes) < MAX_ESCAPES_KEPT:
            self.escapes.append(f"{what} at {_caller()}")
        elif self.active:
            self.escapes.append("")  # counted, not described

    escape_all = escape   # (any escape makes the group retrace at every new size)

    def compare(self, diff: tuple, op: str, outcome: bool) -> None:
        """``diff op 0`` held (``outcome``) at the traced size.  A condition that holds
        for every ``s0 >= 2`` (the group's own range: sizes 0 and 1 are specialised) is
        no guard."""
        if self.active and (diff, op) not in self.guards and not _always(diff, op, outcome):
            self.guards[(diff, op)] = outcome

    def broken(self, n: int) -> str | None:
        """The first recorded guard whose outcome differs at size ``n``, as text; None
        when all hold (O(number of guards))."""
        for (diff, op), outcome in self.guards.items():
            if _holds(diff, op, n) != outcome:
                return guard_text(diff, op, outcome)
        return None

    def texts(self) -> list[str]:
        return [guard_text(d, op, outcome) for (d, op), outcome in self.guards.items()]


_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
        ">": operator.gt, ">=": operator.ge}
_NEGATED = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def _holds(diff: tuple, op, n: int) -> bool:
    if type(op) is tuple:   # ("%", c, cmp, k): (diff % c) cmp k, diff an integer at n
        _, c, cmp, k = op
        value = evaluate(diff, n)
        return Fraction(value).denominator == 1 and _OPS[cmp](int(value) % c, k)
    return _OPS[op](evaluate(diff, n), 0)


def _always(diff: tuple, op: str, outcome: bool) -> bool:
    """Whether ``(diff op 0) == outcome`` for every size ``s0 >= 2`` (then it is no
    guard), for a linear ``diff = a*s0 + b``: an order changes its truth at most once as
    ``s0`` grows (compare at 2 and at infinity), an equality only at the root ``-b/a``."""
    if type(op) is tuple or len(diff) != 2:
        return False
    b, a = diff
    if op in ("==", "!="):
        root = Fraction(-b) / a
        return (root < 2 or root.denominator != 1) and outcome == (op == "!=")
    return _OPS[op](evaluate(diff, 2), 0) == outcome == _OPS[op](a, 0)


def guard_text(diff: tuple, op, outcome: bool) -> str:
    """``s0 >= 100``, ``s0 % 2 == 0``, ``2*s0 - 5 != 0`` (the condition as it held)."""
    if type(op) is tuple:
        _, c, cmp, k = op
        return f"{_paren(poly_text(diff))} % {c} {cmp if outcome else _NEGATED[cmp]} {k}"
    op = op if outcome else _NEGATED[op]
    if len(diff) == 2 and diff[1] in (1, -1):   # s0 - c op 0  ->  s0 op c
        b, a = diff
        op = op if a > 0 else {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        return f"s0 {op} {_number(-b if a > 0 else b)}"
    return f"{poly_text(diff)} {op} 0"


def _number(c) -> str:
    """``50.5`` for Fraction(101, 2) (a float the traced code compared with), ``7/3``
    where no float is exact."""
    c = Fraction(c)
    if c.denominator == 1:
        return str(c.numerator)
    return repr(float(c)) if Fraction(float(c)) == c else str(c)


def _paren(text: str) -> str:
    return text if text == "s0" else f"({text})"


def _caller() -> str:
    """The innermost frame outside tracegrad and NumPy (the user's line that escaped)."""
    frame = sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename.startswith(PACKAGE_DIRS)
                                 or "site-packages" in frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return "<tracegrad>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


# the code whose hash of a size is audited (NOTE at ``SymInt.__hash__``): (file, function)
SILENT_HASHES = frozenset({(str(Path(__file__).with_name("tracer.py")), "_const")})


def _hashed_by_audited_code() -> bool:
    """Whether the code that called the caller (a hash taken by a dict lookup, in C) is
    in SILENT_HASHES."""
    code = sys._getframe(2).f_code
    return (code.co_filename, code.co_name) in SILENT_HASHES


def _poly_of(x):
    """``x`` as polynomial coefficients, or None when it is no integer we follow."""
    if type(x) is SymInt:
        return x.expr
    if type(x) is int or type(x) is bool:
        return (int(x),)
    if isinstance(x, np.integer):
        return (int(x),)
    return None


# numbers an operation with a size may meet whose result no polynomial follows: the value
# goes on as a plain number, and the trace escapes
_OTHER_NUMBERS = (float, complex, Fraction, Decimal, np.floating, np.complexfloating)


def _plain(x):
    """A SymInt or SymFloat as the plain number it stands for (recording nothing)."""
    return x._v if type(x) is SymInt or type(x) is SymFloat else x


class SymInt(Followed):
    """An integer size that also knows itself as a polynomial in ``s0`` (``expr``, lowest
    power first) and records, in ``rec``, what the traced code did with it.

    NOTE (no int underneath): it is not an ``int`` subclass, so no C code can read its
    value without calling one of its methods (an ``int`` subclass is read directly by
    ``float``'s comparisons and arithmetic, ``math.gcd``, ``range``, ``divmod(7, n)``,
    list indexing, ``struct``, ``"%d"``, a dict lookup that misses: each a branch on the
    size that no guard saw).  ``isinstance(n, int)`` still holds (``__class__`` says
    ``int``, which ``isinstance`` consults after the real type), so the library's shape
    code takes it as the size it is; ``type(n) is int`` does not."""

    __slots__ = ("_v", "expr", "rec")

    def __init__(self, value: int, expr: tuple, rec: Recorder) -> None:
        self._v = int(value)
        self.expr = expr
        self.rec = rec

    @property
    def __class__(self):   # NOTE (no int underneath): what ``isinstance`` asks
        return int

    # ---- following: arithmetic gives SymInts -----------------------------------------
    def _make(self, value: int, expr: tuple):
        if len(expr) == 1 or not self.rec.active:
            return int(value)
        return SymInt(value, expr, self.rec)

    def _binary(self, other, op: str, fn, follow):
        """``fn(self, other)`` on plain values; a polynomial via ``follow`` where
        ``other`` is an integer we follow, an escape where it is another number,
        NotImplemented otherwise (the other operand decides, through our methods)."""
        p = _poly_of(other)
        if p is not None:
            return self._make(fn(self._v, _plain(other)), follow(p))
        if isinstance(other, _OTHER_NUMBERS) or type(other) is SymFloat:
            self.rec.escape(f"s0 ({poly_text(self.expr)}) {op} {type(other).__name__}")
            return fn(self._v, _plain(other))
        return NotImplemented

    def __add__(self, other):
        return self._binary(other, "+", operator.add, lambda p: _add(self.expr, p))

    def __radd__(self, other):
        return self._binary(other, "+", lambda a, b: b + a, lambda p: _add(p, self.expr))

    def __sub__(self, other):
        return self._binary(other, "-", operator.sub, lambda p: _add(self.expr, p, -1))

    def __rsub__(self, other):
        return self._binary(other, "-", lambda a, b: b - a, lambda p: _add(p, self.expr, -1))

    def __mul__(self, other):
        return self._binary(other, "*", operator.mul, lambda p: _mul(self.expr, p))

    def __rmul__(self, other):
        return self._binary(other, "*", lambda a, b: b * a, lambda p: _mul(p, self.expr))

    def __neg__(self):
        return self._make(-self._v, _add((0,), self.expr, -1))

    def __pos__(self):
        return self

    def __invert__(self):   # ~n == -n - 1
        return self._make(~self._v, _add((-1,), self.expr, -1))

    def __abs__(self):
        return self if self >= 0 else -self

    def __pow__(self, other, mod=None):
        if mod is None and type(other) is int and 0 <= other <= 4:
            expr = (1,)
            for _ in range(other):
                expr = _mul(expr, self.expr)
            return self._make(self._v ** other, expr)
        return self._escape_op("**", other, lambda a, b: pow(a, b, _plain(mod)))

    def __rpow__(self, other, mod=None):
        return self._escape_op("**", other, lambda a, b: pow(b, a, _plain(mod)))

    def __floordiv__(self, other):
        return self._divmod_op(other, want="div")

    def __mod__(self, other):
        return self._divmod_op(other, want="mod")

    def __divmod__(self, other):
        return self._divmod_op(other, want="div"), self._divmod_op(other, want="mod")

    def _divmod_op(self, other, want: str):
        p = _poly_of(other)
        symbol_ = "//" if want == "div" else "%"
        plain_fn = operator.floordiv if want == "div" else operator.mod
        if p is None:
            return self._escape_op(symbol_, other, plain_fn)
        value = plain_fn(self._v, _plain(other))
        if len(p) > 1:   # by a size: only an exact quotient (numel // s0) is followed
            q = _divide(self.expr, p)
            if q is None or any(Fraction(c).denominator != 1 for c in q):
                return self._escape_op(symbol_, other, lambda a, b: value)
            return self._make(value, q) if want == "div" else 0
        c = p[0]
        if c == 1:
            return self if want == "div" else 0
        if c <= 0:
            return self._escape_op(symbol_, other, lambda a, b: value)
        # NOTE: the residue is pinned (a guard ``expr % c == r``) as soon as it is taken:
        # code may steer on it in ways no guard sees (``table[n % 3]``, before NOTE (no
        # int underneath)); the quotient (expr - r) / c is then exact
        r = self._v % c
        self.rec.compare(self.expr, ("%", c, "==", r), True)
        if want == "mod":
            return r
        return self._make(value, _norm([Fraction(x) / c for x in _add(self.expr, (r,), -1)]))

    def __rfloordiv__(self, other):
        return self._escape_op("//", other, lambda a, b: b // a)

    def __rmod__(self, other):
        return self._escape_op("%", other, lambda a, b: b % a)

    def __rdivmod__(self, other):
        return self._escape_op("divmod", other, lambda a, b: divmod(b, a))

    def __truediv__(self, other):
        return self._escape_op("/", other, operator.truediv)

    def followed_float(self):
        """``float(self)`` as a SymFloat ``P(s0)``, followed (``_size.as_float``: a
        tensor divided by a size, ``x.sum(0) / x.shape[0]``)."""
        if not self.rec.active:
            return float(self._v)
        return SymFloat(float(self._v), "poly", self.expr, self.rec)

    def __rtruediv__(self, other):
        if (type(other) is float or type(other) is int) and other == 1 and self.rec.active:
            # 1 / P(s0): a mean's 1/N, which the fit knows as FloatForm "recip"
            return SymFloat(1.0 / self._v, "recip", self.expr, self.rec)
        return self._escape_op("/", other, lambda a, b: b / a)

    def _escape_op(self, op: str, other, fn):
        if _poly_of(other) is None and not isinstance(other, _OTHER_NUMBERS) \
                and type(other) is not SymFloat:
            return NotImplemented
        self.rec.escape(f"s0 ({poly_text(self.expr)}) {op} {type(other).__name__}")
        return fn(self._v, _plain(other))

    # ---- comparisons: guards --------------------------------------------------------
    def _compare(self, other, op: str):
        p = _poly_of(other)
        theirs = _plain(other)
        if p is None and isinstance(other, (float, np.floating, Fraction)) \
                and math.isfinite(other):
            # NOTE: exact: ``n > 50.5`` is ``n - 101/2 > 0``, a guard like any other
            p = (Fraction(other),)
        if p is None:
            if isinstance(other, (float, np.floating)):   # nan or an infinity: the same
                return _OPS[op](self._v, other)           # outcome at every size
            if isinstance(other, _OTHER_NUMBERS) or type(other) is SymFloat:
                self.rec.escape(f"s0 ({poly_text(self.expr)}) compared with a "
                                f"{type(other).__name__}")
                return _OPS[op](self._v, _plain(other))
            return NotImplemented
        outcome = _OPS[op](self._v, theirs)
        diff = _add(self.expr, p, -1)
        if len(diff) > 1:   # a difference that is a constant holds at every size
            self.rec.compare(diff, op, outcome)
        return outcome

    def __bool__(self):
        return bool(self._compare(0, "!="))

    def __hash__(self):
        # NOTE: a dict or set lookup that finds no equal key compares with nothing, so
        # its outcome (``{55: a}.get(n)``) would be recorded nowhere: the hash is an
        # escape, except in SILENT_HASHES: the tracer's table of constants, whose hit or
        # miss decides only which node a constant shares, never its value
        if _hashed_by_audited_code():
            return hash(self._v)
        return hash(self._escaped("hash()"))

    # ---- the identity of an integer: still followed --------------------------------
    def __round__(self, ndigits=None):
        if ndigits is None or _poly_of(ndigits) is not None and ndigits >= 0:
            return self
        return round(self._escaped("round()"), ndigits)

    def __trunc__(self):
        return self

    def __floor__(self):
        return self

    def __ceil__(self):
        return self

    @property
    def real(self):
        return self

    @property
    def numerator(self):
        return self

    @property
    def imag(self):
        return 0

    @property
    def denominator(self):
        return 1

    def conjugate(self):
        return self

    # ---- escapes: the value leaves what the guards can follow ---------------------
    def _escaped(self, what: str) -> int:
        self.rec.escape(f"{what} of s0 ({poly_text(self.expr)})")
        return self._v

    def __index__(self):
        return self._escaped("__index__")


class SymFloat(Followed):
    """``1 / P(s0)`` (``kind`` "recip"; a mean's 1/N) as the traced code made it: passed on
    as it is (a tensor op's scalar) it stays followed; any other use (arithmetic, a
    comparison, formatting, a C function reading it) is an escape, and the plain float
    goes on.  Not a ``float`` subclass, for the reason of NOTE (no int underneath)."""

    __slots__ = ("_v", "kind", "expr", "rec")

    def __init__(self, value: float, kind: str, expr: tuple, rec: Recorder) -> None:
        self._v = float(value)
        self.kind, self.expr, self.rec = kind, expr, rec

    @property
    def __class__(self):   # NOTE (no int underneath)
        return float

    def __eq__(self, other):
        if type(other) is SymFloat and (other.kind, other.expr) == (self.kind, self.expr):
            return True   # (the tracer's table of constants finds the same one again)
        return self._escaped("==") == _plain(other)

    def __hash__(self):
        if _hashed_by_audited_code():
            return hash(self._v)
        return hash(self._escaped("hash()"))

    def _escaped(self, what: str) -> float:
        self.rec.escape(f"{what} of {self.kind} {poly_text(self.expr)}")
        return self._v


def _escaping(name: str):
    """A SymFloat method whose result the guards cannot follow."""
    fn = getattr(float, name)

    def method(self, *args):
        return fn(self._escaped(name), *map(_plain, args))
    method.__name__ = name
    return method


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
              "__truediv__", "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__",
              "__rmod__", "__pow__", "__rpow__", "__divmod__", "__rdivmod__", "__neg__",
              "__pos__", "__abs__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__",
              "__bool__", "__int__", "__float__", "__round__", "__trunc__", "__floor__",
              "__ceil__", "__format__", "__reduce__", "__complex__"):
    if hasattr(float, _name):
        setattr(SymFloat, _name, _escaping(_name))
del _name


def _bitwise(name: str):
    """A bitwise operator: its result is followed no further (an escape)."""
    fn = getattr(int, name)

    def method(self, other):
        if _poly_of(other) is None:
            return NotImplemented
        self.rec.escape(f"s0 ({poly_text(self.expr)}) {name}")
        return fn(self._v, _plain(other))
    method.__name__ = name
    return method


for _name in ("__and__", "__or__", "__xor__", "__lshift__", "__rshift__", "__rand__",
              "__ror__", "__rxor__", "__rlshift__", "__rrshift__"):
    setattr(SymInt, _name, _bitwise(_name))
del _name


_DUNDER = {"==": "__eq__", "!=": "__ne__", "<": "__lt__", "<=": "__le__", ">": "__gt__",
           ">=": "__ge__"}


def _comparison(op: str):
    def method(self, other):
        return self._compare(other, op)
    method.__name__ = _DUNDER[op]
    return method


for _op in _DUNDER:
    setattr(SymInt, _DUNDER[_op], _comparison(_op))
del _op


def symbol(value: int, rec: Recorder) -> SymInt:
    """``s0`` itself, at its traced value."""
    return SymInt(value, (0, 1), rec)


def is_symbolic(x) -> bool:
    return isinstance(x, SymInt) and len(x.expr) > 1
