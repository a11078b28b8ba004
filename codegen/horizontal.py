"""Horizontal fusion: independent kernels of one optimizer group become one kernel.

NOTE (horizontal fusion): an optimizer's update is one elementwise kernel per parameter
(Adam: both moments, the bias-corrected step and the parameter in one loop) plus small
ones (the step counts).  They read and write disjoint tensors, so nothing orders them but
the program's step list, and each costs a call (and a driver entry) of its own.  PyTorch's
fused Adam is one multi-tensor kernel per group; here the kernels of one *segment* (the
graph nodes one optimizer group's update recorded, chosen by the caller) become one
``LoopKernel`` with an outer extent of 1 whose body runs each original kernel's loop in
turn (its outer variable renamed into an inner loop over its old extent).  Each member's
body is kept as lowered, so the values, NaN and inf included, are those of the separate
kernels.

Members must be independent: none reads or writes storage another writes (an in-place
result and the argument it overwrites count as one storage, as do two argument positions
of one tensor).  The merged kernel runs where the last member ran, so a step between two
members may neither read what an earlier member writes nor write what it reads.  Kernels
whose work reaches ``max_work`` stay apart: the runtime splits those over its threads,
and a merged kernel runs on one (it has a single outer iteration).
"""
from __future__ import annotations

from dataclasses import replace

from .loop_ir import AccUpdate, BufferArg, DefineAcc, Instr, Loop, LoopKernel, Store
from .ops import Op
from .schedule import KernelStep, Program, Step, _plan_slots, _step_reads, _step_writes

__all__ = ["merge_segments", "ENABLED"]

# False: every kernel stays apart (benchmarks compare both; the plan cache key follows it)
ENABLED = True


def merge_segments(program: Program, segments: dict[int, int],
                   inplace: dict[int, tuple[int, ...]] | None, max_work: int) -> None:
    """Merge, in place, the kernels of ``program`` whose fused nodes all lie in one segment
    (``segments``: graph node -> segment) into one kernel per segment, then plan its temp
    slots again (merging moves reads later).  ``inplace``: as ``schedule.plan`` took it
    (the argument positions of one tensor, and the result written over them).

    >>> import numpy as np
    >>> from tracegrad.codegen.graph import Graph
    >>> from tracegrad.codegen.schedule import plan
    >>> g = Graph(); a = g.add(Op.INPUT, (), (4,), "float32", index=0)
    >>> b = g.add(Op.INPUT, (), (6,), "float32", index=1)
    >>> g.outputs = [g.add(Op.EXP, (a.id,), (4,), "float32").id,
    ...              g.add(Op.NEG, (b.id,), (6,), "float32").id]
    >>> p = plan(g); len(p.kernels)
    2
    >>> merge_segments(p, {n.id: 0 for n in p.graph.nodes}, None, 1 << 18)
    >>> [(k.name, k.ops, k.outer) for k in p.kernels]
    [('k0_horizontal2', ['EXP', 'NEG'], 1)]
    """
    storage = {name: min(group) for group in _storages(program, inplace or {})
               for name in group}

    def touched(step: Step) -> tuple[set[str], set[str]]:
        reads = {storage.get(b, b) for b in _step_reads(step)}
        return reads, {storage.get(b, b) for b in _step_writes(step)}

    fusion = program.fusion
    runs: dict[int, list[int]] = {}   # segment -> positions of its kernels in program.steps
    for pos, step in enumerate(program.steps):
        if not isinstance(step, KernelStep) or not step.groups or not 0 < step.work < max_work:
            continue
        found = {segments.get(n, -1) for ref in step.groups for n in fusion.groups[ref].members}
        if len(found) == 1 and -1 not in found:   # every node in one segment
            runs.setdefault(found.pop(), []).append(pos)
    merged: dict[int, KernelStep] = {}   # position of the merged kernel -> it
    dropped: set[int] = set()
    for positions in runs.values():
        for chosen in _independent_runs(program.steps, positions, touched):
            if len(chosen) > 1:
                members = [program.steps[p] for p in chosen]
                merged[chosen[-1]] = _merged_step([m for m in members
                                                   if isinstance(m, KernelStep)])
                dropped.update(chosen[:-1])
    if merged:
        program.steps = [merged.get(p, s) for p, s in enumerate(program.steps)
                         if p not in dropped]
        program.lowered = len({id(s.kernel.body) for s in program.kernels})
        for info in program.buffers.values():
            info.slot = None
        program.slots = []
        _plan_slots(program)


