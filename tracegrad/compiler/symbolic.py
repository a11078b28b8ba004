"""Symbolic sizes by fitting: one compiled program serves every size of a dimension ``s0``.

NOTE (symbolic programs by fitting): the tracer and the planner work on concrete shapes.
A program that is valid for every size of one dimension is found by planning the same
function at three sizes ``n1, n2, n3`` and fitting the three programs together: every
integer that differs between them must be one affine function ``a * s0 + b`` of the size
(a buffer's shape, a kernel's outer extent, a view's offset, a reshape's target shape),
everything else (ops, dtypes, floats, strings, kernel bodies) must be equal.  A kernel
body that depends on the size (a reduction over ``s0``, a ``1/N`` constant, a stride that
is a multiple of ``s0``) makes the fit fail and the function stays specialised per size:
kernel bodies never change between sizes, so the compiled kernels are shared as they are
(their outer loop already takes ``start, end`` at run time) and a size only changes
shapes, extents and buffer sizes, which ``instantiate`` computes.

Guards: a call at a new size retraces the function (Python only: no passes, lowering or
LLVM), and the traced graph must equal the fitted one at that size; any difference (a
Python branch on the size, a size-dependent constant, a shape rule that specialised)
breaks the guard and that size gets its own specialised program.  So a wrong answer would
need the planner (not the traced graph) to be non-affine in the size yet agree at three
sizes, which is why the fit checks a third size.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any

import numpy as np

from ..codegen.schedule import Program, Storage, _plan_slots


class NotSymbolic(Exception):
    """The programs at two sizes differ in more than affine sizes (the message says where)."""


@dataclasses.dataclass(frozen=True)
class Affine:
    """An integer ``coef * s0 + const`` in a fitted program."""
    coef: int
    const: int

    def at(self, n: int) -> int:
        return self.coef * n + self.const

    def __str__(self) -> str:
        return f"{self.coef}*s0{self.const:+d}" if self.const else f"{self.coef}*s0"


_ATOMS = (str, bytes, float, complex, bool, type(None), np.dtype, np.generic, enum.Enum)
# fields whose value the program recomputes (slots) or that are text made from the rest
_RECOMPUTED = frozenset({"slots", "slot", "loop_ir"})


class _Fitter:
    def __init__(self, n1: int, n2: int, recomputed=_RECOMPUTED) -> None:
        self.n1, self.n2 = n1, n2
        self.recomputed = recomputed
        self.memo: dict[tuple[int, int], Any] = {}

    def fit(self, a, b, path: str, frozen: bool):
        if type(a) is not type(b):
            raise NotSymbolic(f"{path}: {type(a).__name__} vs {type(b).__name__}")
        if isinstance(a, int) and not isinstance(a, (bool, enum.Enum)):
            if a == b:
                return a
            if frozen:
                raise NotSymbolic(f"{path}: {a} vs {b} inside a kernel body")
            coef, rem = divmod(b - a, self.n2 - self.n1)
            if rem:
                raise NotSymbolic(f"{path}: {a} vs {b} is not affine in the size")
            return Affine(coef, a - coef * self.n1)
        if isinstance(a, (*_ATOMS, set, frozenset)) or callable(a) and not hasattr(a, "__dict__"):
            if a is b or bool(a == b) or (isinstance(a, (float, np.floating))
                                          and np.isnan(a) and np.isnan(b)):
                return a
            raise NotSymbolic(f"{path}: {a!r} vs {b!r}")
        if isinstance(a, np.ndarray):
            if a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True):
                return a
            raise NotSymbolic(f"{path}: constant arrays differ")
        key = (id(a), id(b))
        if key in self.memo:
            return self.memo[key]
        if isinstance(a, (list, tuple)):
            if len(a) != len(b):
                raise NotSymbolic(f"{path}: length {len(a)} vs {len(b)}")
            out = [self.fit(x, y, f"{path}[{k}]", frozen) for k, (x, y) in enumerate(zip(a, b))]
            result = a if _static(out) else (_List(out) if isinstance(a, list)
                                              else _Tuple(type(a), out))
        elif isinstance(a, dict):
            if list(a) != list(b):
                raise NotSymbolic(f"{path}: keys differ")
            items = {k: self.fit(a[k], b[k], f"{path}.{k}", frozen) for k in a}
            result = a if _static(items.values()) else _Dict(items)
        elif hasattr(a, "__dict__") or hasattr(type(a), "__slots__"):
            fields = _fields(a)
            if fields != _fields(b):
                raise NotSymbolic(f"{path}: attributes differ")
            result = _Object(type(a), {})
            self.memo[key] = result
            for name in fields:
                x, y = getattr(a, name), getattr(b, name)
                if name in self.recomputed:
                    result.fields[name] = _Recompute(x)
                    continue
                inner = frozen or name == "body"
                result.fields[name] = self.fit(x, y, f"{path}.{name}", inner)
            if _static(result.fields.values()):
                # NOTE: nothing in it depends on the size: every instance shares the object
                # of the first program (programs are not mutated once planned, except
                # for the recomputed fields, whose owners are never static)
                self.memo[key] = a
                return a
            return result
        else:
            if a is b:
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


def _static(children) -> bool:
    return not any(isinstance(c, _TEMPLATES) for c in children)


def _fields(obj) -> tuple[str, ...]:
    names: list[str] = []
    for klass in type(obj).__mro__:
        names += [s for s in getattr(klass, "__slots__", ()) if hasattr(obj, s)]
    if hasattr(obj, "__dict__"):
        names += list(vars(obj))
    return tuple(dict.fromkeys(names))


_TEMPLATES = (Affine, _Tuple, _List, _Dict, _Object, _Recompute)


def fit(a, b, n1: int, n2: int):
    """The template of two programs planned at sizes ``n1 != n2``; raises NotSymbolic."""
    return _Fitter(n1, n2).fit(a, b, "program", False)


def instantiate(template, n: int, memo: dict | None = None):
    """The object ``template`` stands for at size ``n`` (shared objects stay shared)."""
    memo = {} if memo is None else memo
    if isinstance(template, Affine):
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
        _Fitter(0, 1, recomputed=frozenset()).fit(a, b, "graph", True)
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
        if any(isinstance(d, Affine) for d in items or ()):
            dims = ", ".join(str(d) for d in items)
            out.append(f"%{node.fields['id']}: [{dims}]")
    return out
