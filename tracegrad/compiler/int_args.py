"""Python int arguments traced as symbolic ints: a changing int argument (a step counter)
compiles a bounded number of times, not once per value.

NOTE (int arguments): PyTorch's automatic dynamic for ints.  With ``dynamic=None`` an int
argument (positional, keyword, or inside the lists, tuples and dicts the pytree flattens;
never a bool) that changed between two calls with the same argument structure is traced
from then on as a ``SymArg``; ``dynamic=True`` does so from the first call, ``dynamic=False``
never (one program per value).  Values 0 and 1 stay specialised, as sizes do.  The
signature then holds a placeholder, not the value (``symbolic_treedef``), and the trace
runs on a ``SymArg``: a number that knows its value at the trace and, as a closure over
the call's int values, how to compute itself at any later call.

- Arithmetic (``+ - * / // % **``, ``abs``, ``-``) gives SymArgs: no guard, since the
  closure computes the same Python expression at every call.
- A comparison or ``bool()`` (a branch, ``min``/``max``) records a guard: the closure's
  outcome must be the traced one.  The guards join the entry's own (``Entry.guards``), so
  a call that breaks one takes an earlier trace of the signature whose guards hold
  (NOTE (programs per signature), function.py) or traces again: a branch on
  ``(i + 1) % k == 0`` costs two programs, not one per value.
- Used as a tensor operand (``x * i``, ``lr / (i + 1) * g``) it becomes a runtime scalar
  input (``Tracer.runtime_scalar``, like an optimizer's lr): never a constant in the code.
- Any other read (``int()``, ``__index__``: a slice bound, ``arange(n)``, ``zeros(n)``, a
  list index; ``float()``, hashing, formatting) is an ESCAPE: the ints it was made of are
  specialised (an equality guard each), so the entry serves that value only.  The same
  holds where a SymArg is found in the traced graph (a shape, a constant) or in the
  returned values after the trace: a value read there is no runtime input.  An escape
  costs one program per value, as without symbolic ints, and is never a wrong answer.

Measured (tests/test_fuzz4_int_argument_retrace.py, 2026-12-02): gradient accumulation
over 12 steps, ``step(x, y, i)`` with ``if (i + 1) % 3 == 0: opt.step()``, compiled 12
programs, one per ``i``; now 5 (i=0; i=1, specialised; then the branch's two outcomes and
SGD's first update, which makes its momentum buffer), and still 5 over 30 steps.  The
same step with a bool argument for the branch compiles 4: the int costs the one value it
specialises.  ``x * i`` over 10 values: 2 programs (the first value, then ``i``).  Not
followed: an int used as a size (``x[:n]``, ``arange(n)``) is specialised per value; the
symbolic dims (``dynamic.SymbolicGroup``) are not tried on a signature with a symbolic int;
ints that took at most 4 values become values again when a tensor's shape changes, so the
dims keep their symbol (NOTE (dims before constant ints) in int_signature.py).

A SymArg is no ``int`` (NOTE (no int underneath) in symint.py): C code cannot read its
value without calling one of its methods.  Its recorder is open while the entry is
traced and planned; afterwards (kept in a module attribute) it acts as the plain value.

NOTE (type of a followed value): ``isinstance(n, int)`` holds (``__class__``), but
``type(n)`` is SymArg, and no method of it runs: ``type(n) is int``, ``type(n) == int``
or ``type(n).__name__`` took the other branch than eager at every value.  Python cannot
hook ``type()``, so the access-path recorder (which already watches the user's frames
while the trace runs) reads the bytecode for calls of the builtin ``type``
(read_chains.py): on a chain (``type(n)``, ``type(cfg["n"])``) whose value is a SymArg,
or on any other use of ``type`` (``type(n + 1)``, ``map(type, ns)``) while symbolic
ints are traced, the trace
raises a TraceError at its end and runs again on the ints' values, which are then
specialised (a program per value, as ``dynamic=False``).  A chain whose value is a
plain object costs nothing more; a symbolic size (SymInt) only escapes there (its
group retraces each size).  Not seen: ``type()`` called in library code (site-packages,
the standard library) or through another name (``builtins.type``, a module's alias).
"""
from __future__ import annotations

