"""``plan(graph) -> Program``: passes, fusion, lowering and buffer planning.

A ``Program`` is typed, backend-neutral data: loop kernels (``KernelStep``), extern calls
(``ExternStep``, whose constant operands are ``Constant`` values, never strings) and
buffers whose storage is a named ``Storage``. It holds no source text: each backend's
runtime renders and names the kernels (``runtime.cpu_program`` renders LLVM IR;
``explain(backend="cuda")`` renders CUDA C from the same program).

Buffers: graph inputs arrive with each call; graph outputs are allocated fresh on every
call; every other materialised value (a kernel output read by a later step, a matmul
result) lives in a *slot* of raw bytes planned here, reused by later values once its
last reader has run (lifetimes never overlap, so a kernel never reads and writes one
slot: its ``noalias`` parameters stay true). A value computed by an extern call that
NumPy evaluates (a gather, a float16 op) is the array that call returns.

>>> from tracegrad.codegen.ops import Op
>>> g = Graph(); x = g.add(Op.INPUT, (), (8,), "float32", index=0)
>>> g.outputs = [g.add(Op.EXP, (x.id,), (8,), "float32").id]
>>> p = plan(g); [k.ops for k in p.kernels], p.buffers["out0"].storage
([['EXP']], <Storage.FRESH: 'fresh'>)
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal, Union

import numpy as np

from .fuse import Fusion, fuse
from .graph import Graph, GraphNode, shape_numel
from .loop_ir import LoopKernel
from .lower import LoweringCache
from .matmul_transpose import transpose_matmul_outputs
from .ops import ELEMENTWISE, MOVEMENT, REDUCE, Op
from .passes import simplify
from .size_params import LENS, inline_lengths, with_lengths
from .slot_copies import concat_pieces, slot_copy_kernels
from .sink_permutes import sink_permutes
from .view import ShapeTracker


class Storage(enum.Enum):
    """Where a buffer's memory comes from."""
    ARGUMENT = "argument"   # the caller's input array
    FRESH = "fresh"         # a result: allocated anew at every call
    SLOT = "slot"           # planned bytes reused across calls (``BufferInfo.slot``)
    RETURNED = "returned"   # the array the extern step that computes it returns
    INPLACE = "inplace"     # a result written over an argument (``BufferInfo.alias``)
    CONSTANT = "constant"   # ``BufferInfo.value``, fixed for the program's life (a symbolic
                            # kernel's parameters, tracegrad.compiler.symbolic_params)


@dataclass
class BufferInfo:
    """One materialised value: ``kind`` is its role ("input": argument ``index``;
    "output": result ``index``; "temp"), ``storage`` where its memory comes from."""
    name: str
    node: int
    shape: tuple[int, ...]
    dtype: np.dtype
    kind: Literal["input", "output", "temp"]
    storage: Storage
    index: int | None = None
    slot: int | None = None          # with Storage.SLOT, once planned
    alias: str | None = None         # with Storage.INPLACE: the argument buffer it overwrites
    value: np.ndarray | None = None  # with Storage.CONSTANT: the contents

    @property
    def nbytes(self) -> int:
        return shape_numel(self.shape) * self.dtype.itemsize


@dataclass
class KernelStep:
    """A fused loop kernel; ``buffers`` are the program buffers bound to its parameters."""
    name: str
    kernel: LoopKernel
    buffers: list[str]
    loop_ir: str                     # ``str(kernel)``, shared by kernels reused for a group
    groups: tuple[int, ...] = ()     # the fusion groups it computes (several: codegen.horizontal)

    @property
    def ops(self) -> list[str]:
        return self.kernel.ops

    @property
    def outer(self) -> int:
        return self.kernel.outer

    @property
    def work(self) -> int:
        return self.kernel.work


@dataclass(frozen=True)
class BufferRead:
    """An extern operand read from ``buffer``, through ``view`` when it is not None."""
    buffer: str
    view: ShapeTracker | None = None


