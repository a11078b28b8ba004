"""Row loops and elementwise loops rendered as ``<16 x float>`` vector IR (NOTE (vector IR)).

``plan_kernel`` decides from the loop IR whether every loop of a kernel can be rendered
here: loops directly in the outer loop's body (none nested), at least ``LANES`` long or of
a runtime length, over float32 elements at ``base + j`` (contiguous, ``base`` fixed for the
loop), with elementwise float math (the inline exp/log/... of ``codegen.llvm_math``),
comparisons and selects, and float32 sum/max/min accumulators; or, for a kernel without
inner loops (elementwise), its outer loop under the same rules. ``VectorLoops`` then
renders each such loop for ``codegen.render_llvm``'s renderer: the loop-invariant
instructions before it (there is no LICM in the short pipeline), a main loop of
``COPIES`` vectors per iteration (independent accumulator chains, loads in flight, as
LLVM's interleaving gave), a loop of one vector for what is left in whole vectors, the
accumulators' horizontal reductions, and the renderer's own scalar loop for the last
``< LANES`` elements. Any other kernel keeps the scalar path (LLVM's vectoriser).

NOTE (vector IR): LLVM's loop vectoriser is the bulk of a row kernel's cold compile: of
log_softmax 4096x1024's ~22 ms of LLVM CPU, ~12 were IR passes at O1 with the vectorisers
(instcombine over the scalar math, then LoopVectorize, IndVars, ...), ~9 code generation.
A kernel rendered here is already vector code: its module is marked ``VECTOR_PIPELINE``
and ``runtime.llvm_pipeline`` runs only SROA over it (NOTE
(short pipeline)). LLVM CPU per kernel (parse + passes + code generation, thread CPU
time, median of 12, one process, load 4.5), scalar path -> vector IR: softmax 4096x1024
18.3 -> 9.8 ms, log_softmax 21.9 -> 11.4, layer_norm 12.9 -> 6.3, GELU (tanh) 16M
14.3 -> 6.8 (load 8); rendering costs more, softmax 1.4 -> 2.9 ms (four copies of the
exp). Steady state the same within noise or faster (CPU per call, median of 60 blocks of
5 calls: softmax 1.07 / 1.07 ms and log_softmax 1.07 / 1.07 on one thread, layer_norm
with weight and bias 0.815 / 0.789 and 0.754 / 0.587 on two). Whole programs (every
source of a quick benchmark run compiled as one batch, process CPU, median of 5, load
4.5): LSTM step 464 -> 323 ms (27 of 52 kernels vector), CNN step 351 -> 302 (5 of 42);
the LSTM step (B=16, h=64, 4 lengths) first calls 852 -> 752 and 891 -> 795 ms of CPU,
steady CPU per 6-step cycle 7.85 / 7.86 and 7.99 / 7.89 ms. Results: a sum
adds in another order than the vectoriser's (16 lanes x 4 partials, then a tree), so sums
and what follows from them differ from before in the last bits, as any reassociation
(log_softmax 4096x1024: at most 2.2e-7 relative); everything else is the same computation
lane by lane, bit for bit (tests/test_vector_ir.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import llvmlite.ir as ir
import numpy as np

from .llvm_math import declare_intrinsic, splat_constant
from .loop_ir import INDEX, AccUpdate, DefineAcc, Instr, Loop, LoopKernel, Store
from .ops import COMPARISON, Op
from .stream_rows import StreamedRow, kernel_defs

if TYPE_CHECKING:
    from .render_llvm import _Renderer

LANES = 16
# vectors an iteration of a row loop (NOTE (interleaved math loops)). Two in loops without
# costly math saved LLVM 0.5-1.4 ms a row kernel, but layer_norm with weight and bias
# (three input rows) then ran 14% slower (CPU per call 0.811 -> 0.974 ms, median of 60
# blocks, load 4.5); with four it runs as the scalar path or faster. Nor do loops of costly
# math (exp, log, tanh, ...) run as well on two: softmax 4096x1024 1.34 -> 1.72 ms of CPU
# per call, log_softmax 1.42 -> 1.74, cross_entropy fwd+bwd 2.50 -> 2.92 (median of 40
# blocks of 5, two runs, load 3.8-5.2) for 0-2.5 ms less LLVM CPU per kernel
COPIES = 4
# NOTE (elementwise vector loops): an elementwise kernel's outer loop runs one vector an
# iteration, as LLVM's vectoriser ran it (threads run chunks of it, ``[start, end)`` of
# any length): GELU's (tanh form, 16M floats) is memory-bound either way, and four copies
# of its tanh cost 4.5 ms more code generation than the short pipeline saves (LLVM CPU
# 13.9 ms against 13.6 on the scalar path, median of 8; one copy: 7.3).
OUTER_COPIES = 1
VECTOR_PIPELINE = "; tracegrad: vector pipeline\n"
# False: every kernel takes the scalar path (tests and A/B measurements switch it)
ENABLED = True

F32 = np.dtype(np.float32)
BOOL = np.dtype(np.bool_)
I1, I32, I64 = ir.IntType(1), ir.IntType(32), ir.IntType(64)
_FLOAT_OPS = {Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.NEG, Op.RECIP, Op.MAXIMUM, Op.MINIMUM,
              Op.SIGN, Op.ABS, Op.FLOOR, Op.CEIL, Op.ROUND, Op.SQRT, Op.EXP, Op.LOG,
              Op.TANH, Op.SIGMOID, Op.ERF, Op.LOG1P, Op.EXPM1, Op.FMOD, Op.EXP2, Op.LOG2,
              Op.LOG10}
_BOOL_OPS = {Op.AND, Op.OR, Op.XOR, Op.NOT}
_REDUCE = {Op.ADD: "fadd", Op.MAXIMUM: "fmax", Op.MINIMUM: "fmin"}
_IDENTITY = {Op.ADD: -0.0, Op.MAXIMUM: -np.inf, Op.MINIMUM: np.inf}
OUTER = 0   # plan_kernel's key of an elementwise kernel's outer loop (no id() is 0)
_LANE_ZERO = ir.Constant(ir.VectorType(I32, LANES), 0)   # a splat's shuffle mask (text cached)
_I32_ZERO = ir.Constant(I32, 0)
_UNDEF: dict[str, ir.Constant] = {}   # str(vector type) -> undef of it


@dataclass
class LoopPlan:
    hoisted: list[Instr]     # loop-invariant instructions, rendered before the loop
    lanes: set[str]          # int64 values ``base + j``: rendered as lane 0's index
    vectors: set[str]        # values with one element per lane
    splats: list[str]        # loop-invariant operands of vector values
    accs: list[str]          # accumulators the loop updates
    copies: int = COPIES     # vectors per iteration of the main loop


def plan_kernel(kernel: LoopKernel, streamed: list[StreamedRow]) -> dict[int, LoopPlan]:
    """id(loop) -> its plan for every loop of ``kernel``; empty when any loop (or a
    streamed row that is not float32) keeps the kernel on the scalar path. A kernel
    without loops (elementwise) is planned as its outer loop, under key ``OUTER``."""
    loops = [s for s in kernel.body if isinstance(s, Loop)]
    buffers = {b.name: b.dtype for b in kernel.buffers}
    if not ENABLED or any(buffers[row.buf] != F32 for row in streamed):
        return {}
    dtypes = {name: s.dtype for name, s in kernel_defs(kernel).items()}
    if not loops:
        if not isinstance(kernel.outer, int) or kernel.outer < LANES * COPIES:
            return {}
        plan = _plan_loop(Loop(kernel.outer_var, kernel.outer, kernel.body), dtypes, buffers, {})
        if plan is None:
            return {}
        plan.copies = min(plan.copies, OUTER_COPIES)
        return {OUTER: plan}
    accs = {s.acc: s for s in kernel.body if isinstance(s, DefineAcc)}
    plans = {}
    for loop in loops:
        plan = _plan_loop(loop, dtypes, buffers, accs)
        if plan is None:
            return {}
        plans[id(loop)] = plan
    return plans


def _plan_loop(loop: Loop, dtypes: dict, buffers: dict, accs: dict) -> LoopPlan | None:
    if isinstance(loop.extent, int) and loop.extent < LANES:
        return None
    stored: dict[str, str] = {}
    for s in loop.body:
        if isinstance(s, Store):
            if stored.setdefault(s.buf, s.index) != s.index:
                return None
    updated = [s.acc for s in loop.body if isinstance(s, AccUpdate)]
    plan = LoopPlan([], {loop.var}, set(), [], list(dict.fromkeys(updated)))
    splats: dict[str, None] = {}

    def dtype(a: str) -> np.dtype:
        return dtypes.get(a, INDEX)

    for s in loop.body:
        if isinstance(s, Instr):
            varying = [a for a in s.args if isinstance(a, str)
                       and (a in plan.lanes or a in plan.vectors)]
            if s.op is Op.ACC:
                if s.args[0] in updated:
                    return None   # reads the running value
                plan.hoisted.append(s)
            elif not varying:
                # NOTE: hoisted before the loop's trip count is tested: a load only where
                # the loop surely runs (a constant extent), and none of what it stores
                if s.op is Op.LOAD and (s.args[0] in stored or not isinstance(loop.extent, int)):
                    return None
                plan.hoisted.append(s)
            elif s.dtype == INDEX:   # base + j or j - base: still one element a lane
                if s.op not in (Op.ADD, Op.SUB) or len(varying) != 1 \
                        or varying[0] not in plan.lanes \
                        or (s.op is Op.SUB and varying[0] != s.args[0]):
                    return None
                plan.lanes.add(s.out)
            elif s.op is Op.LOAD:
                buf, index = s.args
                if buffers[buf] != F32 or index not in plan.lanes \
                        or stored.get(buf, index) != index:
                    return None
                plan.vectors.add(s.out)
            else:
                if any(a in plan.lanes for a in varying) or not _vector_op(s, dtype):
                    return None
                plan.vectors.add(s.out)
                splats.update((a, None) for a in s.args if a not in varying)
        elif isinstance(s, AccUpdate):
            acc = accs.get(s.acc)
            if acc is None or acc.dtype != F32 or acc.op not in _REDUCE \
                    or s.value not in plan.vectors:
                return None
        elif isinstance(s, Store):
            if buffers[s.buf] != F32 or s.index not in plan.lanes or dtype(s.value) != F32:
                return None
            if s.value not in plan.vectors:
                splats[s.value] = None
        else:
            return None   # a nested loop or accumulator
    plan.splats = list(splats)
    return plan


def _vector_op(s: Instr, dtype) -> bool:
    kinds = [dtype(a) for a in s.args]
    if s.op is Op.WHERE:
        return kinds[0] == BOOL and kinds[1] == kinds[2] == s.dtype and s.dtype in (F32, BOOL)
    if s.op in COMPARISON:
        return kinds[0] == kinds[1] == F32
    if s.op is Op.CAST:
        return (kinds[0], s.dtype) in ((F32, BOOL), (BOOL, F32), (F32, F32))
    if s.op in _BOOL_OPS:
        return s.dtype == BOOL and all(k == BOOL for k in kinds)
    return s.op in _FLOAT_OPS and s.dtype == F32 and all(k == F32 for k in kinds)


class VectorLoops:
    """Renders the planned loops of a kernel (``plans`` from ``plan_kernel``)."""

    def __init__(self, r: "_Renderer", plans: dict[int, LoopPlan]) -> None:
        self.r = r
        self.plans = plans
        self.plan: LoopPlan | None = None
        self.splat: dict[str, ir.Value] = {}
        self.streamed: dict[str, StreamedRow] = {}
        # NOTE: no LICM runs (NOTE (short pipeline)): what reads only constants and
        # buffers the kernel never writes is computed once, in the entry block
        self.invariant: set[str] = set()
        self.written = {st.buf for st in _stores(r.k.body)}
        # NOTE (copy addresses): (buffer, index, load) -> copy 0's address, this iteration
        self.first: dict[tuple[str, str, str, bool], ir.Value] = {}
        self.copy = 0

    def render(self, loop: Loop) -> bool:
        """Render inner ``loop`` as vector IR when planned; False (nothing rendered)
        otherwise."""
        plan = self.plans.get(id(loop))
        if plan is None:
            return False
        if isinstance(loop.extent, int):
            self._render(plan, loop, ir.Constant(I64, 0), ir.Constant(I64, loop.extent))
        else:
            self._render(plan, loop, ir.Constant(I64, 0), self.r.env[loop.extent])
        return True

    def render_outer(self, var: str, start: ir.Value, end: ir.Value, body: list) -> bool:
        """Render an elementwise kernel's outer loop ``[start, end)`` as vector IR when
        planned; False (nothing rendered) otherwise."""
        plan = self.plans.get(OUTER)
        if plan is None:
            return False
        self._render(plan, Loop(var, 0, body), start, end)
        return True

    def _render(self, plan: LoopPlan, loop: Loop, start: ir.Value, n: ir.Value) -> None:
        """``loop``'s body over ``[start, n)``: hoisted values, the vector loops, the
        reductions and the scalar loop of what is left."""
        r, b = self.r, self.r.b
        self.plan = plan
        for s in plan.hoisted:
            if self._invariant(s):   # the same for every row: before the outer loop
                with b.goto_block(r.entry):
                    r.env[s.out] = r._instr(s)
                self.invariant.add(s.out)
            else:
                r.env[s.out] = r._instr(s)
            r.dtypes[s.out] = s.dtype
        self.splat = {}
        for a in plan.splats:
            if a in self.invariant:
                with b.goto_block(r.entry):
                    self.splat[a] = _splat(b, r.env[a])
            else:
                self.splat[a] = _splat(b, r.env[a])
        self.streamed = {row.buf: row for row in r.rows.last_loop.get(id(loop), [])}
        step = LANES * plan.copies
        known = isinstance(start, ir.Constant) and isinstance(n, ir.Constant)
        if known:
            count = n.constant - start.constant
            wide: ir.Value = ir.Constant(I64, start.constant + count // step * step)
            whole: ir.Value = ir.Constant(I64, start.constant + count // LANES * LANES)
        else:   # a runtime extent from 0, or the outer loop's [start, end)
            zero = isinstance(start, ir.Constant) and start.constant == 0
            count = n if zero else b.sub(n, start)
            wide = b.and_(count, ir.Constant(I64, -step))
            whole = b.and_(count, ir.Constant(I64, -LANES)) if plan.copies > 1 else wide
            if not zero:
                wide = b.add(start, wide)
                whole = b.add(start, whole) if plan.copies > 1 else wide
        parts = {acc: [self._identity(acc)] * plan.copies for acc in plan.accs}
        if plan.copies > 1:
            parts = self._loop(loop, start, wide, plan.copies, parts)
            parts = {acc: [self._tree(acc, p)] for acc, p in parts.items()}
            start = wide
        parts = self._loop(loop, start, whole, 1, parts)
        for acc, (part,) in parts.items():
            self._reduce(acc, part)
        if not known or count % LANES:
            assert not self.streamed, "a streamed row is whole lines"
            hoisted = {id(s) for s in plan.hoisted}   # computed above, before the loops
            rest = [s for s in loop.body if id(s) not in hoisted]
            r._loop(loop.var, whole, n, rest)   # the last < LANES elements

    # -- loops ------------------------------------------------------------------------------
    def _loop(self, loop: Loop, start: ir.Value, stop: ir.Value, copies: int,
              parts: dict[str, list]) -> dict[str, list]:
        """``for j in [start, stop) step copies * LANES`` over the loop's body, ``copies``
        vectors an iteration; ``parts``: each accumulator's partial (vector, NaN flags)
        per copy, carried through the loop and returned."""
        r, b = self.r, self.r.b
        known = isinstance(start, ir.Constant) and isinstance(stop, ir.Constant)
        if known and start.constant >= stop.constant:
            return parts
        name = f"{loop.var}.x{copies}"
        pre = b.block
        body = r.fn.append_basic_block(f"{name}.body")
        exit_ = r.fn.append_basic_block(f"{name}.exit")
        if known:
            b.branch(body)
        else:
            b.cbranch(b.icmp_signed("<", start, stop), body, exit_)
        b.position_at_end(body)
        j = b.phi(I64, name=name)
        j.add_incoming(start, pre)
        flat = [v for acc in parts for pair in parts[acc] for v in pair if v is not None]
        phis = []
        for v in flat:
            phi = b.phi(v.type)
            phi.add_incoming(v, pre)
            phis.append(phi)
        state = self._unflatten(parts, phis)
        deferred: list[tuple[str, ir.Value, ir.Value]] = []
        self.first = {}
        for u in range(copies):
            self.copy = u
            if u == 0:
                r.env[loop.var] = j
            else:   # NOTE (copy addresses): no index of its own
                r.env.pop(loop.var, None)
            self._copy(loop.body, u, state, deferred)
        self.copy = 0
        self._stream(deferred)
        nxt = b.add(j, ir.Constant(I64, copies * LANES), name=f"{name}.next")
        latch = b.block
        j.add_incoming(nxt, latch)
        new = [v for acc in state for pair in state[acc] for v in pair if v is not None]
        for phi, v in zip(phis, new):
            phi.add_incoming(v, latch)
        b.cbranch(b.icmp_signed("<", nxt, stop, name=f"{name}.latch"), body, exit_)
        b.position_at_end(exit_)
        if known:
            return state
        outs = []
        for v, w in zip(flat, new):
            phi = b.phi(v.type)
            phi.add_incoming(v, pre)
            phi.add_incoming(w, latch)
            outs.append(phi)
        return self._unflatten(parts, outs)

    @staticmethod
    def _unflatten(like: dict[str, list], values: list) -> dict[str, list]:
        it = iter(values)
        return {acc: [tuple(next(it) if v is not None else None for v in pair) for pair in pairs]
                for acc, pairs in like.items()}

    def _copy(self, body: list, u: int, state: dict, deferred: list) -> None:
        """One vector of the loop's body at lane 0 index ``env[var]``."""
        r, b, plan = self.r, self.r.b, self.plan
        assert plan is not None
        for s in body:
            if isinstance(s, Instr):
                if s.out in plan.lanes:
                    if u:   # NOTE (copy addresses): a read of it would be a KeyError
                        r.env.pop(s.out, None)
                        continue
                    x, y = (r.env[a] for a in s.args)
                    r.env[s.out] = b.add(x, y) if s.op is Op.ADD else b.sub(x, y)
                elif s.out in plan.vectors:
                    r.env[s.out] = self._instr(s)
                    r.dtypes[s.out] = s.dtype
            elif isinstance(s, AccUpdate):
                state[s.acc][u] = self._update(s.acc, state[s.acc][u], self._vec(s.value))
            elif isinstance(s, Store):
                value = self._vec(s.value)
                row = self.streamed.get(s.buf)
                if row is not None and s.index in row.accesses:
                    deferred.append((s.buf, self._address(s.buf, s.index, "", True), value))
                else:
                    _store(b, value, self._address(s.buf, s.index), 4)

    def _stream(self, deferred: list) -> None:
        """A streamed row's stores of one iteration (NOTE (streamed rows)): non-temporal
        when each row is 64-byte aligned (each vector is a whole line then)."""
        if not deferred:
            return
        b = self.r.b
        aligned = None
        for ptr in {buf: ptr for buf, ptr, _ in reversed(deferred)}.values():  # first per row
            low = b.and_(b.ptrtoint(ptr, I64), ir.Constant(I64, 63))
            test = b.icmp_unsigned("==", low, ir.Constant(I64, 0))
            aligned = test if aligned is None else b.and_(aligned, test)
        nontemporal = self.r.module.add_metadata([ir.Constant(I32, 1)])
        with b.if_else(aligned) as (streamed, plain):
            with streamed:
                for _, ptr, value in deferred:
                    _store(b, value, ptr, 64).set_metadata("nontemporal", nontemporal)
            with plain:
                for _, ptr, value in deferred:
                    _store(b, value, ptr, 4)

    def _invariant(self, s: Instr) -> bool:
        """``s`` reads neither the outer loop variable nor a value that varies with it."""
        if s.op is Op.ACC or (s.op is Op.LOAD and s.args[0] in self.written):
            return False
        args = s.args[1:] if s.op is Op.LOAD else s.args
        return all(a in self.invariant or isinstance(self.r.env.get(a), ir.Constant)
                   for a in args if isinstance(a, str))

    # NOTE (copy addresses): copy u of a main loop's iteration addresses copy 0's pointer
    # + u * LANES elements, one GEP of a constant, where the index of lane 0 (base + j +
    # u * LANES) went through its own adds and GEP: instcombine made that form of it
    # (NOTE (short pipeline)), and the code generator folds the constant into the x86
    # address (64(%rcx,%r10,4)). Without it (no instcombine), layer_norm's last loop kept
    # an index register per copy and ran 7% slower (1.05 -> 1.12 ms per call). Copies
    # u > 0 then compute no index at all (the adds were dead code for the code generator
    # to build and drop: softmax 4096x1024 286 -> 268 lines of IR, log_softmax 323 -> 305).
    def _address(self, buf: str, index: str, load: str = "", output: bool = False
                 ) -> ir.Value:
        """Where lane 0 of ``buf[index]`` is (``output``: the output row itself, not its
        stack line, for a streamed row's deferred store)."""
        r = self.r
        key = (buf, index, load, output)
        first = self.first.get(key) if self.copy else None
        if first is not None:
            return r.b.gep(first, [ir.Constant(I64, self.copy * LANES)], inbounds=True,
                           source_etype=ir.FloatType())
        if output:
            at = r.b.gep(r.buffers[buf][0], [r.env[index]], inbounds=True,
                         source_etype=ir.FloatType())
        else:
            at = r._address(buf, index, load)
        if self.copy == 0:
            self.first[key] = at
        return at

    # -- values -----------------------------------------------------------------------------
    def _vec(self, name: str) -> ir.Value:
        assert self.plan is not None
        return self.r.env[name] if name in self.plan.vectors else self.splat[name]

    def _instr(self, s: Instr) -> ir.Value:
        r, b = self.r, self.r.b
        if s.op is Op.LOAD:
            return b.load(self._address(s.args[0], s.args[1], s.out),
                          typ=ir.VectorType(ir.FloatType(), LANES), align=4)
        args = [self._vec(a) for a in s.args]
        if s.op is Op.WHERE:
            return b.select(*args)
        if s.op is Op.CAST:
            src = r.dtypes.get(s.args[0], INDEX)
            if src == s.dtype:
                return args[0]
            if s.dtype == BOOL:
                return b.fcmp_unordered("!=", args[0], splat_constant(args[0].type, 0.0))
            return b.uitofp(args[0], ir.VectorType(ir.FloatType(), LANES))
        return r.op(s.op, r.dtypes[s.args[0]], *args)

    def _identity(self, acc: str) -> tuple:
        op = self.r.accs[acc][1]
        vec = splat_constant(ir.VectorType(ir.FloatType(), LANES), float(_IDENTITY[op]))
        flags = splat_constant(ir.VectorType(I1, LANES), 0) if acc in self.r.nan_flags else None
        return vec, flags

    def _update(self, acc: str, part: tuple, x: ir.Value) -> tuple:
        """NOTE (flagged extrema) in codegen.render_llvm, lane by lane."""
        b, op = self.r.b, self.r.accs[acc][1]
        vec, flags = part
        if op is Op.ADD:
            return b.fadd(vec, x, flags=("reassoc",)), flags
        vec = self._extremum(op, vec, x)
        if flags is not None:
            flags = b.or_(flags, b.fcmp_unordered("uno", x, x))
        return vec, flags

    def _extremum(self, op: Op, x: ir.Value, y: ir.Value) -> ir.Value:
        name = "llvm.maxnum" if op is Op.MAXIMUM else "llvm.minnum"
        fn = declare_intrinsic(self.r.module, name, [x.type], ir.FunctionType(x.type, [x.type] * 2))
        return self.r.b.call(fn, [x, y], fastmath=("nnan", "nsz"))

    def _tree(self, acc: str, parts: list) -> tuple:
        """The copies' partials combined pairwise into one."""
        b, op = self.r.b, self.r.accs[acc][1]
        while len(parts) > 1:
            merged = []
            for (v, f), (w, g) in zip(parts[::2], parts[1::2]):
                vec = b.fadd(v, w, flags=("reassoc",)) if op is Op.ADD else self._extremum(op, v, w)
                merged.append((vec, None if f is None else b.or_(f, g)))
            parts = merged
        return parts[0]

    def _reduce(self, acc: str, part: tuple) -> None:
        """The accumulator's slot combined with its partial's lanes."""
        r, b = self.r, self.r.b
        slot, op, _ = r.accs[acc]
        vec, flags = part
        f32 = ir.FloatType()
        old = b.load(slot)
        if op is Op.ADD:
            fn = declare_intrinsic(r.module, "llvm.vector.reduce.fadd", [vec.type],
                                   ir.FunctionType(f32, [f32, vec.type]))
            b.store(b.call(fn, [old, vec], fastmath=("reassoc",)), slot)
        else:
            fn = declare_intrinsic(r.module, f"llvm.vector.reduce.{_REDUCE[op]}", [vec.type],
                                   ir.FunctionType(f32, [vec.type]))
            b.store(self._extremum(op, old, b.call(fn, [vec], fastmath=("nnan", "nsz"))), slot)
        if flags is not None:
            fn = declare_intrinsic(r.module, "llvm.vector.reduce.or", [flags.type],
                                   ir.FunctionType(I1, [flags.type]))
            flag = r.nan_flags[acc]
            b.store(b.or_(b.load(flag), b.call(fn, [flags])), flag)


def _stores(body: list):
    for s in body:
        if isinstance(s, Store):
            yield s
        elif isinstance(s, Loop):
            yield from _stores(s.body)


def _splat(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """``x`` in every lane (a constant stays one)."""
    ty = ir.VectorType(x.type, LANES)
    if isinstance(x, ir.Constant):
        return splat_constant(ty, x.constant)
    undef = _UNDEF.get(str(ty))
    if undef is None:   # one per type: its text (16 x "float undef") is formatted once
        undef = _UNDEF[str(ty)] = ir.Constant(ty, ir.Undefined)
    one = b.insert_element(undef, x, _I32_ZERO)
    return b.shuffle_vector(one, undef, _LANE_ZERO)


def _store(b: ir.IRBuilder, value: ir.Value, ptr: ir.Value, align: int) -> ir.StoreInstr:
    """A vector store through ``ptr``, which may be a typed ``float*`` (a stack row)."""
    if not ptr.type.is_opaque:
        ptr = b.bitcast(ptr, ir.PointerType(value.type))
    return b.store(value, ptr, align=align)