import math
import operator
import sys
import threading
from pathlib import Path

import numpy as np

from .errors import TraceError
from .followed import Followed, opened

_PACKAGE_DIRS = (str(Path(__file__).resolve().parents[1]),
                 str(Path(__file__).resolve().parents[2] / "codegen"),
                 str(Path(__file__).resolve().parents[2] / "runtime"))
SYMINT = "symint"   # a treedef node: a symbolic int argument (its position among the ints)
MAX_ESCAPES_KEPT = 4
_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
        ">": operator.gt, ">=": operator.ge}
_NEGATED = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_CONSTANTS = (int, float, np.integer, np.floating)


class Recorder:
    """What one trace did with its symbolic ints: ``guards`` (text -> check of the call's
    int values) and ``specialised`` (position -> value, the ints an escape read)."""

    floats = False   # a float arguments' recorder (float_args.py) says True

    def __init__(self, values: tuple, cell, positions=()) -> None:
        self.active = True
        self.values = values
        self.positions = tuple(positions)   # the ints traced as SymArgs
        self.cell = cell   # the compiled function's values of the current call (per thread)
        self.guards: dict[str, tuple] = {}   # text -> (check, positions it reads)
        self.specialised: dict[int, int] = {}
        self.escapes: list[str] = []
        self.inputs: dict = {}   # (id(SymArg), dtype) -> its runtime input's node
        self.escape_count = 0    # escapes so far (float_args.check_scalar_read)
        opened(self)

    def guard(self, text: str, check, args: frozenset) -> None:
        if self.active and text not in self.guards:
            self.guards[text] = (check, args)

    def escape(self, value: "SymArg", what: str) -> None:
        if not self.active:
            return
        self.escape_count += 1
        for k in value.args:
            self.specialised[k] = self.values[k]
        line = f"{what} of {value.text} at {_caller()}"
        if len(self.escapes) < MAX_ESCAPES_KEPT and line not in self.escapes:
            self.escapes.append(line)


    def escape_all(self, what: str) -> str | None:
        """A read no method saw (``type(n + 1)``): the trace may have gone another way
        than on ints, so it runs again on their values (the reason why)."""
        if not (self.active and self.positions):
            return None
        self.specialised.update((k, self.values[k]) for k in self.positions)
        return f"{what}, which may be a symbolic int argument"


def _caller() -> str:
    """The innermost frame outside tracegrad and NumPy (the user's line that escaped)."""
    frame = sys._getframe(3)
    while frame is not None and (frame.f_code.co_filename.startswith(_PACKAGE_DIRS)
                                 or "site-packages" in frame.f_code.co_filename):
        frame = frame.f_back
    return "<tracegrad>" if frame is None else f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _operand(x):
    """``(closure, text, positions, value)`` of an operand, or None for a non-number."""
    if type(x) is SymArg:
        return x.fn, x.text, x.args, x._v
    if isinstance(x, _CONSTANTS) and not isinstance(x, (bool, np.bool_)):
        c = x.item() if isinstance(x, np.generic) else x
        return (lambda values: c), repr(c), frozenset(), c
    if isinstance(x, (bool, np.bool_)):
        c = bool(x)
        return (lambda values: c), repr(c), frozenset(), c
    return None


def _joined(a: "SymArg", b, bargs: frozenset):
    """``(args, rec, others)`` of a SymArg computed from ``a`` and ``b``.  An int
    argument's SymArg and a float argument's have a recorder each (NOTE (float arguments)
    in float_args.py): the int one leads, since its closures index its cell's values (a
    float argument's closure reads its own cell), and the other recorder's positions go in
    ``others`` (an escape reaches them too)."""
    if type(b) is not SymArg:
        return a.args | bargs, a.rec, a.others
    if b.rec is a.rec:
        return a.args | bargs, a.rec, _merged(a.others + b.others)
    main, part = (b, a) if a.rec.floats else (a, b)
    return main.args, main.rec, _merged(main.others + part.others + ((part.rec, part.args),))


