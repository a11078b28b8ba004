"""A fit's guard trace: what a new size must satisfy to be served without a retrace
(NOTE (guards instead of a retrace) in symint.py)."""
from __future__ import annotations

import math

import numpy as np

from .entry import Entry, build_entry
from .made_sizes import at_size, made, remade
from .symbolic_len import len_follows_s0
from .symbolic import (FloatForm, Poly, _Dict, _fields, _List, _Object, _Recompute, _Slice,
                       _Tuple)
from .symint import Recorder, SymFloat, SymInt, _holds, _norm, poly_text


class GuardedTrace:
    """The guard trace of one fit: its entry (the program's inputs, writes and outputs,
    shared by every size it serves), the guards it recorded, and why it cannot serve
    sizes without a retrace (``why_not``; None when it can)."""

    def __init__(self, entry: Entry | None, recorder: Recorder, why_not: str | None,
                 graph=None) -> None:
        self.entry = entry
        self.recorder = recorder
        self.why_not = why_not
        self._graph = graph   # the traced graph (with SymInts), until ``check``

    def broken(self, n: int) -> str | None:
        """The first guard that does not hold at size ``n`` (as text), else None."""
        return self.recorder.broken(n)

    def check(self, template) -> None:
        """Set ``why_not`` where the trace cannot serve sizes: it escaped, returned a
        Python value, or a size-dependent value of its graph does not follow
        ``template`` (the fitted graph) symbolically."""
        graph, self._graph = self._graph, None
        if self.why_not is not None:
            return
        rec = self.recorder
        if rec.escapes:
            shown = [e for e in rec.escapes if e]
            self.why_not = f"{len(rec.escapes)} escape(s) of s0: " + "; ".join(shown)
        elif any(x is not None for x in self.entry.out_static):
            self.why_not = "the function returns a value that is no tensor (it may follow the sizes)"
        else:
            path = disagreement(template, graph)
            if path is not None:
                self.why_not = f"a size in the traced graph is not followed symbolically ({path})"

    def describe(self) -> str:
        """``, s0 < 100, s0 % 2 == 0`` (the guards a new size must keep), or why each new
        size retraces."""
        if self.why_not is not None:
            return f"; each new size retraces: {self.why_not}"
        return "".join(f", {text}" for text in self.recorder.texts())


def record_guards(compiled, treedef, leaves, dims, template=None) -> GuardedTrace:
    """Trace ``compiled.fn`` on ``leaves`` with the sizes in ``dims`` (``(leaf, dim)``
    pairs, bound to ``s0``) held as SymInts; ``template`` is the fitted graph, which every
    size-dependent value of the trace must follow symbolically (None: ``check`` later)."""
    rec = Recorder()
    positions: dict[int, set] = {}
    for i, d in dims:
        positions.setdefault(i, set()).add(d)
    try:
        with len_follows_s0():   # NOTE (len of a symbolic dim)
            entry = build_entry(compiled, treedef, leaves, (), {}, compile_code=False,
                                plan_programs=False, symbols=(rec, positions, made))
    except Exception as e:  # noqa: BLE001 - the trace with SymInts failed: retrace instead
        return GuardedTrace(None, rec, f"the trace with symbolic sizes failed "
                                       f"({type(e).__name__}: {e})")
    finally:
        rec.active = False
    graph, entry.traced = entry.traced, None   # it holds SymInts; instances never read it
    guarded = GuardedTrace(entry, rec, None, graph)
    if template is not None:
        guarded.check(template)
    return guarded


def residue_modulus(rec: Recorder) -> int:
    """The least common multiple of the moduli of the residue guards (``s0 % 2 == 0``),
    1 where there are none."""
    return math.lcm(1, *(op[1] for _, op in rec.guards if type(op) is tuple))


def made_inputs_differ(guard: Entry, probes) -> str | None:
    """Why a tensor the guard trace made and the program reads (cross_entropy's arange of
    the classes, a constant built from a size) may not serve every size: its values must
    be those every probe trace made at its own size, at three sizes or more (a tensor
    NumPy built from a size, silently: ``np.full((n, 1), 2.0)``, differs there), or, for
    one made from a symbolic size (NOTE (tensors made from a size) in made_sizes.py), the
    tensor made again at each probe's size.  ``probes``: (size, entry) pairs."""
    for k in guard.made_inputs:
        ref = guard.input_sources[k][1]
        seen = 0
        for m, e in probes:
            kind, theirs = e.input_sources[k] if k < len(e.input_sources) else (None, None)
            if kind != "captured" or not isinstance(theirs._data, np.ndarray):
                return f"input {k}, a tensor the function made, is not made at every size"
            again = remade(ref, m)
            mine = (ref if again is None else again)._data
            other = theirs._data
            if (other.shape != mine.shape or other.dtype != mine.dtype
                    or not np.array_equal(other, mine, equal_nan=mine.dtype.kind in "fc")):
                return (f"input {k}, a tensor the function made, differs between sizes "
                        f"(shape {mine.shape} vs {other.shape})")
            seen += 1
        if seen < 3:
            return f"input {k}, a tensor the function made, was compared at {seen} sizes"
    return None


_MISSING = object()


