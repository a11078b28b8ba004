"""A fitted program at a new size, fast: the template turned into closures once.

``symbolic.instantiate`` walks a fitted template (NOTE (symbolic programs by fitting) in
``symbolic.py``) node by node and asks each node what it is; a transformer layer's
program has ~1700 nodes that depend on the size, and that walk took ~40% of what a new
sequence length cost (CPU profile, lengths 40..57). ``Evaluator`` asks once: every node
becomes a closure that builds its object at size ``n`` from its static parts (shared,
never copied) and its dynamic children; a polynomial is a closure of its coefficients.
A node reachable along several paths (a buffer's info, a view both a step and an output
read) is built once per size, as ``instantiate`` keeps shared objects shared.

``finish`` then does what ``symbolic.finish_program`` does (each kernel step's loop-IR
text, the temp slots), with the text of each kernel body made once per fit: the bodies
are static templates (a size-dependent value is a kernel parameter, NOTE (kernel
parameters)), so only the kernel's header line changes with the size.

The result equals ``finish_program(instantiate(template, n))`` (a test compares them with
``symbolic.same``).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..codegen.loop_ir import LoopKernel, _format_body
from ..codegen.schedule import Program, Storage, _plan_slots
from .symbolic import (_TEMPLATES, FloatForm, Params, Poly, _Dict, _List, _Object,
                       _Recompute, _Slice, _Tuple)

Build = Callable[[int, dict], Any]


def _poly(p: Poly) -> Build:
    c = p.coefs + (0,) * (3 - len(p.coefs))
    if len(p.coefs) > 3 or not all(type(x) is int for x in c):
        return lambda n, memo: p.at(n)   # (a Fraction coefficient: an int at the result)
    a, b, q = c
    if not q:
        return lambda n, memo: a + b * n
    return lambda n, memo: a + n * (b + q * n)


class Evaluator:
    """``Evaluator(template)(n)``: the object ``template`` stands for at size ``n``."""

    def __init__(self, template) -> None:
        self._built: dict[int, Build] = {}
        self._uses: dict[int, int] = {}
        self._count(template)
        self._root = self._compile(template)
        self._bodies: dict[int, list[str]] = {}   # id(kernel body) -> its loop-IR lines
        self._template = template                 # keeps the bodies' ids valid

    def __call__(self, n: int):
        return self._root(n, {})

    def finish(self, program: Program) -> Program:
        """``symbolic.finish_program``: loop-IR texts and temp slots at this size."""
        for step in program.kernels:
            object.__setattr__(step, "loop_ir", self._loop_ir(step.kernel))
        program.slots = []
        for info in program.buffers.values():
            info.slot = None if info.storage is Storage.SLOT else info.slot
        _plan_slots(program)
        return program

    def _loop_ir(self, kernel: LoopKernel) -> str:
        """``str(kernel)``, its body's lines made once (see module doc)."""
        body = self._bodies.get(id(kernel.body))
        if body is None:
            body = self._bodies[id(kernel.body)] = []
            _format_body(kernel.body, "  ", body)
        bufs = ", ".join(f"{b.name}: {b.dtype.name}[{b.size}] {'out' if b.is_output else 'in'}"
                         for b in kernel.buffers)
        return "\n".join([f"kernel {kernel.name}({kernel.outer_var} in [0, {kernel.outer})) "
                          f"{bufs}", *body])

    # ---- compiling the template --------------------------------------------------------
    def _count(self, template) -> None:
        """How many parents each template node has (shared ones are built once per size)."""
        stack = [template]
        while stack:
            t = stack.pop()
            if not isinstance(t, _TEMPLATES) or isinstance(t, (Poly, FloatForm)):
                continue
            seen = self._uses.get(id(t), 0)
            self._uses[id(t)] = seen + 1
            if seen:
                continue
            stack.extend(_children(t))

    def _compile(self, t) -> Build:
        if isinstance(t, Poly):
            return _poly(t)
        if isinstance(t, FloatForm):
            return lambda n, memo: t.at(n)
        if not isinstance(t, _TEMPLATES):
            return lambda n, memo: t
        key = id(t)
        if key in self._built:
            return self._built[key]
        build = self._node(t)
        if self._uses.get(key, 1) > 1:   # shared: once per size
            inner = build

            def build(n: int, memo: dict, key=key, inner=inner):
                out = memo.get(key)
                if out is None:
                    out = memo[key] = inner(n, memo)
                return out
        self._built[key] = build
        return build

    def _node(self, t) -> Build:
        if isinstance(t, _Object):
            return self._object(t)
        if isinstance(t, (_List, _Tuple)):
            parts = self._parts(t.items)
            if isinstance(t, _List):
                return lambda n, memo: [p(n, memo) if f else p for f, p in parts]
            cls = t.cls
            if hasattr(cls, "_fields"):
                return lambda n, memo: cls(*[p(n, memo) if f else p for f, p in parts])
            return lambda n, memo: cls([p(n, memo) if f else p for f, p in parts])
        if isinstance(t, _Dict):
            items = [(k, *self._part(v)) for k, v in t.items.items()]
            return lambda n, memo: {k: p(n, memo) if f else p for k, f, p in items}
        if isinstance(t, _Slice):
            parts = self._parts(t.parts)
            return lambda n, memo: slice(*[p(n, memo) if f else p for f, p in parts])
        if isinstance(t, Params):
            parts = self._parts(t.items)
            dtype = t.dtype

            def params(n: int, memo: dict) -> np.ndarray:
                out = np.array([p(n, memo) if f else p for f, p in parts], dtype)
                out.flags.writeable = False
                return out
            return params
        if isinstance(t, _Recompute):
            sample = t.sample   # replaced by ``finish``
            return lambda n, memo: sample
        raise TypeError(f"Evaluator: no rule for {type(t).__name__}")

    def _part(self, value) -> tuple[bool, Any]:
        """(dynamic, builder) or (static, the value itself)."""
        if isinstance(value, _TEMPLATES):
            return True, self._compile(value)
        return False, value

    def _parts(self, values) -> list[tuple[bool, Any]]:
        return [self._part(v) for v in values]

    def _object(self, t: _Object) -> Build:
        cls = t.cls
        static = {name: value for name, value in t.fields.items()}
        dynamic = [(name, self._compile(value)) for name, value in t.fields.items()
                   if isinstance(value, _TEMPLATES)]
        probe = object.__new__(cls)
        if hasattr(probe, "__dict__"):
            def build(n: int, memo: dict) -> Any:
                out = object.__new__(cls)
                fields = static.copy()   # the template's field order, static values in place
                for name, part in dynamic:
                    fields[name] = part(n, memo)
                out.__dict__.update(fields)
                return out
            return build

        def build_slots(n: int, memo: dict) -> Any:
            out = object.__new__(cls)
            for name, value in static.items():
                object.__setattr__(out, name, value)
            for name, part in dynamic:
                object.__setattr__(out, name, part(n, memo))
            return out
        return build_slots


def _children(t) -> list:
    if isinstance(t, (_List, _Tuple, Params)):
        return list(t.items)
    if isinstance(t, _Dict):
        return list(t.items.values())
    if isinstance(t, _Slice):
        return list(t.parts)
    if isinstance(t, _Object):
        return list(t.fields.values())
    return []
