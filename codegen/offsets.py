"""Hoisted buffer offsets: constant base offsets moved out of a kernel's index math.

See the NOTEs below: (hoisted offsets) for ``hoist_offsets``, which ``codegen.lower``
applies to every kernel, and (moved offsets) for when ``codegen.lower`` may reuse one
group's kernel for another that differs only in those bases.
"""
from __future__ import annotations

from .ops import Op
from .loop_ir import (INDEX, AccUpdate, BufferArg, DefineAcc, Instr, KernelBuilder,
                      Loop, LoopKernel, Store)


# NOTE (hoisted offsets): an unrolled loop (an RNN over time steps) lowers to the same
# kernel at every step except for a constant in the index of each slice it reads or
# writes, e.g. LOAD(buf0, 8192 + 256*o + j0).  ``hoist_offsets`` moves such a constant out
# of the kernel into ``BufferArg.offset``, which the executor adds to the pointer, so
# those kernels print the same IR and source and share one compiled module.  A buffer's
# offset is the smallest value any of its accesses can take (its constant term, lowered
# by negative terms at their bounds), and is hoisted only when every access is an affine
# sum of bounded terms: indices relative to the new base stay >= 0, inside the buffer.
def hoist_offsets(kernel: LoopKernel) -> LoopKernel:
    """``kernel`` with constant per-buffer index offsets moved into ``BufferArg.offset``,
    dead instructions dropped and values renumbered in order of use (so kernels equal up
    to their offsets and names print the same).

    >>> import numpy as np
    >>> b = KernelBuilder("k", outer=4)
    >>> i = b.emit(Op.ADD, (b.const(8, INDEX), b.var_outer), INDEX)
    >>> b.store("buf1", b.var_outer, b.emit(Op.LOAD, ("buf0", i), np.float32))
    >>> k = hoist_offsets(b.finish([BufferArg("buf0", np.dtype("float32"), 12, False),
    ...                             BufferArg("buf1", np.dtype("float32"), 4, True)]))
    >>> print(k); [a.offset for a in k.buffers]
    kernel k(o in [0, 4)) buf0: float32[12] in, buf1: float32[4] out
      %0 = LOAD(buf0, o) : float32
      STORE buf1[o] = %0
    [8, 0]
    """
    offsets, movable = _buffer_offsets(kernel)
    b = KernelBuilder(kernel.name, kernel.outer)
    _replay(kernel.body, b, {kernel.outer_var: b.var_outer}, offsets)
    buffers = [BufferArg(a.name, a.dtype, a.size, a.is_output, a.offset + offsets.get(a.name, 0))
               for a in kernel.buffers]
    out = b.finish(buffers, kernel.ops, kernel.work)
    out.body = _renumber(_drop_dead(out.body))
    out.buffer_nodes = kernel.buffer_nodes
    out.movable = movable
    return out


def _accesses(body, out: dict) -> None:
    for s in body:
        if isinstance(s, Instr) and s.op is Op.LOAD:
            out.setdefault(s.args[0], []).append(s.args[1])
        elif isinstance(s, Store):
            out.setdefault(s.buf, []).append(s.index)
        elif isinstance(s, Loop):
            _accesses(s.body, out)


def _absorb(b: KernelBuilder, body) -> None:
    """Fill ``b``'s constant, definition and range tables from a finished body."""
    for s in body:
        if isinstance(s, Loop):
            # offsets are hoisted while planning, before any extent becomes a kernel
            # parameter (NOTE (kernel parameters), tracegrad/compiler/symbolic_params.py)
            assert isinstance(s.extent, int), s.extent
            b._ranges[s.var] = (0, max(s.extent - 1, 0))
            _absorb(b, s.body)
        elif isinstance(s, Instr) and s.dtype == INDEX:
            if s.op is Op.CONST:
                b._consts[s.out] = s.args[0]
                b._ranges[s.out] = (s.args[0], s.args[0])
            elif s.op is not Op.LOAD:
                b._defs[s.out] = (s.op, tuple(s.args))
                rng = b._index_range(s.op, s.args)
                if rng is not None:
                    b._ranges[s.out] = rng