def _storages(program: Program, inplace: dict[int, tuple[int, ...]]) -> list[set[str]]:
    """Sets of buffer names bound to one memory: a tensor's argument positions and the
    result planned over them (``Storage.INPLACE``)."""
    groups = []
    for out_pos, positions in inplace.items():
        names = {program.inputs[p] for p in positions if p < len(program.inputs)}
        if out_pos < len(program.outputs):
            spec = program.outputs[out_pos]
            if spec.buffer is not None and program.buffers[spec.buffer].alias in names:
                names.add(spec.buffer)
        groups.append(names)
    return groups


def _independent_runs(steps, positions: list[int], touched) -> list[list[int]]:
    """``positions`` cut into runs whose kernels may run as one at the run's last position
    (module doc); a kernel that conflicts with the current run starts the next."""
    runs: list[list[int]] = []
    current: list[int] = []
    reads: set[str] = set()
    writes: set[str] = set()
    for pos in positions:
        r, w = touched(steps[pos])
        between_ok = True
        if current:
            for mid in range(current[-1] + 1, pos):
                mr, mw = touched(steps[mid])
                if writes & (mr | mw) or reads & mw:
                    between_ok = False
                    break
        if current and between_ok and not (w & (reads | writes) or r & writes):
            current.append(pos)
            reads |= r
            writes |= w
        else:
            if current:
                runs.append(current)
            current, reads, writes = [pos], set(r), set(w)
    if current:
        runs.append(current)
    return runs


def _merged_step(steps: list[KernelStep]) -> KernelStep:
    """One kernel step that runs the kernels of ``steps`` one after another."""
    buffers: list[BufferArg] = []
    bound: list[str] = []
    nodes: list[int] = []
    movable: set[str] = set()
    slot_of: dict[tuple[str, int], str] = {}   # (program buffer, offset) -> parameter
    body: list = []
    ops: list[str] = []
    for k, step in enumerate(steps):
        kernel = step.kernel
        names: dict[str, str] = {}
        for arg, buf, node in zip(kernel.buffers, step.buffers,
                                  kernel.buffer_nodes or [-1] * len(step.buffers)):
            key = (buf, arg.offset)
            if key not in slot_of:
                slot_of[key] = f"buf{len(buffers)}"
                buffers.append(replace(arg, name=slot_of[key]))
                bound.append(buf)
                if node >= 0:
                    nodes.append(node)
            elif arg.is_output:
                index = bound.index(buf)
                buffers[index] = replace(buffers[index], is_output=True)
            names[arg.name] = slot_of[key]
            if arg.name in kernel.movable:
                movable.add(slot_of[key])
        rename = _Renamer(names, f"_h{k}")
        var = f"h{k}"
        rename.values[kernel.outer_var] = var
        body.append(Loop(var, kernel.outer, [rename.stmt(s) for s in kernel.body]))
        ops += kernel.ops
    first = steps[0]
    name = f"{first.name.split('_', 1)[0]}_horizontal{len(steps)}"
    kernel = LoopKernel(name, buffers, 1, body, ops=ops,
                        work=sum(s.kernel.work for s in steps),
                        buffer_nodes=nodes if len(nodes) == len(buffers) else [],
                        movable=frozenset(movable))
    groups = tuple(ref for s in steps for ref in s.groups)
    return KernelStep(name, kernel, bound, str(kernel), groups)


class _Renamer:
    """Copies statements with every value, loop variable and accumulator given a suffix
    (the members' names would collide) and buffers renamed to the merged parameters."""

    def __init__(self, buffers: dict[str, str], suffix: str):
        self.buffers, self.suffix = buffers, suffix
        self.values: dict[str, str] = {}

    def name(self, value):
        if not isinstance(value, str):
            return value
        return self.values.setdefault(value, value + self.suffix)

    def stmt(self, s):
        if isinstance(s, Instr):
            if s.op is Op.CONST:
                return Instr(self.name(s.out), s.op, s.args, s.dtype)
            args = tuple(self.buffers[a] if i == 0 and s.op is Op.LOAD else self.name(a)
                         for i, a in enumerate(s.args))
            return Instr(self.name(s.out), s.op, args, s.dtype)
        if isinstance(s, Loop):
            return Loop(self.name(s.var), self.name(s.extent),
                        [self.stmt(t) for t in s.body])
        if isinstance(s, DefineAcc):
            return DefineAcc(self.name(s.acc), s.op, s.dtype, s.init)
        if isinstance(s, AccUpdate):
            return AccUpdate(self.name(s.acc), self.name(s.value))
        if isinstance(s, Store):
            return Store(self.buffers[s.buf], self.name(s.index), self.name(s.value))
        raise TypeError(f"horizontal fusion: unknown statement {s!r}")
