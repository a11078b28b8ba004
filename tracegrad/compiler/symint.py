"""Symbolic sizes seen by the traced code, and the guards they record (issue 13).

NOTE (guards instead of a retrace): a symbolic group (``dynamic.SymbolicGroup``) serves a
new size ``m`` of ``s0`` without running the user's function again when the trace that
made its program relied on nothing about the size but recorded conditions.  One trace per
fit (the "guard trace") runs with every size that follows ``s0`` held as a ``SymInt``: an
``int`` that also carries its value as a polynomial in ``s0``.  Arithmetic (``+ - *``, a
power, ``//`` and ``%`` by a constant) gives SymInts; a comparison (``== != < <= > >=``,
``bool()``, ``min``/``max``, a dict lookup's ``==``) records a ``Guard`` (the expression,
the operator, the outcome at the traced size); a use whose result cannot be followed
(``int()``, ``float()``, a true division, formatting, ``len()``) records an ESCAPE, and
a group whose guard trace escaped retraces at every new size as before.

A SymInt is an ``int`` so that it flows through every library path that checks
``isinstance(d, int)``; the price is that C code reads it as a plain int without asking:
float-first arithmetic and comparisons (``0.5 * n``, ``2.5 < n``), ``range(n)``,
``np.zeros(n)``, a sequence indexed with it, ``"%d" % n`` (NumPy's array conversions do
ask: an escape).  The result of such a use is an ordinary int or float the guards know
nothing of.  Three checks after the guard trace make that harmless where it feeds the
program: every size-dependent value of the traced graph (a node's shape, a view's target,
a slice bound, a constant) must be a SymInt (or a mean's ``1/N`` SymFloat) whose
polynomial is the one the fit found there; a tensor the trace made and the program reads
must have had the same values at every probe size; the function must return no Python
value.  Python control flow on such an untracked value is seen only where it changes the
traced graph between the fit's planned ends (a threshold, ``if 0.5 * n > 30``: the plan
at the top of the range then differs and the range stops below it); one that changes and
changes back inside the range (``if 50.5 < n < 60``) is not seen, and such a size is served
as the fitted program: the known gap (``test_symbolic_guards``, strict xfail).
``dynamic.SERVE_ON_GUARDS = False`` retraces every new size as before.
"""
from __future__ import annotations

import operator
import sys
from fractions import Fraction
from pathlib import Path

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
        body = (str(mag) if not sym else sym if mag == 1 else f"{mag}*{sym}")
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

    def escape(self, what: str) -> None:
        if self.active and len(self.escapes) < MAX_ESCAPES_KEPT:
            self.escapes.append(f"{what} at {_caller()}")
        elif self.active:
            self.escapes.append("")  # counted, not described

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
        return f"s0 {op} {-b if a > 0 else b}"
    return f"{poly_text(diff)} {op} 0"


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


def _poly_of(x):
    """``x`` as polynomial coefficients, or None when it is no integer we follow."""
    if isinstance(x, SymInt):
        return x.expr
    if type(x) is int or type(x) is bool:
        return (int(x),)
    if hasattr(x, "__index__") and not isinstance(x, float) and type(x).__module__ == "numpy":
        return (int(x),)
    return None