def _merged(others: tuple) -> tuple:
    if len(others) < 2:
        return others
    by_rec: dict = {}
    for rec, args in others:
        by_rec[rec] = by_rec.get(rec, frozenset()) | args
    return tuple(by_rec.items())


def _paren(text: str) -> str:
    return f"({text})" if " " in text else text


class SymArg(Followed):
    """An int argument (or a number computed from int arguments) in a trace: its traced
    value ``_v``, ``fn(values)`` giving it at any call, ``text`` naming it, and ``args``,
    the positions of the ints it depends on."""

    __slots__ = ("_v", "fn", "text", "args", "rec", "others")

    def __init__(self, value, fn, text: str, args: frozenset, rec: Recorder,
                 others: tuple = ()) -> None:
        self._v, self.fn, self.text, self.args, self.rec = value, fn, text, args, rec
        self.others = others   # ((recorder, positions), ...) of other recorders it holds

    @property
    def __class__(self):   # NOTE (no int underneath) in symint.py: what isinstance asks
        return type(self._v)

    # ---- followed: arithmetic ----------------------------------------------------------
    def _arith(self, other, symbol: str, op, reflected: bool = False):
        o = _operand(other)
        if o is None:
            return NotImplemented   # a tensor: its reflected method records a runtime input
        ofn, otext, oargs, ov = o
        value = op(ov, self._v) if reflected else op(self._v, ov)
        if not self.rec.active:
            return value
        if type(value) not in (int, float):   # (-2) ** 0.5: a complex no closure follows
            self._escaped(symbol)
            return value if type(other) is not SymArg else (other._escaped(symbol), value)[1]
        sfn = self.fn
        if reflected:
            fn, text = (lambda values: op(ofn(values), sfn(values))), \
                f"{_paren(otext)} {symbol} {_paren(self.text)}"
        else:
            fn, text = (lambda values: op(sfn(values), ofn(values))), \
                f"{_paren(self.text)} {symbol} {_paren(otext)}"
        return SymArg(value, fn, text, *_joined(self, other, oargs))

    def _unary(self, symbol: str, op):
        value = op(self._v)
        if not self.rec.active:
            return value
        sfn = self.fn
        return SymArg(value, lambda values: op(sfn(values)), f"{symbol}({self.text})",
                      self.args, self.rec, self.others)

    def __neg__(self):
        return self._unary("-", operator.neg)

    def __pos__(self):
        return self

    def __abs__(self):
        return self._unary("abs", abs)

    def __trunc__(self):
        return self if type(self._v) is int else self._unary("trunc", math.trunc)

    def __floor__(self):
        return self if type(self._v) is int else self._unary("floor", math.floor)

    def __ceil__(self):
        return self if type(self._v) is int else self._unary("ceil", math.ceil)

    def __round__(self, ndigits=None):
        if ndigits is None:
            return self if type(self._v) is int else self._unary("round", round)
        return round(self._escaped("round()"), ndigits)

    # ---- comparisons: guards -------------------------------------------------------------
    def _compare(self, other, op: str):
        o = _operand(other)
        if o is None:
            return NotImplemented
        ofn, otext, oargs, ov = o
        outcome = _OPS[op](self._v, ov)
        if self.rec.active:
            sfn, cmp = self.fn, _OPS[op]
            args, rec, _ = _joined(self, other, oargs)
            rec.guard(f"{self.text} {op if outcome else _NEGATED[op]} {otext}",
                      lambda values: cmp(sfn(values), ofn(values)) == outcome, args)
        return outcome

    def __bool__(self):
        return bool(self._compare(0, "!="))

    # ---- escapes: the value leaves what a closure follows (the rest: Followed) ---------
    def _escaped(self, what: str):
        self.rec.escape(self, what)
        for rec, args in self.others:
            rec.escape(SymArg(self._v, self.fn, self.text, args, rec), what)
        return self._v

    def __index__(self):
        return operator.index(self._escaped("__index__"))

    def __hash__(self):
        return hash(self._escaped("hash()"))

    def type_taken(self) -> str:
        self._escaped("type()")
        what = self.text if self.rec.floats else f"the symbolic int argument {self.text}"
        return f"type() of {what}"

    def followed_float(self):
        """``float(self)``, still followed (``_size.as_float``: a tensor divided by an int)."""
        return self._unary("float", float)

    # ---- a tensor operand: a runtime input -------------------------------------------------
    def runtime_input(self, tracer, dtype) -> int:
        """The node of a 0-d input of ``dtype`` that holds this value at every call."""
        key = (id(self), np.dtype(dtype))
        node = self.rec.inputs.get(key)
        if node is None and key[1].kind in "iu" and type(self._v) is int:
            # an int32 operand: a value past its range raises eagerly (naming the op), so
            # a call with one traces again rather than failing to fill the input
            info, sfn = np.iinfo(key[1]), self.fn
            if not info.min <= self._v <= info.max:   # (traced again on the value)
                raise TraceError(f"{self.text} = {self._v} is out of {key[1].name}'s range")
            self.rec.guard(f"{self.text} fits {key[1].name}",
                           lambda values: info.min <= sfn(values) <= info.max, self.args)
        if node is None:
            node = tracer.runtime_scalar(CallValue(self.fn, self.rec.cell), dtype)._data.node
            self.rec.inputs[key] = node
            self.rec.inputs[("keep", id(self))] = self   # (the id stays this object's)
        return node


