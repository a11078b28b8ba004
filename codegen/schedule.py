"""``plan(graph) -> Program``: passes, fusion, lowering, rendering and buffer planning.

A ``Program`` is pure data (no compiled code): the runtime executor
(``runtime.cpu_program.CompiledProgram``) compiles its kernel sources and runs its steps.

Buffers: graph inputs arrive with each call; graph outputs are allocated fresh on every
call; every other materialised value (a kernel output read by a later step, a matmul
result) lives in a *slot* of raw bytes planned here, reused by later values once its
last reader has run (lifetimes never overlap, so a kernel never reads and writes one
slot: its ``noalias`` parameters stay true).

>>> from tracegrad.codegen.ops import Op
>>> g = Graph(); x = g.add(Op.INPUT, (), (8,), "float32", index=0)
>>> g.outputs = [g.add(Op.EXP, (x.id,), (8,), "float32").id]
>>> p = plan(g); [k.ops for k in p.kernels]
[['EXP']]
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .fuse import Fusion, fuse
from .graph import Graph, Node
from .loop_ir import LoopKernel
from .lower import LoweringCache
from .ops import MOVEMENT, Op
from .passes import simplify
from .render_llvm import render_llvm
from .view import ShapeTracker


@dataclass
class BufferInfo:
    """One materialised value: ``kind`` is "input" (``index`` = argument), "output"
    (``index`` = result position, fresh per call) or "temp" (bytes at ``slot``)."""
    name: str
    node: int
    shape: tuple[int, ...]
    dtype: np.dtype
    kind: str
    index: int = -1
    slot: int = -1


@dataclass
class KernelStep:
    name: str
    ops: list[str]
    loop_ir: str
    source: str
    kernel: LoopKernel
    buffers: list[str]               # program buffer names bound to buf0, buf1, ...
    scalars: list[float]
    outer: int
    work: int


@dataclass
class ExternStep:
    node: Node
    inputs: list[tuple[str, ShapeTracker | None]]  # buffer and the view read from it
    output: str | None               # planned buffer (MATMUL writes into it) or None


@dataclass
class OutputSpec:
    """How result ``k`` is produced: "buffer" (``buffer``), "input" (argument ``index``),
    "const" (``value`` filled into ``shape``) or "view" (``view`` of ``buffer``, copied)."""
    kind: str
    shape: tuple[int, ...]
    dtype: np.dtype
    buffer: str | None = None
    index: int = -1
    value: object = None
    view: ShapeTracker | None = None


@dataclass
class Program:
    graph: Graph                     # after passes
    traced: Graph                    # as handed in
    fusion: Fusion
    steps: list                      # KernelStep | ExternStep, in run order
    buffers: dict[str, BufferInfo]
    inputs: list[str]
    outputs: list[OutputSpec]
    slots: list[int] = field(default_factory=list)   # bytes of each temp slot
    lowered: int = 0                 # groups lowered; the other kernels reused one

    @property
    def kernels(self) -> list[KernelStep]:
        return [s for s in self.steps if isinstance(s, KernelStep)]

    @property
    def externs(self) -> list[ExternStep]:
        return [s for s in self.steps if isinstance(s, ExternStep)]

    @property
    def groups(self) -> list[list[str]]:
        """Primitive names fused into each kernel, in run order."""
        return [k.ops for k in self.kernels]

    def __str__(self) -> str:
        lines = ["# graph (after passes)", str(self.graph), "", "# steps"]
        for s in self.steps:
            if isinstance(s, KernelStep):
                # a buffer taken at an element offset (NOTE (hoisted offsets)) shows it
                bound = [b + (f"+{a.offset}" if a.offset else "")
                         for b, a in zip(s.buffers, s.kernel.buffers)]
                lines.append(f"kernel {s.name}: ops={'+'.join(s.ops)} outer={s.outer} "
                             f"work={s.work} buffers={bound}")
            else:
                ins = ", ".join(b + ("" if v is None else f" view {v}") for b, v in s.inputs)
                lines.append(f"extern {s.node.op.name}(%{s.node.id}) <- {ins} -> {s.output}")
        lines.append(f"temp slots (bytes): {self.slots}")
        for s in self.kernels:
            lines += ["", f"# loop IR {s.name}", s.loop_ir]
        return "\n".join(lines)


# Tests set this: every kernel reused for a repeated group is also lowered afresh and
# compared (``lower.LoweringCache``).
CHECK_REUSE = False


def _kernel_name(k: int, kernel_ops: list[str]) -> str:
    words = [op.lower() for op in kernel_ops if op not in ("RESHAPE", "EXPAND", "PERMUTE")]
    return f"k{k}_" + "_".join(dict.fromkeys(words))[:40].rstrip("_")


def plan(graph: Graph) -> Program:
    """Simplify, fuse, lower and render ``graph``; plan its buffers.  See module doc."""
    g = simplify(graph)
    fusion = fuse(g)
    outputs_of = {}
    for k, o in enumerate(g.outputs):
        outputs_of.setdefault(o, k)
    buffers: dict[str, BufferInfo] = {}
    name_of: dict[int, str] = {}

    def materialise(node_id: int) -> str:
        if node_id not in name_of:
            node = g.node(node_id)
            if node.op is Op.INPUT:
                info = BufferInfo(f"in{node.attrs.get('index', 0)}", node_id, node.shape,
                                  node.dtype, "input", g.inputs.index(node_id))
            elif node_id in outputs_of:
                info = BufferInfo(f"out{outputs_of[node_id]}", node_id, node.shape, node.dtype,
                                  "output", outputs_of[node_id])
            else:
                info = BufferInfo(f"t{node_id}", node_id, node.shape, node.dtype, "temp")
            buffers[info.name] = info
            name_of[node_id] = info.name
        return name_of[node_id]

    for i in g.inputs:
        materialise(i)
    steps = []
    rendered: dict[str, tuple[str, str]] = {}  # loop IR without the name -> (name, source)
    lowering = LoweringCache(check=CHECK_REUSE)
    texts: dict[int, str] = {}   # id(kernel body) -> loop IR after the name
    n_kernels = 0
    for kind, ref in fusion.steps:
        if kind == "group":
            group = fusion.groups[ref]
            ops = [g.node(n).op.name for n in group.members]
            name = _kernel_name(n_kernels, ops)
            n_kernels += 1
            kernel = lowering.lower(g, group, name, fusion.edges)
            bound = [materialise(n) for n in kernel.buffer_nodes]
            # a reused kernel shares its body and prints the same after the name
            rest = texts.get(id(kernel.body))
            if rest is None:
                rest = texts[id(kernel.body)] = str(kernel).split("(", 1)[1]
            text = f"kernel {name}({rest}"
            steps.append(KernelStep(name, kernel.ops, text, _render(kernel, text, rendered),
                                    kernel, bound, [], kernel.outer, kernel.work))
        else:
            node = g.node(ref)
            ins = []
            for i in node.inputs:
                src = g.node(i)
                if src.op in MOVEMENT and i not in fusion.group_of:
                    ins.append((materialise(src.inputs[0]), src.attrs["view"]))
                elif src.op is Op.CONST:
                    ins.append((f"const:{src.attrs['value']!r}:{src.dtype.str}", None))
                else:
                    ins.append((materialise(i), None))
            planned = node.op is Op.MATMUL and node.dtype in (np.float32, np.float64)
            out = materialise(ref)
            steps.append(ExternStep(node, ins, out if planned else None))
            if not planned:
                buffers[out].slot = -2  # produced by extern_eval, not planned
    outputs = []
    for o in g.outputs:
        node = g.node(o)
        if node.op is Op.INPUT:
            outputs.append(OutputSpec("input", node.shape, node.dtype, index=g.inputs.index(o)))
        elif node.op is Op.CONST:
            outputs.append(OutputSpec("const", node.shape, node.dtype, value=node.attrs["value"]))
        elif node.op in MOVEMENT and o not in fusion.group_of:
            base = g.node(node.inputs[0])
            if base.op is Op.CONST:
                outputs.append(OutputSpec("const", node.shape, node.dtype,
                                          value=base.attrs["value"], view=node.attrs["view"]))
            else:
                outputs.append(OutputSpec("view", node.shape, node.dtype,
                                          buffer=materialise(base.id), view=node.attrs["view"]))
        else:
            outputs.append(OutputSpec("buffer", node.shape, node.dtype, buffer=materialise(o)))
    program = Program(g, graph, fusion, steps, buffers,
                      [name_of[i] for i in g.inputs], outputs, lowered=lowering.lowered)
    _plan_slots(program)
    return program


def _render(kernel: LoopKernel, text: str, rendered: dict) -> str:
    """``render_llvm(kernel)``, once per loop-IR text: an unrolled loop repeats its
    kernels (NOTE (hoisted offsets)), which then differ only in their names."""
    key = text.split("(", 1)[1]
    hit = rendered.get(key)
    if hit is not None and hit[1].count(f'@"{hit[0]}"') == 1:
        return hit[1].replace(f'@"{hit[0]}"', f'@"{kernel.name}"')
    source = render_llvm(kernel)
    rendered[key] = (kernel.name, source)
    return source


def _step_reads(step) -> list[str]:
    if isinstance(step, KernelStep):
        return [b for b, arg in zip(step.buffers, step.kernel.buffers) if not arg.is_output]
    return [b for b, _ in step.inputs]


def _step_writes(step) -> list[str]:
    if isinstance(step, KernelStep):
        return [b for b, arg in zip(step.buffers, step.kernel.buffers) if arg.is_output]
    return [step.output] if step.output else []


def _plan_slots(program: Program) -> None:
    """Assign each planned temp a slot; a slot is reused once its last reader has run."""
    last_use: dict[str, int] = {}
    end = len(program.steps)
    for k, step in enumerate(program.steps):
        for b in _step_reads(step):
            last_use[b] = k
    for spec in program.outputs:
        if spec.buffer is not None:
            last_use[spec.buffer] = end
    free: list[int] = []
    busy: list[tuple[int, int]] = []   # (last use, slot)
    for k, step in enumerate(program.steps):
        for entry in [e for e in busy if e[0] < k]:
            busy.remove(entry)
            free.append(entry[1])
        for b in _step_writes(step):
            info = program.buffers[b]
            if info.kind != "temp":
                continue
            nbytes = max(int(np.prod(info.shape, dtype=np.int64)) * info.dtype.itemsize, 1)
            fits = [s for s in free if program.slots[s] >= nbytes]
            if fits:
                slot = min(fits, key=lambda s: program.slots[s])
                free.remove(slot)
            elif free:  # grow the largest free slot rather than add one
                slot = max(free, key=lambda s: program.slots[s])
                free.remove(slot)
                program.slots[slot] = nbytes
            else:
                slot = len(program.slots)
                program.slots.append(nbytes)
            info.slot = slot
            busy.append((last_use.get(b, k), slot))