class SymInt(int):
    """An integer size that also knows itself as a polynomial in ``s0`` (``expr``, lowest
    power first) and records, in ``rec``, what the traced code did with it."""

    def __new__(cls, value: int, expr: tuple, rec: Recorder):
        self = int.__new__(cls, value)
        self.expr = expr
        self.rec = rec
        return self

    # ---- following: arithmetic gives SymInts -----------------------------------------
    def _make(self, value: int, expr: tuple):
        if len(expr) == 1 or not self.rec.active:
            return int(value)
        return SymInt(value, expr, self.rec)

    def __add__(self, other):
        p = _poly_of(other)
        if p is None:
            return self._escape_op("+", other, int.__add__)
        return self._make(int.__add__(self, other), _add(self.expr, p))

    __radd__ = __add__

    def __sub__(self, other):
        p = _poly_of(other)
        if p is None:
            return self._escape_op("-", other, int.__sub__)
        return self._make(int.__sub__(self, other), _add(self.expr, p, -1))

    def __rsub__(self, other):
        p = _poly_of(other)
        if p is None:
            return self._escape_op("-", other, int.__rsub__)
        return self._make(int.__rsub__(self, other), _add(p, self.expr, -1))

    def __mul__(self, other):
        p = _poly_of(other)
        if p is None:
            return self._escape_op("*", other, int.__mul__)
        return self._make(int.__mul__(self, other), _mul(self.expr, p))

    __rmul__ = __mul__

    def __neg__(self):
        return self._make(-int(self._value()), _add((0,), self.expr, -1))

    def __pos__(self):
        return self

    def __abs__(self):
        return self if self >= 0 else -self

    def __pow__(self, other, mod=None):
        if mod is None and type(other) is int and 0 <= other <= 4:
            expr = (1,)
            for _ in range(other):
                expr = _mul(expr, self.expr)
            return self._make(int.__pow__(self, other), expr)
        return self._escape_op("**", other, lambda a, b: int.__pow__(a, b, mod))

    def __floordiv__(self, other):
        return self._divmod_op(other, want="div")

    def __mod__(self, other):
        return self._divmod_op(other, want="mod")

    def __divmod__(self, other):
        return self._divmod_op(other, want="div"), self._divmod_op(other, want="mod")

    def _divmod_op(self, other, want: str):
        value = (int.__floordiv__ if want == "div" else int.__mod__)(self, other)
        p = _poly_of(other)
        if p is None or value is NotImplemented:
            return self._escape_op("//" if want == "div" else "%", other,
                                   int.__floordiv__ if want == "div" else int.__mod__)
        if len(p) > 1:   # by a size: only an exact quotient (numel // s0) is followed
            q = _divide(self.expr, p)
            if q is None or any(Fraction(c).denominator != 1 for c in q):
                return self._escape_op("//" if want == "div" else "%", other,
                                       lambda a, b: value)
            return self._make(value, q) if want == "div" else 0
        c = p[0]
        if c == 1:
            return self if want == "div" else 0
        if c <= 0:
            return self._escape_op("//" if want == "div" else "%", other, lambda a, b: value)
        # NOTE: the residue is pinned (a guard ``expr % c == r``) as soon as it is taken: C
        # code reads an int without asking (``table[n % 3]``), so a residue handed on
        # could be used where no guard sees it; the quotient (expr - r) / c is then exact
        r = int.__mod__(self, c)
        self.rec.compare(self.expr, ("%", c, "==", r), True)
        if want == "mod":
            return r
        return self._make(value, _norm([Fraction(x) / c for x in _add(self.expr, (r,), -1)]))

    def __rfloordiv__(self, other):
        return self._escape_op("//", other, int.__rfloordiv__)

    def __rmod__(self, other):
        return self._escape_op("%", other, int.__rmod__)

    def __truediv__(self, other):
        return self._escape_op("/", other, int.__truediv__)

    def __rtruediv__(self, other):
        if (type(other) is float or type(other) is int) and other == 1 and self.rec.active:
            # 1 / P(s0): a mean's 1/N, which the fit knows as FloatForm "recip"
            return SymFloat(1.0 / self._value(), "recip", self.expr, self.rec)
        return self._escape_op("/", other, int.__rtruediv__)

    def __rpow__(self, other, mod=None):
        return self._escape_op("**", other, int.__rpow__)

    def _escape_op(self, op: str, other, fn):
        self.rec.escape(f"s0 ({poly_text(self.expr)}) {op} {type(other).__name__}")
        return fn(int(self._value()), other)

    def _value(self) -> int:
        return int.__int__(self)

    # ---- comparisons: guards --------------------------------------------------------
    def _compare(self, other, op: str):
        p = _poly_of(other)
        if p is None:
            if isinstance(other, float):
                self.rec.escape(f"s0 ({poly_text(self.expr)}) compared with a float")
                return _OPS[op](self._value(), other)
            return NotImplemented
        theirs = int.__int__(other) if isinstance(other, int) else int(other)
        outcome = _OPS[op](self._value(), theirs)
        diff = _add(self.expr, p, -1)
        if len(diff) > 1:   # a difference that is a constant holds at every size
            self.rec.compare(diff, op, outcome)
        return outcome

    def __bool__(self):
        return bool(self._compare(0, "!="))

    def __hash__(self):
        # NOTE: a dict lookup that finds an equal key compares with ``==``: a guard
        return int.__hash__(self)

    # ---- escapes: the value leaves what the guards can follow ---------------------
    def _escaped(self, what: str) -> int:
        self.rec.escape(f"{what} of s0 ({poly_text(self.expr)})")
        return self._value()

    def __int__(self):
        return self._escaped("int()")

    def __index__(self):
        return self._escaped("__index__")

    def __float__(self):
        return float(self._escaped("float()"))

    def __complex__(self):
        return complex(self._escaped("complex()"))

    def __round__(self, ndigits=None):
        return round(self._escaped("round()"), ndigits)

    def __trunc__(self):
        return self._escaped("math.trunc()")

    def __floor__(self):
        return self._escaped("math.floor()")

    def __ceil__(self):
        return self._escaped("math.ceil()")

    def __format__(self, spec):
        return format(self._escaped("formatting"), spec)

    def __repr__(self):
        return repr(self._escaped("repr()"))

    __str__ = __repr__

    def __reduce__(self):
        return (int, (self._escaped("pickling"),))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __invert__(self):
        return ~self._escaped("~")