@dataclass(frozen=True)
class Constant:
    """An extern operand that is a constant (any float: inf and nan included)."""
    value: float | int | bool
    dtype: np.dtype

    def array(self) -> np.ndarray:
        return np.array(self.value, dtype=self.dtype)


ExternInput = Union[BufferRead, Constant]


@dataclass
class ExternStep:
    """A node computed outside generated code. With ``fills_output`` (a float MATMUL) the
    runtime writes into ``output``'s planned buffer; otherwise ``output`` is the array
    the call returns (``Storage.RETURNED``)."""
    node: GraphNode
    inputs: list[ExternInput]
    output: str
    fills_output: bool


Step = Union[KernelStep, ExternStep]


@dataclass
class OutputSpec:
    """How result ``k`` is produced: "buffer" (``buffer``), "input" (argument ``index``),
    "const" (``value`` filled into ``shape``) or "view" (``view`` of ``buffer``, copied)."""
    kind: Literal["buffer", "input", "const", "view"]
    shape: tuple[int, ...]
    dtype: np.dtype
    buffer: str | None = None
    index: int | None = None
    value: float | int | bool | None = None
    view: ShapeTracker | None = None


@dataclass
class Program:
    graph: Graph                     # after passes
    traced: Graph                    # as handed in
    fusion: Fusion
    steps: list[Step]                # in run order
    buffers: dict[str, BufferInfo]
    inputs: list[str]
    outputs: list[OutputSpec]
    slots: list[int] = field(default_factory=list)   # bytes of each temp slot
    lowered: int = 0                 # distinct kernel bodies; the other kernels reuse one

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
                ins = ", ".join(_describe(a) for a in s.inputs)
                lines.append(f"extern {s.node.op.name}(%{s.node.id}) <- {ins} -> {s.output}")
        lines.append(f"temp slots (bytes): {self.slots}")
        for s in self.kernels:
            lines += ["", f"# loop IR {s.name}", s.loop_ir]
        return "\n".join(lines)


def _describe(arg: ExternInput) -> str:
    if isinstance(arg, Constant):
        return f"const {arg.value!r}:{arg.dtype.name}"
    return arg.buffer + ("" if arg.view is None else f" view {arg.view}")


# Tests set this: every kernel reused for a repeated group is also lowered afresh and
# compared (``lower.LoweringCache``).
CHECK_REUSE = False

# One cache for every plan of the process: the programs of one function at several sizes
# (an RNN over sequence lengths) repeat the same kernels (NOTE (buffer sizes in group
# keys)), and a group key describes all that lowering reads, so sharing is safe anywhere.
_LOWERING = LoweringCache()


# A reused kernel shares its body (``lower.LoweringCache``) and prints the same after its
# name given the same loop and buffers (a reuse changes only their sizes and offsets, and
# the text shows no offset): every plan of the process, an RNN's at each length, formats
# each body once per distinct buffer list. The entry holds the body, so its id stays its own.
_TEXTS: dict[tuple, tuple[list, str]] = {}
_TEXTS_MAX = 8192


def _text_after_name(kernel: LoopKernel) -> str:
    """``str(kernel)`` after the kernel's name and its opening parenthesis."""
    key = (id(kernel.body), kernel.outer, kernel.outer_var,
           tuple((a.name, a.dtype.str, a.size, a.is_output) for a in kernel.buffers))
    hit = _TEXTS.get(key)
    if hit is None or hit[0] is not kernel.body:
        if len(_TEXTS) >= _TEXTS_MAX:
            _TEXTS.clear()
        hit = _TEXTS[key] = (kernel.body, str(kernel).split("(", 1)[1])
    return hit[1]


def without_lengths(step: KernelStep, buffers: dict[str, BufferInfo]) -> KernelStep:
    """``step`` with its lengths constants again (NOTE (length parameters)), for a backend
    whose kernels take no run-time extent (CUDA); ``step`` itself when it loads none."""
    names = [a.name for a in step.kernel.buffers]
    if LENS not in names:
        return step
    k = names.index(LENS)
    values = buffers[step.buffers[k]].value
    assert values is not None, step.buffers[k]
    kernel = inline_lengths(step.kernel, values)
    return KernelStep(step.name, kernel, step.buffers[:k] + step.buffers[k + 1:],
                      f"kernel {step.name}({_text_after_name(kernel)}", step.groups)