def _buffer_offsets(kernel: LoopKernel) -> tuple[dict[str, int], frozenset]:
    """Buffer name -> offset to hoist (> 0), for buffers where that is provably safe; and
    the hoisted buffers whose offset may move (NOTE (moved offsets))."""
    b = KernelBuilder(kernel.name, kernel.outer)
    _absorb(b, kernel.body)
    accesses: dict[str, list[str]] = {}
    _accesses(kernel.body, accesses)
    offsets, movable = {}, set()
    for buf, indices in accesses.items():
        lows = []
        indices = list(dict.fromkeys(indices))
        for x in indices:
            aff = b._affine(x)
            rng = None if aff is None else b._affine_range(*aff)
            if rng is None:
                break
            lows.append(min(aff[1], rng[0]))
        else:
            if lows and min(lows) > 0:
                offsets[buf] = min(lows)
                if all(_constant_leaf(b, x) for x in indices):
                    movable.add(buf)
    return offsets, frozenset(movable)


# NOTE (moved offsets): codegen.lower reuses the kernel of one group for another that
# differs only in the base offset of the views it reads (``lower.LoweringCache``).  That
# is exact when the first kernel's body does not depend on the base: the buffer's offset
# was hoisted and each of its indices is a chain ADD(..ADD(CONST c, t1).., tn) whose
# terms have no constant part, so ``_shift`` lowers exactly that leaf.  Moving the base
# by d then moves every c and the hoisted offset by d, and while the offset stays > 0
# (so c != 0: no ADD(0, t1) was folded away) the hoisted body is the same text.
def _constant_leaf(b: KernelBuilder, x: str) -> bool:
    """Whether index ``x`` is a constant, or an ADD chain down to one on its left whose
    right operands have no constant part."""
    while x not in b._consts:
        op, args = b._defs.get(x, (None, ()))
        if op is not Op.ADD or len(args) != 2 or _const_part(b, args[1]):
            return False
        x = args[0]
    return True


def _const_part(b: KernelBuilder, x: str) -> int:
    aff = b._affine(x)
    return 0 if aff is None else aff[1]