def disagreement(template, value, path: str = "graph", memo: set | None = None) -> str | None:
    """Where ``value`` (the guard trace's graph) does not follow ``template`` (the fitted
    graph) symbolically: a polynomial of the fit must be a SymInt with that polynomial,
    a value the fit found constant must be that constant; None when all agree."""
    memo = set() if memo is None else memo
    if isinstance(template, Poly):
        if isinstance(value, SymInt) and value.expr == _norm(template.coefs):
            return None
        got = (poly_text(value.expr) if isinstance(value, SymInt)
               else f"an untracked {type(value).__name__}")
        return f"{path}: {template} in the fit, {got} in the trace"
    if isinstance(template, FloatForm):
        if (isinstance(value, SymFloat) and (value.kind, value.expr) == (
                template.kind, _norm(template.poly.coefs)) and not template.f32
                and template.scalar is float):
            return None
        return f"{path}: {template} in the fit, an untracked float in the trace"
    if isinstance(template, _Recompute):
        return None
    key = (id(template), id(value))
    if key in memo:
        return None
    memo.add(key)
    if isinstance(template, _Object):
        if type(value) is not template.cls:
            return f"{path}: {type(value).__name__}, not {template.cls.__name__}"
        for name, t in template.fields.items():
            where = disagreement(t, getattr(value, name, _MISSING), f"{path}.{name}", memo)
            if where is not None:
                return where
        return None
    if isinstance(template, (_List, _Tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(template.items):
            return f"{path}: lengths differ"
        return _first(template.items, value, path, memo)
    if isinstance(template, _Dict):
        if not isinstance(value, dict) or list(value) != list(template.items):
            return f"{path}: keys differ"
        return _first(template.items.values(), value.values(), path, memo,
                      names=list(template.items))
    if isinstance(template, _Slice):
        if not isinstance(value, slice):
            return f"{path}: no slice"
        return _first(template.parts, (value.start, value.stop, value.step), path, memo)
    return _constant_disagreement(template, value, path, memo)


def _first(templates, values, path, memo, names=None) -> str | None:
    for k, (t, v) in enumerate(zip(templates, values)):
        where = disagreement(t, v, f"{path}[{names[k] if names else k}]", memo)
        if where is not None:
            return where
    return None


def _constant_disagreement(t, v, path: str, memo: set) -> str | None:
    """``v`` against a value that was the same at every fitted size."""
    if isinstance(v, SymInt):
        return f"{path}: {poly_text(v.expr)} in the trace, the constant {t!r} in the fit"
    if isinstance(t, (bool, int, float, complex, str, bytes, type(None), np.generic,
                      np.dtype)):
        if type(v) is not type(t):
            return f"{path}: {type(v).__name__}, not {type(t).__name__}"
        same = v == t or (isinstance(t, (float, np.floating)) and math.isnan(t)
                          and math.isnan(v))
        return None if same else f"{path}: {v!r} vs {t!r}"
    if isinstance(t, np.ndarray):
        ok = (isinstance(v, np.ndarray) and v.shape == t.shape and v.dtype == t.dtype
              and np.array_equal(v, t, equal_nan=v.dtype.kind in "fc"))
        return None if ok else f"{path}: arrays differ"
    if isinstance(t, (list, tuple)):
        if type(v) is not type(t) or len(v) != len(t):
            return f"{path}: lengths differ"
        return _first(t, v, path, memo)
    if isinstance(t, dict):
        if not isinstance(v, dict) or list(v) != list(t):
            return f"{path}: keys differ"
        return _first(t.values(), v.values(), path, memo, names=list(t))
    if isinstance(t, (set, frozenset)):
        return None if v == t else f"{path}: sets differ"
    if hasattr(t, "__dict__") and not callable(t) or hasattr(type(t), "__slots__"):
        if type(v) is not type(t):
            return f"{path}: {type(v).__name__}, not {type(t).__name__}"
        key = (id(t), id(v))
        for name in _fields(t):
            where = disagreement(getattr(t, name), getattr(v, name, _MISSING),
                                 f"{path}.{name}", memo)
            if where is not None:
                return where
        memo.add(key)
        return None
    try:
        return None if v is t or bool(v == t) else f"{path}: {type(t).__name__} differs"
    except (TypeError, ValueError):
        return f"{path}: {type(t).__name__} cannot be compared"


def residues_hold(rec: Recorder, n: int) -> bool:
    """Whether every residue guard of ``rec`` (``s0 % 2 == 0``) holds at size ``n``."""
    return all(_holds(diff, op, n) == outcome for (diff, op), outcome in rec.guards.items()
               if type(op) is tuple)


def aliases_at(out_aliases: tuple, n: int) -> tuple:
    """The guard trace's returned views of arguments (``Entry.out_aliases``, NOTE
    (returned arguments)) at size ``n``: their view chains hold the trace's SymInts
    (``x.reshape(x.shape[0], -1)`` returned), each replaced by its value at ``n``.  (Every
    other size-dependent value there is an escape, so a served size keeps them constant.)"""
    return tuple((k, kind, ref, None if chain is None else at_size(chain, n))
                 for k, kind, ref, chain in out_aliases)