def _kernel_name(k: int, kernel_ops: list[str]) -> str:
    words = [op.lower() for op in kernel_ops if op not in ("RESHAPE", "EXPAND", "PERMUTE")]
    return f"k{k}_" + "_".join(dict.fromkeys(words))[:40].rstrip("_")


def plan(graph: Graph, inplace: dict[int, tuple[int, ...]] | None = None) -> Program:
    """Simplify, fuse and lower ``graph``; plan its buffers.  See module doc.

    ``inplace`` maps result positions to the argument positions the caller is about to
    overwrite with that result anyway (an optimizer's parameter update): the argument
    written first, then every other argument over the same storage (a parameter captured
    twice). Where it is safe (``_place_in_inputs``) the kernel writes the result over it."""
    g = transpose_matmul_outputs(simplify(sink_permutes(graph)))
    fusion = fuse(g)
    g = fusion.graph   # fusion may rewrite the graph (codegen.view_copies)
    outputs_of: dict[int, int] = {}
    for k, o in enumerate(g.outputs):
        outputs_of.setdefault(o, k)
    buffers: dict[str, BufferInfo] = {}
    name_of: dict[int, str] = {}

    def materialise(node_id: int) -> str:
        if node_id not in name_of:
            node = g.node(node_id)
            if node.op is Op.INPUT:
                info = BufferInfo(f"in{node.attrs.get('index', 0)}", node_id, node.shape,
                                  node.dtype, "input", Storage.ARGUMENT, g.inputs.index(node_id))
            elif node_id in outputs_of:
                info = BufferInfo(f"out{outputs_of[node_id]}", node_id, node.shape, node.dtype,
                                  "output", Storage.FRESH, outputs_of[node_id])
            else:
                info = BufferInfo(f"t{node_id}", node_id, node.shape, node.dtype, "temp",
                                  Storage.SLOT)
            buffers[info.name] = info
            name_of[node_id] = info.name
        return name_of[node_id]

    for i in g.inputs:
        materialise(i)
    steps: list[Step] = []
    lowering = _LOWERING
    lowering.check = CHECK_REUSE
    n_kernels = 0
    for kind, ref in fusion.steps:
        if kind == "group":
            group = fusion.groups[ref]
            pieces = concat_pieces(g, group, fusion.edges)
            if pieces is not None:   # NOTE (slot copies)
                out = materialise(group.root)
                for piece, _, _, kernel in slot_copy_kernels(g, group.root, pieces, n_kernels):
                    steps.append(KernelStep(kernel.name, kernel, [materialise(piece), out],
                                            f"kernel {kernel.name}({_text_after_name(kernel)}",
                                            (ref,)))
                n_kernels += len(pieces)
                continue
            ops = [g.node(n).op.name for n in group.members]
            name = _kernel_name(n_kernels, ops)
            n_kernels += 1
            kernel = lowering.lower(g, group, name, fusion.edges)
            bound = [materialise(n) for n in kernel.buffer_nodes]
            sized = with_lengths(kernel, bool(group.reductions) and not group.trailing)
            if sized is not None:   # NOTE (length parameters)
                kernel, values = sized
                bound.append(f"{name}.{LENS}")
                buffers[bound[-1]] = BufferInfo(bound[-1], -1, values.shape, values.dtype,
                                                "temp", Storage.CONSTANT, value=values)
            steps.append(KernelStep(name, kernel, bound, f"kernel {name}({_text_after_name(kernel)}",
                                    (ref,)))
        else:
            node = g.node(ref)
            ins: list[ExternInput] = []
            for i in node.inputs:
                src = g.node(i)
                if src.op in MOVEMENT and i not in fusion.group_of:
                    ins.append(BufferRead(materialise(src.inputs[0]), src.attrs["view"]))
                elif src.op is Op.CONST:
                    ins.append(Constant(src.attrs["value"], src.dtype))
                else:
                    ins.append(BufferRead(materialise(i)))
            fills = node.op is Op.MATMUL and node.dtype in (np.float32, np.float64)
            out = materialise(ref)
            steps.append(ExternStep(node, ins, out, fills))
            if not fills:
                buffers[out].storage = Storage.RETURNED
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
                      [name_of[i] for i in g.inputs], outputs,
                      lowered=len({id(s.kernel.body) for s in steps if isinstance(s, KernelStep)}))
    _plan_slots(program)
    if inplace:
        _place_in_inputs(program, inplace)
    # NOTE (edges end with planning): the input edges were fusion's and lowering's working
    # set (a ShapeTracker per read); nothing reads them after this, and kept they were a
    # sixth of a planned program's pickle (plan cache) and of what a symbolic fit walks
    fusion.edges = {}
    return program