class CallValue:
    """A runtime scalar's reader (``Tracer.runtime_scalar``): the SymArg's value at the
    call, from the calling thread's ints.  Its 0-d array is the thread's own too
    (``holder``, read by ``Entry._input_arrays``): two threads calling one program with
    other ints refilled one shared array (3 wrong results in 1200 calls on 4 threads)."""

    __slots__ = ("fn", "cell", "_local")

    def __init__(self, fn, cell) -> None:
        self.fn, self.cell, self._local = fn, cell, threading.local()

    def __call__(self):
        return self.fn(self.cell.values)

    def holder(self, dtype) -> np.ndarray:
        array = getattr(self._local, "array", None)
        if array is None:
            array = self._local.array = np.zeros((), dtype)
        return array


def _arithmetic(symbol: str, op, reflected: bool = False):
    def method(self, other):
        return self._arith(other, symbol, op, reflected)
    return method


for _name, _symbol, _op in (("add", "+", operator.add), ("sub", "-", operator.sub),
                            ("mul", "*", operator.mul), ("truediv", "/", operator.truediv),
                            ("floordiv", "//", operator.floordiv), ("mod", "%", operator.mod),
                            ("pow", "**", operator.pow)):
    setattr(SymArg, f"__{_name}__", _arithmetic(_symbol, _op))
    setattr(SymArg, f"__r{_name}__", _arithmetic(_symbol, _op, reflected=True))


def _comparison(op: str):
    def method(self, other):
        return self._compare(other, op)
    return method


for _op_text, _dunder in (("==", "__eq__"), ("!=", "__ne__"), ("<", "__lt__"),
                          ("<=", "__le__"), (">", "__gt__"), (">=", "__ge__")):
    setattr(SymArg, _dunder, _comparison(_op_text))


def _bitwise(name: str):
    def method(self, other):
        if _operand(other) is None:
            return NotImplemented
        return getattr(self._escaped(name), name)(other._v if type(other) is SymArg else other)
    return method


for _name in ("__and__", "__or__", "__xor__", "__lshift__", "__rshift__", "__rand__",
              "__ror__", "__rxor__", "__rlshift__", "__rrshift__", "__invert__"):
    setattr(SymArg, _name, _bitwise(_name) if _name != "__invert__" else
            (lambda self: ~self._escaped("~")))
del _name, _symbol, _op, _op_text, _dunder