def _shift(b: KernelBuilder, x: str, c: int) -> str:
    """An index equal to ``x - c``, made by lowering the constant leaf of ``x``'s sum (so
    its structure, and what it shares with other indices, stays as it was)."""
    if c == 0:
        return x
    if x in b._consts:
        return b.const(b._consts[x] - c, INDEX)
    op, args = b._defs.get(x, (None, ()))
    if op in (Op.ADD, Op.SUB) and len(args) == 2:
        lhs, rhs = args
        if _const_part(b, lhs):
            return b.emit(op, (_shift(b, lhs, c), rhs), INDEX)
        if _const_part(b, rhs):
            return b.emit(op, (lhs, _shift(b, rhs, c if op is Op.ADD else -c)), INDEX)
    if op is Op.MUL and len(args) == 2:
        for k, e in ((0, 1), (1, 0)):
            step = b._consts.get(args[k])
            if step and c % step == 0 and _const_part(b, args[e]):
                new = list(args)
                new[e] = _shift(b, args[e], c // step)
                return b.emit(Op.MUL, tuple(new), INDEX)
    return b.emit(Op.ADD, (x, b.const(-c, INDEX)), INDEX)


def _replay(body, b: KernelBuilder, names: dict, offsets: dict) -> None:
    """Re-emit ``body`` into ``b`` (``names``: old -> new value names), shifting the
    index of every access to a buffer in ``offsets``."""
    def arg(a):
        return names.get(a, a)
    for s in body:
        if isinstance(s, Instr):
            if s.op is Op.CONST:
                names[s.out] = b.emit(Op.CONST, s.args, s.dtype)
            elif s.op is Op.LOAD:
                buf, idx = s.args
                names[s.out] = b.emit(Op.LOAD, (buf, _shift(b, arg(idx), offsets.get(buf, 0))),
                                      s.dtype)
            else:
                names[s.out] = b.emit(s.op, tuple(arg(a) for a in s.args), s.dtype)
        elif isinstance(s, Loop):
            assert isinstance(s.extent, int), s.extent   # as in ``_absorb``
            names[s.var] = b.begin_loop(s.extent, s.var.rstrip("0123456789"))
            _replay(s.body, b, names, offsets)
            b.end_loop()
        elif isinstance(s, DefineAcc):
            names[s.acc] = b.define_acc(s.op, s.dtype, s.init)
        elif isinstance(s, AccUpdate):
            b.acc_update(arg(s.acc), arg(s.value))
        elif isinstance(s, Store):
            b.store(s.buf, _shift(b, arg(s.index), offsets.get(s.buf, 0)), arg(s.value))
        else:
            raise TypeError(f"unknown statement {s!r}")


def _uses(body, out: set) -> None:
    for s in body:
        if isinstance(s, Loop):
            _uses(s.body, out)
        elif isinstance(s, Store):
            out.update((s.index, s.value))
        elif isinstance(s, AccUpdate):
            out.add(s.value)


def _drop_dead(body: list) -> list:
    """``body`` without instructions whose values nothing stores or accumulates."""
    defs: dict[str, Instr] = {}

    def collect(stmts):
        for s in stmts:
            if isinstance(s, Instr):
                defs[s.out] = s
            elif isinstance(s, Loop):
                collect(s.body)
    collect(body)
    live: set = set()
    _uses(body, live)
    work = list(live)
    while work:
        s = defs.get(work.pop())
        if s is None or s.op in (Op.CONST, Op.ACC):
            continue
        for a in s.args[1:] if s.op is Op.LOAD else s.args:
            if a not in live:
                live.add(a)
                work.append(a)

    def keep(stmts):
        out = []
        for s in stmts:
            if isinstance(s, Instr) and s.out not in live:
                continue
            if isinstance(s, Loop):
                s = Loop(s.var, s.extent, keep(s.body))
            out.append(s)
        return out
    return keep(body)


def _renumber(body: list) -> list:
    """Names ``%0, %1, ...`` in order of use: constants when first read, others where
    defined (constants stay first in the body, in that order)."""
    consts = {s.out: s for s in body if isinstance(s, Instr) and s.op is Op.CONST}
    new: dict[str, str] = {}

    def name(old):
        if old not in new:
            new[old] = f"%{len(new)}"
        return new[old]

    def visit(stmts):
        for s in stmts:
            if isinstance(s, Instr) and s.op is not Op.CONST:
                for a in (s.args[1:] if s.op is Op.LOAD else s.args):
                    if a in consts:
                        name(a)
                name(s.out)
            elif isinstance(s, Store):
                for a in (s.index, s.value):
                    if a in consts:
                        name(a)
            elif isinstance(s, AccUpdate) and s.value in consts:
                name(s.value)
            elif isinstance(s, Loop):
                visit(s.body)
    visit(body)

    def rename(stmts):
        out: list = []
        for s in stmts:
            if isinstance(s, Instr):
                if s.op is Op.CONST:
                    continue
                args = s.args[:1] + tuple(new.get(a, a) for a in s.args[1:]) \
                    if s.op in (Op.LOAD, Op.ACC) else tuple(new.get(a, a) for a in s.args)
                out.append(Instr(new[s.out], s.op, args, s.dtype))
            elif isinstance(s, Loop):
                out.append(Loop(s.var, s.extent, rename(s.body)))
            elif isinstance(s, Store):
                out.append(Store(s.buf, new.get(s.index, s.index), new.get(s.value, s.value)))
            elif isinstance(s, AccUpdate):
                out.append(AccUpdate(s.acc, new.get(s.value, s.value)))
            else:
                out.append(s)
        return out
    head = sorted((c for c in consts if c in new), key=lambda c: int(new[c][1:]))
    return [Instr(new[c], Op.CONST, consts[c].args, consts[c].dtype) for c in head] + rename(body)