class SymFloat(float):
    """``1 / P(s0)`` (``kind`` "recip"; a mean's 1/N) as the traced code made it: passed on
    as it is (a tensor op's scalar) it stays followed; any other use (arithmetic, a
    comparison, formatting) is an escape, and the plain float goes on."""

    def __new__(cls, value: float, kind: str, expr: tuple, rec: Recorder):
        self = float.__new__(cls, value)
        self.kind, self.expr, self.rec = kind, expr, rec
        return self

    def __eq__(self, other):
        if isinstance(other, SymFloat) and (other.kind, other.expr) == (self.kind, self.expr):
            return True   # (the tracer's table of constants finds the same one again)
        return float.__eq__(self._escaped("=="), other)

    def __hash__(self):
        return float.__hash__(self)

    def _escaped(self, what: str) -> float:
        self.rec.escape(f"{what} of {self.kind} {poly_text(self.expr)}")
        return float.__float__(self)

    def __repr__(self):
        return repr(self._escaped("repr()"))

    __str__ = __repr__

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


def _escaping(name: str):
    """A SymFloat method whose result the guards cannot follow."""
    fn = getattr(float, name)

    def method(self, *args):
        return fn(self._escaped(name), *args)
    method.__name__ = name
    return method


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
              "__truediv__", "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__",
              "__rmod__", "__pow__", "__rpow__", "__divmod__", "__rdivmod__", "__neg__",
              "__pos__", "__abs__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__",
              "__bool__", "__int__", "__float__", "__round__", "__trunc__", "__floor__",
              "__ceil__", "__format__", "__reduce__", "as_integer_ratio", "is_integer",
              "hex", "conjugate"):
    if hasattr(float, _name):
        setattr(SymFloat, _name, _escaping(_name))
del _name


def _bitwise(name: str):
    """A bitwise operator: its result is followed no further (an escape)."""
    fn = getattr(int, name)

    def method(self, other):
        self.rec.escape(f"s0 ({poly_text(self.expr)}) {name}")
        return fn(self._value(), other)
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