def _place_in_inputs(program: Program, inplace: dict[int, tuple[int, ...]]) -> None:
    """NOTE (in-place results): a result may overwrite argument ``a`` when the one kernel
    that computes it reads ``a`` only through elementwise ops of its own shape (element
    ``i`` is read before element ``i`` is written, and no other element is), has no
    reduction (whose loop could read other rows after a write), and no later step reads
    ``a``'s storage under any of its argument positions (a value recomputed after the
    update, codegen.recompute, would read the new value). Both are then bound to the same
    pointer; the ``noalias`` promise is kept in effect because no element is read after
    it was written."""
    g, fusion = program.graph, program.fusion
    readers: dict[int, list[GraphNode]] = {}
    for node in g.nodes:
        for i in node.inputs:
            readers.setdefault(i, []).append(node)
    claimed: set[str] = set()
    for out_pos, (in_pos, *same_storage) in inplace.items():
        spec = program.outputs[out_pos]
        if (spec.kind != "buffer" or spec.buffer is None
                or any(p >= len(g.inputs) for p in (in_pos, *same_storage))):
            continue
        info = program.buffers[spec.buffer]
        arg = g.node(g.inputs[in_pos])
        names = {program.inputs[p] for p in (in_pos, *same_storage)}
        if (info.storage is not Storage.FRESH or info.index != out_pos
                or info.shape != arg.shape or info.dtype != arg.dtype
                or names & claimed or any(o.buffer in names for o in program.outputs)
                or any(o.kind == "input" and o.index in (in_pos, *same_storage)
                       for o in program.outputs)):
            continue
        group = fusion.group_of.get(info.node)
        writers = [k for k, step in enumerate(program.steps) if spec.buffer in _step_writes(step)]
        if group is None or len(writers) != 1:
            continue   # (several: slot copies, whose sources are no elementwise read)
        writer = writers[0]
        users = [u for p in (in_pos, *same_storage) for u in readers.get(g.inputs[p], [])]
        if any(fusion.group_of.get(u.id) == group
               and (u.op not in ELEMENTWISE or u.shape != arg.shape) for u in users):
            continue
        if any(names & set(_step_reads(step)) for step in program.steps[writer + 1:]):
            continue
        if any(g.node(n).op in REDUCE for n in fusion.groups[group].members):
            continue
        info.storage, info.alias = Storage.INPLACE, program.inputs[in_pos]
        claimed |= names


def _step_reads(step: Step) -> list[str]:
    if isinstance(step, KernelStep):
        return [b for b, arg in zip(step.buffers, step.kernel.buffers) if not arg.is_output]
    return [a.buffer for a in step.inputs if isinstance(a, BufferRead)]


def _step_writes(step: Step) -> list[str]:
    if isinstance(step, KernelStep):
        return [b for b, arg in zip(step.buffers, step.kernel.buffers) if arg.is_output]
    return [step.output] if step.fills_output else []


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
            if info.storage is not Storage.SLOT or info.slot is not None:
                continue   # (a later slot copy into a planned concatenation)
            nbytes = max(info.nbytes, 1)
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
