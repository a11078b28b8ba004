"""Symbolic sizes by fitting: one compiled program serves every size of a dimension ``s0``.

NOTE (symbolic programs by fitting): the tracer and the planner work on concrete shapes.
A program that is valid for every size of one dimension is found by planning the same
function at three sizes ``n, n+1, 2n+1`` (or, when those do not fit, three primes above
``n``: the call's size may equal another dimension, and equal constants merge in a kernel
body) and fitting the three programs together: every
integer that differs between them must be one polynomial of degree <= 2 in ``s0`` with
integer coefficients (a buffer's shape, a kernel's outer extent, a view's offset, a
reshape's target, a T x T buffer's element count), every float that differs one of a few
forms of such a polynomial (``P(s0)``, ``1/P(s0)`` as a mean's ``1/N`` or var's
``1/(N-1)``, ``1/sqrt(P(s0))``, float32-rounded where the planner rounded), and everything
else (ops, dtypes, strings, the structure of kernel bodies) must be equal.  A fourth size
(``3n+2``, or a fourth prime) is planned and must equal the fitted program there.

Kernel bodies may depend on the size (a reduction over ``s0``, a stride that is a multiple
of ``s0``, a ``1/N``): ``symbolic_params`` turns each such integer or float into a kernel
parameter the body loads at run time (NOTE (kernel parameters)), so one compiled kernel
serves every size; shapes, extents and buffer sizes are computed by ``instantiate``.

Guards: a call at a new size retraces the function (Python only: no passes, lowering or
LLVM), and the traced graph must equal the fitted one at that size; any difference (a
Python branch on the size, a shape rule that specialised) breaks the guard and that size
gets its own specialised program (or a further fit, ``dynamic.SymbolicGroup``).  What the
guard does not see is the planner's own choices at the new size: its index
simplifications compare value ranges with constants (NOTE (affine div/mod) in
``codegen/loop_ir.py``), and a choice that holds at the four planned sizes is trusted at
the others; a comparison of two polynomials of the size that flips outside them would go
unnoticed.  So each fit also plans its program at size 2 and at a size above every
constant the index arithmetic can hold, and serves sizes outside the planned range only
after planning them too (NOTE (planned range) in ``dynamic.py``).  Tests set
``dynamic.CHECK_INSTANCES``, which plans every size served and compares.
"""
from __future__ import annotations

import dataclasses
import enum
import math
from fractions import Fraction
from typing import Any, Sequence

import numpy as np

from ..codegen.schedule import Program, Storage, _plan_slots


class NotSymbolic(Exception):
    """The programs at several sizes differ in more than functions of the size (the
    message says where)."""


@dataclasses.dataclass(frozen=True)
class Poly:
    """An integer ``coefs[0] + coefs[1] * s0 + coefs[2] * s0**2`` in a fitted program.  A
    coefficient is a Fraction where the fit's sizes keep a residue (``s0 // 2`` is
    ``s0/2`` under the guard ``s0 % 2 == 0``, NOTE (probes that keep the guards) in
    ``dynamic.py``); its value is an integer at every size the fit serves."""
    coefs: tuple

    def at(self, n: int):
        value = sum(c * n ** k for k, c in enumerate(self.coefs))
        # (a Fraction where the size breaks the residue: it then equals no size there)
        return int(value) if Fraction(value).denominator == 1 else value

    def __str__(self) -> str:
        c = self.coefs + (0,) * (3 - len(self.coefs))
        text = (f"{c[2]}*s0^2" if c[2] else "") + (f"{_signed(c[1])}*s0" if c[1] else "")
        text = text.lstrip("+") if text.startswith("+") else text
        return f"{text}{_signed(c[0])}" if c[0] else text or "0"


def _signed(c) -> str:
    return f"{c:+d}" if isinstance(c, int) else f"{'+' if c > 0 else '-'}{abs(c)}"


