"""Loop-kernel IR: what every backend prints and what ``codegen.interp`` runs.

A ``LoopKernel`` is the body of one fused kernel for one iteration ``o`` of its outer
loop (``0 <= o < outer``; the runtime splits that range across threads).  The body is a
list of statements:

- ``Instr``: ``%n = OP(args) : dtype``, a pure SSA value.  Operands are names of earlier
  values (``%3``), loop variables (``o``, ``r0``) or, for ``CONST``, the literal itself.
  Index math uses the same ops as data math on ``int64`` values, plus ``IDIV`` and
  ``MOD`` (a result that is used never comes from a negative operand, see
  ``codegen.lower`` and NOTE (affine div/mod)).  ``LOAD(buf, index)``
  reads element ``index`` of a buffer; ``ACC(acc)`` reads an accumulator.
- ``Loop``: ``for var in [0, extent): body``.
- ``DefineAcc`` / ``AccUpdate``: an accumulator ``acc = init`` updated with ``acc = op(acc,
  value)`` inside a loop.  Only these updates may be reassociated by a backend.
- ``Store``: ``buf[index] = value``.

Every op is a ``codegen.ops.Op`` member, the vocabulary of the graph IR too (``ADD``,
``EXP``, ``WHERE``, ``CAST``, ...; ``LOAD ACC IDIV MOD`` exist only here), so a renderer
is a table keyed by ``Op`` (``render_llvm.LLVM_RULES``, ``render_cuda.CUDA_RULES``).

>>> b = KernelBuilder("k", outer=4)
>>> x = b.emit(Op.LOAD, ("buf0", b.var_outer), np.float32)
>>> b.store("buf1", b.var_outer, b.emit(Op.EXP, (x,), np.float32))
>>> print(b.finish([BufferArg("buf0", np.dtype("float32"), 4, False),
...                 BufferArg("buf1", np.dtype("float32"), 4, True)]))
kernel k(o in [0, 4)) buf0: float32[4] in, buf1: float32[4] out
  %0 = LOAD(buf0, o) : float32
  %1 = EXP(%0) : float32
  STORE buf1[o] = %1
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import gcd
from typing import Any, Union

import numpy as np

from .ops import Op

INDEX = np.dtype(np.int64)


@dataclass
class Instr:
    out: str
    op: Op
    args: tuple
    dtype: np.dtype

    def __str__(self) -> str:
        args = ", ".join(repr(a) if self.op is Op.CONST else str(a) for a in self.args)
        return f"{self.out} = {self.op}({args}) : {self.dtype.name}"


@dataclass
class Loop:
    var: str
    extent: int | str   # a count, or an int64 value of the body (NOTE (kernel parameters))
    body: list = field(default_factory=list)


@dataclass
class DefineAcc:
    acc: str
    op: Op
    dtype: np.dtype
    init: object


@dataclass
class AccUpdate:
    acc: str
    value: str


@dataclass
class Store:
    buf: str
    index: str
    value: str


Stmt = Union[Instr, Loop, DefineAcc, AccUpdate, Store]


@dataclass
class BufferArg:
    """One pointer parameter of a kernel.

    ``size`` is the element count of the whole buffer the caller binds.  ``offset``
    (elements, >= 0) is where the kernel's element 0 lies in it: every executor passes
    ``address + offset * itemsize`` as the pointer (``runtime.cpu_program`` does, the
    interpreter reads ``buffer[offset:]``, and a CUDA launch must do the same with the
    device pointer).  ``codegen.offsets.hoist_offsets`` sets it, see NOTE (hoisted offsets).
    """
    name: str
    dtype: np.dtype
    size: int
    is_output: bool
    offset: int = 0


@dataclass
class LoopKernel:
    name: str
    buffers: list[BufferArg]
    outer: int
    body: list
    outer_var: str = "o"
    ops: list[str] = field(default_factory=list)
    work: int = 0
    buffer_nodes: list[int] = field(default_factory=list)  # graph node held by each buffer
    movable: frozenset[str] = frozenset()  # buffers whose base may move (NOTE (moved offsets))

    def __str__(self) -> str:
        bufs = ", ".join(f"{b.name}: {b.dtype.name}[{b.size}] {'out' if b.is_output else 'in'}"
                         for b in self.buffers)
        lines = [f"kernel {self.name}({self.outer_var} in [0, {self.outer})) {bufs}"]
        _format_body(self.body, "  ", lines)
        return "\n".join(lines)


def _format_body(body, indent, lines):
    for s in body:
        if isinstance(s, Loop):
            lines.append(f"{indent}for {s.var} in [0, {s.extent}):")
            _format_body(s.body, indent + "  ", lines)
        elif isinstance(s, DefineAcc):
            lines.append(f"{indent}{s.acc} = DEFINE_ACC {s.op} {s.dtype.name} init={s.init!r}")
        elif isinstance(s, AccUpdate):
            lines.append(f"{indent}ACC_UPDATE {s.acc} <- {s.value}")
        elif isinstance(s, Store):
            lines.append(f"{indent}STORE {s.buf}[{s.index}] = {s.value}")
        else:
            lines.append(f"{indent}{s}")


class KernelBuilder:
    """Builds a kernel body with hash-consing (equal pure instructions share a name) and
    the integer simplifications index math needs (x*1, x+0, and div/mod by a bound)."""

    def __init__(self, name: str, outer: int):
        self.name, self.outer = name, outer
        self.var_outer = "o"
        self._scopes: list[tuple[list, dict]] = [([], {})]
        self._const_stmts: list[Instr] = []
        self._counter = 0
        # Any: a Python scalar, int for INDEX constants (the index arithmetic below reads
        # only those, which a type cannot tell apart from float and bool data constants)
        self._consts: dict[str, Any] = {}
        self._ranges: dict[str, tuple[int, int]] = {"o": (0, max(outer - 1, 0))}
        self._defs: dict[str, tuple[Op, tuple]] = {}  # index instr -> (op, args)
        self._loops = 0
        self._accs = 0
        # NOTE (loop depth): how many open loops deep the innermost loop variable a value
        # reads is (0: only ``o`` and constants; an accumulator counts at the depth it was
        # defined, where its final value is read).  Lowering asks it to move work that does
        # not vary in the innermost loop out of it (see ``codegen.lower``, NOTE (row
        # reciprocal)).
        self._depth: dict[str, int] = {"o": 0}
        self._acc_depth: dict[str, int] = {}

    # -- values ---------------------------------------------------------------------------
    def const(self, value, dtype) -> str:
        dtype = np.dtype(dtype)
        value = dtype.type(value).item()
        return self.emit(Op.CONST, (value,), dtype)

    def const_value(self, name: str):
        return self._consts.get(name)

    def range_of(self, name: str):
        return self._ranges.get(name)

    @property
    def depth(self) -> int:
        """How many loops are open where the next statement goes."""
        return len(self._scopes) - 1

    def loop_depth(self, name: str) -> int:
        """NOTE (loop depth): the depth of the innermost loop whose variable ``name`` reads."""
        return self._depth.get(name, 0)

    def emit(self, op: Op, args: tuple, dtype) -> str:
        if type(op) is not Op:
            raise TypeError(f"KernelBuilder.emit: op must be an Op member, got {op!r}")
        dtype = np.dtype(dtype)
        if dtype == INDEX and op is not Op.CONST:
            simple = self._simplify_index(op, args)
            if simple is not None:
                return simple
        # NOTE: a constant by its repr, as 0.0 == -0.0: x > 0 then where(.., x, -0.0) read +0.0
        key = (op, repr(args) if op is Op.CONST else args, dtype.str)
        for _, cache in reversed(self._scopes):
            if key in cache:
                return cache[key]
        name = f"%{self._counter}"
        self._counter += 1
        # constants live at the top of the kernel, visible everywhere
        scope = 0 if op is Op.CONST else -1
        target = self._const_stmts if op is Op.CONST else self._scopes[-1][0]
        target.append(Instr(name, op, tuple(args), dtype))
        self._scopes[scope][1][key] = name
        if op is Op.ACC:
            self._depth[name] = self._acc_depth.get(args[0], 0)
        elif op is not Op.CONST:
            self._depth[name] = max((self._depth.get(a, 0) for a in args if isinstance(a, str)),
                                    default=0)
        if op is Op.CONST:
            self._consts[name] = args[0]
            if dtype == INDEX:
                self._ranges[name] = (args[0], args[0])
        elif dtype == INDEX:
            self._defs[name] = (op, tuple(args))
            rng = self._index_range(op, args)
            if rng is not None:
                self._ranges[name] = rng
        return name

    def _simplify_index(self, op, args):
        c = [self._consts.get(a) if isinstance(a, str) else None for a in args]
        if (op in (Op.ADD, Op.SUB, Op.MUL, Op.IDIV, Op.MOD)
                and c[0] is not None and c[1] is not None):
            a, b = c[0], c[1]
            value = {Op.ADD: a + b, Op.SUB: a - b, Op.MUL: a * b,
                     Op.IDIV: a // b if b else 0, Op.MOD: a % b if b else 0}[op]
            return self.const(value, INDEX)
        if op is Op.ADD:
            if c[0] == 0:
                return args[1]
            if c[1] == 0:
                return args[0]
        if op is Op.SUB and c[1] == 0:
            return args[0]
        if op is Op.MUL:
            if c[0] == 1:
                return args[1]
            if c[1] == 1:
                return args[0]
            if c[0] == 0 or c[1] == 0:
                return self.const(0, INDEX)
        if op in (Op.IDIV, Op.MOD) and c[1] is not None:
            rng = self._ranges.get(args[0])
            if c[1] == 1:
                return args[0] if op is Op.IDIV else self.const(0, INDEX)
            if rng is not None and rng[0] >= 0 and rng[1] < c[1]:
                return self.const(0, INDEX) if op is Op.IDIV else args[0]
            if c[1] > 1:
                d = self._defs.get(args[0])
                if d is not None and d[0] == Op.WHERE and (d[1][1] in self._consts
                                                          or d[1][2] in self._consts):
                    # NOTE (affine div/mod): a masked view's safe index WHERE(valid, i, 0)
                    # divides branch by branch, so the valid branch stays affine.  The
                    # other branch may be negative: its value is discarded by the select.
                    cond, a, b = d[1]
                    return self.emit(Op.WHERE, (cond, self.emit(op, (a, args[1]), INDEX),
                                               self.emit(op, (b, args[1]), INDEX)), INDEX)
                return self._divmod_affine(op, args[0], c[1])
        return None

    # -- div/mod of affine index expressions ---------------------------------------------------
    # NOTE (affine div/mod): a view's index is unravelled from a linear index that is itself
    # a sum of (variable * stride) terms, e.g. (o*144 + j)//9 % 16 in an im2col window.
    # Splitting the sum by divisibility turns that into j//9 (loop-invariant parts hoist,
    # most div/mods disappear): with x = c*A + R and 0 <= R,  x//c = A + R//c and
    # x%c = R%c; with x = g*Y + b, g | c and 0 <= b < g,  x//c = Y//(c/g) and
    # x%c = g*(Y%(c/g)) + b.  Operands are non-negative (codegen.lower), so both hold for
    # the unsigned division backends use.
    def _affine(self, x: str, depth: int = 0):
        """x as ({atom: coefficient}, constant), or None when it grows too big."""
        if x in self._consts:
            return {}, self._consts[x]
        d = self._defs.get(x)
        if d is not None and depth < 12:
            # no op, no operands: matches no branch below ("" keeps the operands typed str)
            op, (a, b) = d if len(d[1]) == 2 else (None, ("", ""))
            if op in (Op.ADD, Op.SUB):
                ta, tb = self._affine(a, depth + 1), self._affine(b, depth + 1)
                if ta is None or tb is None:
                    return None
                sign = 1 if op is Op.ADD else -1
                terms = dict(ta[0])
                for atom, k in tb[0].items():
                    terms[atom] = terms.get(atom, 0) + sign * k
                terms = {atom: k for atom, k in terms.items() if k}
                return (terms, ta[1] + sign * tb[1]) if len(terms) <= 16 else None
            if op is Op.MUL and (a in self._consts or b in self._consts):
                k, e = (self._consts[a], b) if a in self._consts else (self._consts[b], a)
                t = self._affine(e, depth + 1)
                if t is None:
                    return None
                return {atom: k * v for atom, v in t[0].items() if k * v}, t[1] * k
        return {x: 1}, 0

    def _affine_range(self, terms: dict, const: int):
        lo = hi = const
        for atom, k in terms.items():
            r = self._ranges.get(atom)
            if r is None:
                return None
            lo += min(k * r[0], k * r[1])
            hi += max(k * r[0], k * r[1])
        return lo, hi

    def _affine_sum(self, terms: dict, const: int) -> str:
        acc = None
        for atom, k in terms.items():
            t = atom if k == 1 else self.emit(Op.MUL, (atom, self.const(k, INDEX)), INDEX)
            acc = t if acc is None else self.emit(Op.ADD, (acc, t), INDEX)
        if acc is None:
            return self.const(const, INDEX)
        return self.emit(Op.ADD, (acc, self.const(const, INDEX)), INDEX) if const else acc

    def _divmod_affine(self, op: Op, x: str, c: int):
        aff = self._affine(x)
        if aff is None:
            return None
        terms, const = aff
        # x = c*A + R
        big = {a: k // c for a, k in terms.items() if k % c == 0}
        small = {a: k for a, k in terms.items() if k % c}
        q, r = divmod(const, c)
        rng = self._affine_range(small, r)
        if rng is not None and rng[0] >= 0 and (big or q):
            rest = self._affine_sum(small, r)
            if op is Op.MOD:
                if rng[1] < c:
                    return rest
                return self.emit(Op.MOD, (rest, self.const(c, INDEX)), INDEX)
            quotient = self._affine_sum(big, q)
            if rng[1] < c:
                return quotient
            return self.emit(Op.ADD, (quotient, self.emit(Op.IDIV, (rest, self.const(c, INDEX)),
                                                          INDEX)), INDEX)
        # x = g*Y + b
        for g in sorted({gcd(c, k) for k in terms.values()}, reverse=True):
            if not 1 < g < c:
                continue
            big = {a: k // g for a, k in terms.items() if k % g == 0}
            small = {a: k for a, k in terms.items() if k % g}
            q, r = divmod(const, g)
            rng = self._affine_range(small, r)
            if not big or rng is None or rng[0] < 0 or rng[1] >= g:
                continue
            y, m = self._affine_sum(big, q), self.const(c // g, INDEX)
            if op is Op.IDIV:
                return self.emit(Op.IDIV, (y, m), INDEX)
            scaled = self.emit(Op.MUL, (self.emit(Op.MOD, (y, m), INDEX), self.const(g, INDEX)),
                               INDEX)
            return self.emit(Op.ADD, (scaled, self._affine_sum(small, r)), INDEX)
        return None

    def _index_range(self, op, args):
        r = [self._ranges.get(a) if isinstance(a, str) else None for a in args]
        if op in (Op.ADD, Op.SUB, Op.MUL) and r[0] is not None and r[1] is not None:
            (a0, a1), (b0, b1) = r[0], r[1]
            if op is Op.ADD:
                return (a0 + b0, a1 + b1)
            if op is Op.SUB:
                return (a0 - b1, a1 - b0)
            prods = [a0 * b0, a0 * b1, a1 * b0, a1 * b1]
            return (min(prods), max(prods))
        if op is Op.IDIV and r[0] is not None and r[1] is not None and r[1][0] > 0 and r[0][0] >= 0:
            return (r[0][0] // r[1][1], r[0][1] // r[1][0])
        if op is Op.MOD and r[1] is not None and r[1][0] > 0:
            upper = r[1][1] - 1
            if r[0] is not None and r[0][0] >= 0:
                return (0, min(upper, r[0][1]))
            return (0, upper)
        if op is Op.WHERE and r[1] is not None and r[2] is not None:
            return (min(r[1][0], r[2][0]), max(r[1][1], r[2][1]))
        return None

    # -- statements -------------------------------------------------------------------------
    def store(self, buf: str, index: str, value: str) -> None:
        self._scopes[-1][0].append(Store(buf, index, value))

    def define_acc(self, op: Op, dtype, init) -> str:
        name = f"acc{self._accs}"
        self._accs += 1
        self._scopes[-1][0].append(DefineAcc(name, op, np.dtype(dtype), init))
        self._acc_depth[name] = self.depth
        return name

    def acc_update(self, acc: str, value: str) -> None:
        self._scopes[-1][0].append(AccUpdate(acc, value))

    def begin_loop(self, extent: int, prefix: str = "r") -> str:
        var = f"{prefix}{self._loops}"
        self._loops += 1
        loop = Loop(var, extent)
        self._scopes[-1][0].append(loop)
        self._scopes.append((loop.body, {}))
        self._ranges[var] = (0, max(extent - 1, 0))
        self._depth[var] = self.depth
        return var

    def end_loop(self) -> None:
        self._scopes.pop()

    def finish(self, buffers: list[BufferArg], ops=(), work: int = 0) -> LoopKernel:
        assert len(self._scopes) == 1, "unclosed loop"
        return LoopKernel(self.name, buffers, self.outer, self._const_stmts + self._scopes[0][0],
                          ops=list(ops), work=work)
