"""Kernels whose text would hold a length read it from a small constant buffer instead.

NOTE (length parameters): an unrolled loop's program at another length repeats most
kernels (NOTE (group keys), NOTE (slot copies)), but two kinds still held the length in
their text, so each new length rendered and compiled them again: a copy that reorders a
stack (an RNN's ``(B, T, F)`` input made time-major: a stride ``T*F``) and a sum over
leading dims (a bias gradient over ``T*B`` rows: the loop's extent).  Such a kernel loads
those integers from a ``lens`` buffer (``Storage.CONSTANT``, ``BufferInfo.value``), as a
symbolic kernel loads its size parameters (NOTE (kernel parameters) in
tracegrad/compiler/symbolic_params.py): one text, rendered and compiled once, serves
every length, and LLVM hoists the loads out of the loops.  Only what costs nothing at run
time moves: the extent of a reduction over leading dims (its rows are strided loads
anyway) and, in a copy that reads no more than it writes, the multipliers of index terms
that no inner loop variable reaches (computed once per outer iteration).  Divisors stay
constants (a division by a run-time value is slow), and copies that repeat their source
(im2col) stay as they are: ``runtime.copy_table`` turns those into a table gather.
LSTM over lengths 4, 8, 12, 16 (B=16 in=32 h=64): new kernel sources per later length
3 -> 1 (4 before NOTE (slot copies)); with both, the cold compile of the four lengths took
873 ms of CPU instead of 1048 (lengths 2-4: 469 instead of 644; medians of 5 interleaved
runs in one process at load 7, CPU time since the wall time doubled under that load).

``inline_lengths`` gives the kernel back with its constants, for a backend that takes
no run-time extent (the CUDA renderer: ``schedule.without_lengths``).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .loop_ir import INDEX, AccUpdate, BufferArg, Instr, Loop, LoopKernel, Store
from .ops import MOVEMENT, Op

LENS = "lens"   # the kernel parameter holding its lengths
_MOVEMENT_NAMES = frozenset(op.name for op in MOVEMENT)


def _deps(body, defs: dict[str, frozenset[str]], loop_vars: frozenset[str]) -> None:
    """``defs``: value -> the loop variables it depends on (transitively)."""
    for s in body:
        if isinstance(s, Instr):
            got: set[str] = set()
            if s.op is not Op.CONST:
                for a in s.args:
                    if isinstance(a, str):
                        got |= {a} & loop_vars or defs.get(a, frozenset())
            defs[s.out] = frozenset(got)
        elif isinstance(s, Loop):
            _deps(s.body, defs, loop_vars | {s.var})


def _walk(body):
    for s in body:
        yield s
        if isinstance(s, Loop):
            yield from _walk(s.body)


def _operands(s) -> tuple:
    if isinstance(s, Instr):
        return s.args
    if isinstance(s, Loop):
        return (s.extent,)
    if isinstance(s, Store):
        return (s.index, s.value)
    if isinstance(s, AccUpdate):
        return (s.value,)
    return ()


def _outer_multipliers(kernel: LoopKernel) -> set[str]:
    """CONST values used only as MUL operands beside a value no loop variable reaches."""
    defs: dict[str, frozenset[str]] = {}
    _deps(kernel.body, defs, frozenset())
    loop_vars = {s.var for s in _walk(kernel.body) if isinstance(s, Loop)}
    consts = {s.out for s in _walk(kernel.body)
              if isinstance(s, Instr) and s.op is Op.CONST and s.dtype == INDEX}
    bad: set[str] = set()
    for s in _walk(kernel.body):
        uses = [a for a in _operands(s) if isinstance(a, str) and a in consts]
        if not uses:
            continue
        if isinstance(s, Instr) and s.op is Op.MUL and len(uses) == 1:
            other = s.args[1] if s.args[0] == uses[0] else s.args[0]
            if other not in loop_vars and not defs.get(other):
                continue
        bad.update(uses)
    return consts - bad


def _is_copy(kernel: LoopKernel) -> bool:
    if not kernel.ops or not set(kernel.ops) <= _MOVEMENT_NAMES or len(kernel.buffers) != 2:
        return False
    src, dst = kernel.buffers
    return not src.is_output and dst.is_output and dst.size <= src.size


def _reduce_loops(body) -> list[Loop]:
    return [s for s in body if isinstance(s, Loop) and s.var.startswith("r")
            and isinstance(s.extent, int)]


# id(original body) -> (original body, body with lengths loaded, the lengths), or
# (original body, None, None) when it loads none
_SIZED: dict[int, tuple[list, list | None, np.ndarray | None]] = {}
_SIZED_MAX = 4096


def with_lengths(kernel: LoopKernel, leading_reduction: bool) -> tuple[LoopKernel, np.ndarray] | None:
    """(``kernel`` loading its lengths from a ``lens`` parameter appended to its buffers,
    their values) when it is one of the kinds NOTE (length parameters) names;
    ``leading_reduction``: its group reduces leading dims.  None otherwise."""
    if not leading_reduction and not _is_copy(kernel):
        return None   # (most kernels: decided without walking the body)
    hit = _SIZED.get(id(kernel.body))
    if hit is None or hit[0] is not kernel.body:
        if len(_SIZED) >= _SIZED_MAX:
            _SIZED.clear()
        made = _sized_body(kernel, leading_reduction)
        hit = _SIZED[id(kernel.body)] = (kernel.body, *(made or (None, None)))
    _, body, values = hit
    if body is None or values is None:
        return None
    out = replace(kernel, body=body,
                  buffers=kernel.buffers + [BufferArg(LENS, np.dtype(np.int64), len(values), False)])
    out.buffer_nodes = kernel.buffer_nodes + [-1] if kernel.buffer_nodes else []
    return out, values


def _sized_body(kernel: LoopKernel, leading_reduction: bool) -> tuple[list, np.ndarray] | None:
    if any(isinstance(s, Instr) and s.op is Op.LOAD and s.args[0] == LENS
           for s in _walk(kernel.body)):
        return None
    consts = _outer_multipliers(kernel) if _is_copy(kernel) else set()
    loops = _reduce_loops(kernel.body) if leading_reduction else []
    if not consts and not loops:
        return None
    values: list[int] = []
    prelude: list = []

    def load(out: str, value: int) -> Instr:
        index = f"%lk{len(values)}"
        prelude.append(Instr(index, Op.CONST, (len(values),), INDEX))
        values.append(int(value))
        return Instr(out, Op.LOAD, (LENS, index), INDEX)

    extents = {id(loop): f"%le{k}" for k, loop in enumerate(loops)}
    for loop in loops:
        assert isinstance(loop.extent, int)   # (``_reduce_loops`` takes those only)
        prelude.append(load(extents[id(loop)], loop.extent))

    def rewrite(body: list) -> list:
        out: list = []
        for s in body:
            if isinstance(s, Instr) and s.out in consts:
                out.append(load(s.out, s.args[0]))
            elif isinstance(s, Loop):
                out.append(Loop(s.var, extents.get(id(s), s.extent), rewrite(s.body)))
            else:
                out.append(s)
        return out
    body = rewrite(kernel.body)
    return prelude + body, np.array(values, np.int64)


def inline_lengths(kernel: LoopKernel, values: np.ndarray) -> LoopKernel:
    """``kernel`` (made by ``with_lengths``) with each load from its ``lens`` parameter
    (holding ``values``) a constant again and that parameter gone."""
    index = {s.out: s.args[0] for s in _walk(kernel.body)
             if isinstance(s, Instr) and s.op is Op.CONST and s.out.startswith("%lk")}
    loaded = {s.out: int(values[index[s.args[1]]]) for s in _walk(kernel.body)
              if isinstance(s, Instr) and s.op is Op.LOAD and s.args[0] == LENS}

    def rewrite(body: list) -> list:
        out: list = []
        for s in body:
            if isinstance(s, Instr) and (s.out in index or s.out.startswith("%le")):
                continue
            if isinstance(s, Instr) and s.out in loaded:
                out.append(Instr(s.out, Op.CONST, (loaded[s.out],), INDEX))
            elif isinstance(s, Loop):
                extent = loaded[s.extent] if isinstance(s.extent, str) and s.extent.startswith(
                    "%le") else s.extent
                out.append(Loop(s.var, extent, rewrite(s.body)))
            else:
                out.append(s)
        return out
    keep = [k for k, a in enumerate(kernel.buffers) if a.name != LENS]
    out = replace(kernel, body=rewrite(kernel.body), buffers=[kernel.buffers[k] for k in keep])
    out.buffer_nodes = [kernel.buffer_nodes[k] for k in keep] if kernel.buffer_nodes else []
    return out