@dataclasses.dataclass(frozen=True)
class FloatForm:
    """A float that is a function of the size: ``P(s0)``, ``1/P(s0)`` or ``1/sqrt(P(s0))``
    for an integer polynomial ``P``, computed in float64 as the traced Python code does,
    then rounded to float32 where the planner rounded it (a float32 kernel constant)."""
    kind: str          # "poly", "recip" or "rsqrt"
    poly: Poly
    f32: bool
    scalar: type       # float, or the NumPy scalar type the value had

    def at(self, n: int):
        p = float(self.poly.at(n))
        value = p if self.kind == "poly" else 1.0 / p if self.kind == "recip" \
            else 1.0 / math.sqrt(p)
        return self.scalar(float(np.float32(value)) if self.f32 else value)

    def __str__(self) -> str:
        p = f"({self.poly})"
        return {"poly": p, "recip": f"1/{p}", "rsqrt": f"1/sqrt{p}"}[self.kind]


def _poly_fit(sizes: Sequence[int], values: Sequence[int], modulus: int = 1) -> Poly | None:
    """The polynomial of degree < len(sizes) through the points, if its coefficients are
    integers, or fractions whose denominators divide ``modulus ** 2`` where the sizes
    keep a residue modulo ``modulus`` (exact arithmetic: Gaussian elimination over
    Fractions)."""
    k = len(sizes)
    rows = [[Fraction(x) ** j for j in range(k)] + [Fraction(y)] for x, y in zip(sizes, values)]
    for col in range(k):
        pivot = next(r for r in range(col, k) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(k):
            if r != col and rows[r][col] != 0:
                f = rows[r][col] / rows[col][col]
                rows[r] = [a - f * b for a, b in zip(rows[r], rows[col])]
    coefs = [rows[j][k] / rows[j][j] for j in range(k)]
    if any(modulus ** 2 % c.denominator for c in coefs):
        return None
    out = [int(c) if c.denominator == 1 else c for c in coefs]
    while len(out) > 1 and out[-1] == 0:
        out.pop()
    return Poly(tuple(out))


def _float_fit(sizes: Sequence[int], values: Sequence) -> FloatForm | None:
    """The first form ``FloatForm`` knows that gives ``values`` exactly at ``sizes``."""
    scalar = type(values[0])
    floats = [float(v) for v in values]
    if not all(math.isfinite(v) and v != 0 for v in floats):
        return None
    for kind, invert in (("poly", lambda v: v), ("recip", lambda v: 1.0 / v),
                         ("rsqrt", lambda v: 1.0 / (v * v))):
        poly = _poly_fit(sizes, [round(invert(v)) for v in floats])
        if poly is None:
            continue
        for f32 in (False, True):
            form = FloatForm(kind, poly, f32, scalar)
            try:
                if all(form.at(n) == v for n, v in zip(sizes, values)):
                    return form
            except (ZeroDivisionError, ValueError):
                break
    return None


_ATOMS = (str, bytes, complex, bool, type(None), np.dtype, np.generic, enum.Enum)
# fields whose value the program recomputes (slots) or that are text made from the rest
_RECOMPUTED = frozenset({"slots", "slot", "loop_ir"})


class _Fitter:
    """Fits values of the same program at several sizes into one template; with
    ``strict`` any difference raises (``same``)."""

    def __init__(self, sizes: Sequence[int], recomputed=_RECOMPUTED, strict: bool = False,
                 modulus: int = 1):
        self.sizes = tuple(sizes)
        self.modulus = modulus
        self.recomputed = recomputed
        self.strict = strict
        self.memo: dict[tuple[int, ...], Any] = {}

    def _differ(self, path: str, vals, what: str = ""):
        shown = " vs ".join(repr(v) for v in vals)
        raise NotSymbolic(f"{path}: {shown}{what}")

    def fit(self, vals: tuple, path: str):
        a = vals[0]
        for b in vals[1:]:
            if type(a) is not type(b):
                raise NotSymbolic(f"{path}: {type(a).__name__} vs {type(b).__name__}")
        if isinstance(a, int) and not isinstance(a, (bool, enum.Enum)):
            if all(v == a for v in vals):
                return a
            poly = None if self.strict else _poly_fit(self.sizes, vals, self.modulus)
            if poly is None:
                self._differ(path, vals, "" if self.strict else " is no polynomial in the size")
            return poly
        if isinstance(a, (float, np.floating)):
            if all(v == a or (np.isnan(v) and np.isnan(a)) for v in vals):
                return a
            form = None if self.strict else _float_fit(self.sizes, vals)
            if form is None:
                self._differ(path, vals, "" if self.strict else " is no known function of the size")
            return form
        if isinstance(a, slice):
            parts = [self.fit(tuple(getattr(v, f) for v in vals), f"{path}.{f}")
                     for f in ("start", "stop", "step")]
            return a if _static(parts) else _Slice(parts)
        if isinstance(a, (*_ATOMS, set, frozenset)) or callable(a) and not hasattr(a, "__dict__"):
            if all(v is a or bool(v == a) for v in vals):
                return a
            self._differ(path, vals)
        if isinstance(a, np.ndarray):
            if all(v.shape == a.shape and v.dtype == a.dtype
                   and np.array_equal(v, a, equal_nan=True) for v in vals):
                return a
            if a.ndim == 1 and a.dtype.kind == "i" and all(
                    v.shape == a.shape and v.dtype == a.dtype for v in vals):
                # a kernel's lengths (NOTE (length parameters), codegen/size_params.py)
                return Params(a.dtype, [self.fit(tuple(int(v[k]) for v in vals),
                                                 f"{path}[{k}]") for k in range(a.size)])
            raise NotSymbolic(f"{path}: constant arrays differ")
        key = tuple(id(v) for v in vals)
        if key in self.memo:
            return self.memo[key]
        if isinstance(a, (list, tuple)):
            if any(len(v) != len(a) for v in vals):
                raise NotSymbolic(f"{path}: lengths {[len(v) for v in vals]}")
            out = [self.fit(xs, f"{path}[{k}]") for k, xs in enumerate(zip(*vals))]
            result = a if _static(out) else (_List(out) if isinstance(a, list)
                                              else _Tuple(type(a), out))
        elif isinstance(a, dict):
            if any(list(v) != list(a) for v in vals):
                raise NotSymbolic(f"{path}: keys differ")
            items = {k: self.fit(tuple(v[k] for v in vals), f"{path}.{k}") for k in a}
            result = a if _static(items.values()) else _Dict(items)
        elif hasattr(a, "__dict__") or hasattr(type(a), "__slots__"):
            fields = _fields(a)
            if any(_fields(v) != fields for v in vals):
                raise NotSymbolic(f"{path}: attributes differ")
            result = _Object(type(a), {})
            self.memo[key] = result
            for name in fields:
                xs = tuple(getattr(v, name) for v in vals)
                if name in self.recomputed:
                    result.fields[name] = _Recompute(xs[0])
                    continue
                result.fields[name] = self.fit(xs, f"{path}.{name}")
            if _static(result.fields.values()):
                # NOTE: nothing in it depends on the size: every instance shares the object
                # of the first program (programs are not mutated once planned, except
                # for the recomputed fields, whose owners are never static)
                self.memo[key] = a
                return a
            return result
        else:
            if all(v is a for v in vals):
                return a
            raise NotSymbolic(f"{path}: {type(a).__name__} values differ")
        self.memo[key] = result
        return result


@dataclasses.dataclass
class _Tuple:
    cls: type
    items: list


@dataclasses.dataclass
class _List:
    items: list


@dataclasses.dataclass
class _Dict:
    items: dict


@dataclasses.dataclass
class _Object:
    cls: type
    fields: dict


@dataclasses.dataclass
class _Recompute:
    sample: Any


@dataclasses.dataclass
class _Slice:
    parts: list        # start, stop, step


@dataclasses.dataclass
class Params:
    """The values of a kernel's parameter buffer (NOTE (kernel parameters)): one array
    per size, each item a constant or a template."""
    dtype: np.dtype
    items: list


def _static(children) -> bool:
    return not any(isinstance(c, _TEMPLATES) for c in children)


def _fields(obj) -> tuple[str, ...]:
    names: list[str] = []
    for klass in type(obj).__mro__:
        names += [s for s in getattr(klass, "__slots__", ()) if hasattr(obj, s)]
    if hasattr(obj, "__dict__"):
        names += list(vars(obj))
    return tuple(dict.fromkeys(names))


_TEMPLATES = (Poly, FloatForm, _Tuple, _List, _Dict, _Object, _Recompute, _Slice, Params)


def fit(programs: Sequence, sizes: Sequence[int], modulus: int = 1):
    """The template of programs planned at distinct ``sizes`` (which keep a residue
    modulo ``modulus``, if above 1: ``_poly_fit``); raises NotSymbolic."""
    if len(set(sizes)) != len(sizes) or len(sizes) != len(programs):
        raise ValueError(f"fit: one program per distinct size, got sizes {list(sizes)}")
    return _Fitter(sizes, modulus=modulus).fit(tuple(programs), "program")


def instantiate(template, n: int, memo: dict | None = None):
    """The object ``template`` stands for at size ``n`` (shared objects stay shared)."""
    memo = {} if memo is None else memo
    if isinstance(template, (Poly, FloatForm)):
        return template.at(n)
    if not isinstance(template, _TEMPLATES):
        return template
    if id(template) in memo:
        return memo[id(template)]
    if isinstance(template, _List):
        out = memo[id(template)] = []
        out.extend(instantiate(x, n, memo) for x in template.items)
    elif isinstance(template, _Tuple):
        items = [instantiate(x, n, memo) for x in template.items]
        out = memo[id(template)] = (template.cls(*items) if hasattr(template.cls, "_fields")
                                    else template.cls(items))
    elif isinstance(template, _Dict):
        out = memo[id(template)] = {}
        out.update({k: instantiate(v, n, memo) for k, v in template.items.items()})
    elif isinstance(template, _Slice):
        out = memo[id(template)] = slice(*(instantiate(x, n, memo) for x in template.parts))
    elif isinstance(template, Params):
        out = memo[id(template)] = np.array([instantiate(x, n, memo) for x in template.items],
                                            template.dtype)
        out.flags.writeable = False
    elif isinstance(template, _Recompute):
        out = memo[id(template)] = template.sample  # replaced by ``finish_program``
    else:
        out = memo[id(template)] = object.__new__(template.cls)
        for name, value in template.fields.items():
            object.__setattr__(out, name, instantiate(value, n, memo))
    return out


def finish_program(program: Program) -> Program:
    """Recompute what ``instantiate`` left as sampled: the temp slots and loop IR text."""
    for step in program.kernels:
        object.__setattr__(step, "loop_ir", str(step.kernel))
    program.slots = []
    for info in program.buffers.values():
        info.slot = None if info.storage is Storage.SLOT else info.slot
    _plan_slots(program)
    return program


def same(a, b) -> bool:
    """Deep structural equality of two programs or graphs (what a guard checks)."""
    try:
        _Fitter((0, 1), recomputed=frozenset(), strict=True).fit((a, b), "graph")
    except NotSymbolic:
        return False
    return True


def fitted_sizes(template) -> list[str]:
    """Where the size appears in a fitted graph: ``%id: shape`` for nodes with ``s0``."""
    out = []
    nodes = template.fields["nodes"] if isinstance(template, _Object) else []
    for node in nodes.items if isinstance(nodes, _List) else nodes:
        if not isinstance(node, _Object):
            continue
        shape = node.fields.get("shape")
        items = shape.items if isinstance(shape, _Tuple) else shape
        if any(isinstance(d, Poly) for d in items or ()):
            dims = ", ".join(str(d) for d in items)
            out.append(f"%{node.fields['id']}: [{dims}]")
    return out
