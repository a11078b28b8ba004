"""Render a ``LoopKernel`` as one self-contained LLVM module (text): llvmlite.ir's module,
function and blocks, instructions written as text by ``codegen.ir_text.TextBuilder``.

ABI: ``void @name(i64 %start, i64 %end, ptr noalias %buf0, ...)`` runs outer iterations
``start <= o < end``.  The renderer only prints: index math, loop structure and dtype
choices were made by ``codegen.lower``.  To let LLVM vectorise the innermost loop the
module keeps every access a GEP off a ``noalias`` parameter with a simple induction
variable, emits no calls for math (``codegen.llvm_math.emit_math``) and marks only
accumulator updates ``reassoc`` (an FP reduction does not vectorise without it) and a
float max/min accumulator ``nnan nsz`` beside its NaN flag (NOTE (flagged extrema));
nothing else uses unsafe fast-math.  Each op is one entry of ``LLVM_RULES`` (keyed by ``Op``).
Row loops and elementwise loops over float32 that ``codegen.render_llvm_vector`` takes
are printed as vector IR instead (NOTE (vector IR)); the rules then apply to vectors.

>>> from tracegrad.codegen.loop_ir import KernelBuilder, BufferArg
>>> from tracegrad.codegen.ops import Op
>>> b = KernelBuilder("k", outer=4)
>>> b.store("buf1", "o", b.emit(Op.LOAD, ("buf0", "o"), "float32"))
>>> src = render_llvm(b.finish([BufferArg("buf0", np.dtype("float32"), 4, False),
...                             BufferArg("buf1", np.dtype("float32"), 4, True)]))
>>> 'define void @"k"(i64 %"start", i64 %"end", ptr noalias %"buf0"' in src
True
"""
from __future__ import annotations

import math
from typing import Callable

import llvmlite.ir as ir
import numpy as np

from .ir_text import TextBuilder
from .llvm_fmod import fmod_float, with_vector_variants
from .llvm_pow import pow_float
from .llvm_math import emit_math, intrinsic_suffix, splat_constant
from .loop_ir import INDEX, AccUpdate, DefineAcc, Instr, Loop, LoopKernel, Store
from .ops import COMPARISON, Op
from .phase_clock import phase
from .scalar_ops import COSTLY, RENDERINGS
from .render_llvm_rows import RowStreams
from .render_llvm_vector import VECTOR_PIPELINE, VectorLoops, plan_kernel
from .stream_rows import kernel_defs, streamed_rows

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
F32, F64 = ir.FloatType(), ir.DoubleType()
_REG = {"float32": F32, "float64": F64, "int32": I32, "int64": I64, "uint8": I8, "bool": I1}
_MEM = {**_REG, "bool": I8}
# NOTE (IR text) in codegen.ir_text; tests render with llvmlite.ir.IRBuilder too and compare
BUILDER: Callable = TextBuilder


# -- op -> LLVM instructions ---------------------------------------------------------------
# LLVM_RULES[op](r, dtype, *values): ``r`` the renderer (``r.b`` its builder, with the
# interface of llvmlite.ir.IRBuilder that codegen.ir_text lists, ``r.flags``
# the fast-math flags of the update being rendered), ``dtype`` the first operand's. CONST,
# LOAD, ACC, CAST and WHERE are the renderer's own hooks.

def _by_kind(f: Callable | None = None, i: Callable | None = None, u: Callable | None = None,
             b: Callable | None = None) -> Callable:
    """A rule that picks by the operand kind: float, signed, unsigned, bool (defaults to
    unsigned)."""
    def rule(r, dt, *xs):
        kind = np.dtype(dt).kind
        fn = {"f": f, "i": i, "u": u, "b": b if b is not None else u}[kind]
        if fn is None:
            raise _NoRule(np.dtype(dt).name)
        return fn(r, *xs)
    return rule


class _NoRule(NotImplementedError):
    """An op that has no rendering for an operand dtype (``_Renderer.op`` names the op)."""


def _same_int(fn_name: str) -> Callable:
    return lambda r, x, y: getattr(r.b, fn_name)(x, y)


def _fbin(fn_name: str) -> Callable:
    return lambda r, x, y: getattr(r.b, fn_name)(x, y, flags=r.flags)


def _intrinsic(base: str) -> Callable:
    return lambda r, *xs: r.call(f"{base}.{intrinsic_suffix(xs[0].type)}", xs[0].type, list(xs))


def _math(name: str) -> Callable:
    return lambda r, x: emit_math(r.b, name, x, r.native_ldexp)


def _select_int(pred: str, signed: bool) -> Callable:
    def rule(r, x, y):
        cmp = (r.b.icmp_signed if signed else r.b.icmp_unsigned)(pred, x, y)
        return r.b.select(cmp, x, y)
    return rule


def _compare(pred: str) -> Callable:
    def fcmp(r, x, y):  # NOTE: != is true on NaN (unordered); the others false (ordered)
        return (r.b.fcmp_unordered if pred == "!=" else r.b.fcmp_ordered)(pred, x, y)
    return _by_kind(f=fcmp, i=lambda r, x, y: r.b.icmp_signed(pred, x, y),
                    u=lambda r, x, y: r.b.icmp_unsigned(pred, x, y))


def _const_like(x, value) -> ir.Constant:
    """``value`` typed as ``x`` (in every lane of a vector: codegen.render_llvm_vector)."""
    if isinstance(x.type, ir.VectorType):
        return splat_constant(x.type, value)
    return ir.Constant(x.type, value)


def _sign_float(r, x):
    b = r.b
    one, minus, zero = _const_like(x, 1.0), _const_like(x, -1.0), _const_like(x, 0.0)
    # NOTE: +0 for -0 and for NaN, as torch.sign (codegen.scalar_ops.sign)
    return b.select(b.fcmp_ordered(">", x, zero), one,
                    b.select(b.fcmp_ordered("<", x, zero), minus, zero))


def _sign_int(r, x):
    b, ty = r.b, x.type
    one, minus, zero = ir.Constant(ty, 1), ir.Constant(ty, -1), ir.Constant(ty, 0)
    return b.select(b.icmp_signed(">", x, zero), one,
                    b.select(b.icmp_signed("<", x, zero), minus, zero))


def _sign_unsigned(r, x):
    zero = ir.Constant(x.type, 0)
    return r.b.select(r.b.icmp_unsigned(">", x, zero), ir.Constant(x.type, 1), zero)


def _abs_int(r, x):
    return r.b.select(r.b.icmp_signed("<", x, ir.Constant(x.type, 0)), r.b.neg(x), x)


def _identity(r, x):
    return x


def _float_math(name: str) -> Callable:
    return _by_kind(f=_math(name))


# the built-in rules; an op registered before this import keeps its own
LLVM_RULES: dict[Op, Callable] = RENDERINGS["llvm"]
for _op, _rule in {
    Op.NEG: _by_kind(f=lambda r, x: r.b.fneg(x), i=lambda r, x: r.b.neg(x),
                     u=lambda r, x: r.b.neg(x)),
    Op.NOT: lambda r, dt, x: r.b.not_(x),  # all bits: bitwise not, logical not on i1
    Op.SIGN: _by_kind(f=_sign_float, i=_sign_int, u=_sign_unsigned),
    Op.ABS: _by_kind(f=_math("abs"), i=_abs_int, u=_identity),
    Op.FLOOR: _by_kind(f=_math("floor"), i=_identity, u=_identity),
    Op.CEIL: _by_kind(f=_math("ceil"), i=_identity, u=_identity),
    Op.ROUND: _by_kind(f=_math("round"), i=_identity, u=_identity),
    Op.RECIP: _by_kind(f=lambda r, x: r.b.fdiv(_const_like(x, 1.0), x)),
    Op.SQRT: _float_math("sqrt"),
    Op.EXP: _float_math("exp"),
    Op.LOG: _float_math("log"),
    Op.SIN: _float_math("sin"),
    Op.COS: _float_math("cos"),
    Op.TANH: _float_math("tanh"),
    Op.SIGMOID: _float_math("sigmoid"),
    Op.ERF: _float_math("erf"),
    Op.LOG1P: _float_math("log1p"),
    Op.EXPM1: _float_math("expm1"),
    Op.EXP2: _float_math("exp2"),
    Op.LOG2: _float_math("log2"),     # NOTE (log2 and log10) in codegen.llvm_math
    Op.LOG10: _float_math("log10"),
    # a bool sum/product (reductions) is or/and
    Op.ADD: _by_kind(f=_fbin("fadd"), i=_same_int("add"), u=_same_int("add"),
                     b=_same_int("or_")),
    Op.SUB: _by_kind(f=_fbin("fsub"), i=_same_int("sub"), u=_same_int("sub")),
    Op.MUL: _by_kind(f=_fbin("fmul"), i=_same_int("mul"), u=_same_int("mul"),
                     b=_same_int("and_")),
    Op.DIV: _by_kind(f=_fbin("fdiv")),
    Op.POW: _by_kind(f=pow_float),   # NOTE (one pow) in codegen.numpy_pow
    Op.FMOD: _by_kind(f=fmod_float),   # NOTE (fmod in IR)
    # NOTE: llvm.maximum/minimum propagate NaN like np.maximum (maxnum would drop it)
    Op.MAXIMUM: _by_kind(f=_intrinsic("llvm.maximum"), i=_select_int(">", True),
                         u=_select_int(">", False), b=_same_int("or_")),
    Op.MINIMUM: _by_kind(f=_intrinsic("llvm.minimum"), i=_select_int("<", True),
                         u=_select_int("<", False), b=_same_int("and_")),
    Op.CMPLT: _compare("<"),
    Op.CMPLE: _compare("<="),
    Op.CMPEQ: _compare("=="),
    Op.CMPNE: _compare("!="),
    Op.AND: _by_kind(i=_same_int("and_"), u=_same_int("and_")),
    Op.OR: _by_kind(i=_same_int("or_"), u=_same_int("or_")),
    Op.XOR: _by_kind(i=_same_int("xor"), u=_same_int("xor")),
    # index math: operands are never negative (NOTE (safe indices) in codegen.lower)
    Op.IDIV: _by_kind(i=_same_int("udiv"), u=_same_int("udiv")),
    Op.MOD: _by_kind(i=_same_int("urem"), u=_same_int("urem")),
}.items():
    LLVM_RULES.setdefault(_op, _rule)


class _Renderer:
    def __init__(self, kernel: LoopKernel, native_ldexp: bool = False,
                 stream_min_bytes: int = 0):
        self.k = kernel
        self.native_ldexp = native_ldexp
        # NOTE: not the kernel's name: the module ID is printed in the source, and kernels
        # that differ only in their names should render the same text (the JIT renames
        # every module uniquely anyway)
        self.module = ir.Module(name="tracegrad")
        self.module.triple = ""
        args = [I64, I64] + [ir.PointerType() for _ in kernel.buffers]
        fnty = ir.FunctionType(ir.VoidType(), args)
        self.fn = ir.Function(self.module, fnty, name=kernel.name)
        self.fn.attributes.add("nounwind")
        self.fn.args[0].name, self.fn.args[1].name = "start", "end"
        self.env: dict[str, ir.Value] = {}
        self.dtypes: dict[str, np.dtype] = {}
        self.buffers = {}
        for arg, buf in zip(self.fn.args[2:], kernel.buffers):
            arg.name = buf.name
            arg.add_attribute("noalias")
            self.buffers[buf.name] = (arg, buf.dtype)
        self.entry = self.fn.append_basic_block("entry")
        self.b = BUILDER(self.entry)
        self.accs: dict[str, tuple[ir.AllocaInstr, Op, np.dtype]] = {}  # (slot, op, dtype)
        self.nan_flags: dict[str, ir.AllocaInstr] = {}  # NOTE (flagged extrema)
        self.flags: tuple[str, ...] = ()
        # loop var -> vectors per iteration: NOTE (interleaved math loops)
        self.interleaved: dict[str, int] = {}
        self.rows = RowStreams(self, streamed_rows(kernel, stream_min_bytes))
        self.vectors = VectorLoops(self, plan_kernel(kernel, list(self.rows.rows.values())))

    def render(self) -> str:
        start, end = self.fn.args[0], self.fn.args[1]
        if not self.vectors.render_outer(self.k.outer_var, start, end, self.k.body):
            self._loop(self.k.outer_var, start, end, self.k.body)
        self.rows.fence()
        self.b.ret_void()
        # NOTE: LLVM prefers 256-bit vectors on AVX-512 hosts unless told otherwise; these
        # loops are bandwidth-bound and gain from 512 (no effect on narrower hosts).
        # llvmlite.ir rejects string attributes, so add it to the text.
        text = str(self.module).replace(
            ") nounwind\n{", ') nounwind "prefer-vector-width"="512"\n{', 1)
        text = with_vector_variants(_with_interleave(text, self.interleaved))
        if self.vectors.plans:
            return VECTOR_PIPELINE + text
        return text if _decides_on_indices(self.k) else LIGHT_PIPELINE + text

    # -- structure ------------------------------------------------------------------------
    def _loop(self, var, start, end, body):
        b = self.b
        pre = b.block
        header = self.fn.append_basic_block(f"{var}.body")
        exit_ = self.fn.append_basic_block(f"{var}.exit")
        b.cbranch(b.icmp_signed("<", start, end), header, exit_)
        b.position_at_end(header)
        phi = b.phi(I64, name=var)
        phi.add_incoming(start, pre)
        self.env[var] = phi
        self.dtypes[var] = np.dtype(np.int64)
        self._body(body)
        nxt = b.add(phi, ir.Constant(I64, 1), name=f"{var}.next")
        phi.add_incoming(nxt, b.block)
        b.cbranch(b.icmp_signed("<", nxt, end, name=f"{var}.latch"), header, exit_)
        b.position_at_end(exit_)
        if _calls_vector_variant(body, self.native_ldexp):
            self.interleaved[var] = 1   # NOTE (one vector per float64 sin/cos call)
        elif _interleave_pays(end, body):
            self.interleaved[var] = _INTERLEAVE

    def _body(self, body):
        b = self.b
        for s in body:
            if isinstance(s, Instr):
                self.env[s.out] = self._instr(s)
                self.dtypes[s.out] = s.dtype
            elif isinstance(s, Loop):
                end = self.env[s.extent] if isinstance(s.extent, str) else ir.Constant(I64, s.extent)
                if self.vectors.render(s):
                    continue
                if not self.rows.render_loop(s, _interleave_pays(end, s.body)):
                    self._loop(s.var, ir.Constant(I64, 0), end, s.body)
            elif isinstance(s, DefineAcc):
                slot = self._alloca(_REG[s.dtype.name], s.acc)
                self.accs[s.acc] = (slot, s.op, s.dtype)
                b.store(self._const(s.init, s.dtype), slot)
                if _nan_flagged(s.op, s.dtype):
                    self.nan_flags[s.acc] = flag = self._alloca(I1, f"{s.acc}.nan")
                    b.store(ir.Constant(I1, 0), flag)
            elif isinstance(s, AccUpdate):
                slot, op, dtype = self.accs[s.acc]
                old, value = b.load(slot), self.env[s.value]
                flag = self.nan_flags.get(s.acc)
                if flag is not None:
                    self._nan_flagged_update(slot, flag, op, old, value)
                    continue
                # only accumulator updates may be reassociated (an FP reduction does not
                # vectorise without it)
                self.flags = ("reassoc",)
                b.store(self.op(op, dtype, old, value), slot)
                self.flags = ()
            elif isinstance(s, Store):
                ptr, dtype = self.buffers[s.buf]
                val = self.env[s.value]
                if dtype == np.bool_:
                    val = b.zext(val, I8)
                b.store(val, self._address(s.buf, s.index))
            else:
                raise TypeError(s)

    def _address(self, buf: str, index: str, load: str = ""):
        """Where element ``index`` of ``buf`` is (``load``: the LOAD's name); a streamed
        row's accesses go to its stack line or row (NOTE (streamed rows))."""
        at = self.rows.address(buf, index, load)
        if at is not None:
            return at
        ptr, dtype = self.buffers[buf]
        at = self.env[index]
        if isinstance(at, ir.Constant) and at.constant == 0:
            return ptr   # a 0-d buffer: no GEP for instcombine to drop (NOTE (short pipeline))
        return self.b.gep(ptr, [at], inbounds=True, source_etype=_MEM[dtype.name])

    def mem_type(self, buf: str) -> ir.Type:
        """The LLVM type of an element of ``buf`` in memory."""
        return _MEM[self.buffers[buf][1].name]

    def itemsize(self, buf: str) -> int:
        return self.buffers[buf][1].itemsize

    def _alloca(self, ty: ir.Type, name: str, count: ir.Constant | None = None
                ) -> ir.AllocaInstr:
        """A slot in the entry block (mem2reg turns a scalar one into a register)."""
        with self.b.goto_block(self.entry):
            self.b.position_at_start(self.entry)
            return self.b.alloca(ty, size=count, name=name)

    def _nan_flagged_update(self, slot, flag, op: Op, old, value) -> None:
        """NOTE (flagged extrema): ``slot = maxnum(slot, value)`` that may skip NaN,
        ``flag |= isnan(value)`` beside it."""
        b = self.b
        name = "llvm.maxnum" if op is Op.MAXIMUM else "llvm.minnum"
        ty = value.type
        fn = b.module.declare_intrinsic(name, [ty], ir.FunctionType(ty, [ty, ty]))
        b.store(b.call(fn, [old, value], fastmath=("nnan", "nsz")), slot)
        b.store(b.or_(b.load(flag), b.fcmp_unordered("uno", value, value)), flag)

    # -- values ---------------------------------------------------------------------------
    def _const(self, value, dtype):
        ty = _REG[np.dtype(dtype).name]
        if isinstance(ty, ir.IntType):
            return ir.Constant(ty, int(value) & ((1 << ty.width) - 1))
        return ir.Constant(ty, float(value))

    def _instr(self, s: Instr):
        b, dt = self.b, s.dtype
        if s.op is Op.CONST:
            return self._const(s.args[0], dt)
        if s.op is Op.LOAD:
            _, bdt = self.buffers[s.args[0]]
            val = b.load(self._address(s.args[0], s.args[1], s.out), typ=_MEM[bdt.name])
            return b.icmp_unsigned("!=", val, ir.Constant(I8, 0)) if bdt == np.bool_ else val
        if s.op is Op.ACC:
            slot, _, _ = self.accs[s.args[0]]
            flag = self.nan_flags.get(s.args[0])
            if flag is None:
                return b.load(slot)
            # NOTE (flagged extrema): the NaN the running extremum skipped
            return b.select(b.load(flag), ir.Constant(slot.allocated_type, math.nan),
                            b.load(slot))
        args = [self.env[a] for a in s.args]
        if s.op is Op.CAST:
            return self._cast(args[0], self.dtypes[s.args[0]], dt)
        if s.op is Op.WHERE:
            return b.select(args[0], args[1], args[2])
        return self.op(s.op, self.dtypes[s.args[0]], *args)

    def op(self, op: Op, dtype, *args):
        """``op`` applied to ``args`` (whose first has ``dtype``), by ``LLVM_RULES``."""
        rule = LLVM_RULES.get(op)
        if rule is None:
            raise NotImplementedError(f"LLVM renderer: no rule for {op.name}")
        try:
            return rule(self, dtype, *args)
        except _NoRule as e:
            raise NotImplementedError(f"LLVM renderer: {op.name} on {e}") from None

    def call(self, name, ty, args):
        """Call function ``name`` (declared on first use) returning ``ty``."""
        fn = self.module.globals.get(name)
        if fn is None:
            fn = ir.Function(self.module, ir.FunctionType(ty, [a.type for a in args]), name=name)
        return self.b.call(fn, args)

    def _cast(self, x, src, dst):
        b, src, dst = self.b, np.dtype(src), np.dtype(dst)
        ty = _REG[dst.name]
        if src == dst:
            return x
        if dst.kind == "b":
            if src.kind == "f":
                return b.fcmp_unordered("!=", x, ir.Constant(x.type, 0.0))
            return b.icmp_unsigned("!=", x, ir.Constant(x.type, 0))
        if src.kind == "f":
            if dst.kind == "f":
                return b.fpext(x, ty) if dst.itemsize > src.itemsize else b.fptrunc(x, ty)
            return b.fptosi(x, ty) if dst.kind == "i" else b.fptoui(x, ty)
        signed = src.kind == "i"
        if dst.kind == "f":
            return b.sitofp(x, ty) if signed else b.uitofp(x, ty)
        if ty.width > x.type.width:
            return b.sext(x, ty) if signed else b.zext(x, ty)
        return b.trunc(x, ty) if ty.width < x.type.width else x


# NOTE (flagged extrema): a float MAX/MIN reduction must give NaN when its row holds one
# (np.max does). llvm.maximum says so in one call, but x86 has no instruction for it: the
# update became six (sign test, two blends, unordered compare, max, masked move) on a
# chain through the accumulator, 13% of softmax's row time (64 rows in cache). Instead the accumulator runs maxnum with ``nnan nsz`` (one vmaxps: a NaN
# operand makes it poison, which no one reads) and a flag beside it ORs ``isnan(value)``
# (a compare and a mask OR, off the accumulator's chain); reading the accumulator gives
# NaN when the flag is set. The sign of a zero extremum is unspecified (``nsz``), as it
# is for np.max.
def _nan_flagged(op: Op, dtype: np.dtype) -> bool:
    return op in (Op.MAXIMUM, Op.MINIMUM) and np.dtype(dtype).kind == "f"


# NOTE (interleaved math loops): LLVM's vectoriser interleaves a loop (several vectors
# per iteration, independent chains in flight) when it reduces or is small; an innermost
# loop whose body evaluates transcendental math and reduces nothing (cross_entropy's
# backward row: exp(x - max) * g/s plus the one-hot term) got one vector per iteration,
# where the exp's ~25-instruction chain then bounds it. Four per iteration measured
# 17.1 -> 15.6 us per 64 rows of 1024 (single thread, in cache); loops that LLVM already
# interleaved were unchanged. Only constant trip counts of at least 256 qualify, so the
# 4 x 16-lane body still runs several times per row.
_INTERLEAVE = 4
_INTERLEAVE_MIN_TRIP = 256


def _interleave_pays(end, body) -> bool:
    if not isinstance(end, ir.Constant) or end.constant < _INTERLEAVE_MIN_TRIP:
        return False
    if any(isinstance(s, (Loop, AccUpdate)) for s in body):
        return False
    return any(isinstance(s, Instr) and s.op in COSTLY for s in body)


# NOTE (one vector per float64 sin/cos call): float64 sin and cos are a call of a function
# with vector versions (NOTE (vector variants) in codegen.llvm_vector_calls), which the
# vectoriser costs as cheap and interleaved four times: four inlined copies of the fast
# path, ~20 ms of code generation each. A loop that calls one is given one vector per
# iteration: the lanes of an elementwise map are independent, so out-of-order execution
# overlaps the iterations as it did the copies. One kernel's cold compile, CPU ms after a
# warm-up compile, 4 alternating fresh processes (AMD EPYC VM, load ~4): sin 70-84 ->
# 51-84, cos * 2 75-94 -> 50-71, sin + cos 71-98 -> 51-93 (code generation 61-75 ->
# 29-49 ms); sin + cos over 64K in-cache elements 104-136 -> 110-128 us, the same within
# noise. (codegen.llvm_vector_calls' doc measured 250-300 ms on an earlier VM.) Float32
# pow on AVX-512 is such a call too (NOTE (fast float32 pow) in codegen.llvm_pow_f32),
# which NOTE (interleaved math loops) had given four vectors per iteration (|x| ** 2.5
# over 1M: four inlined copies of its fast path); one vector alone cut that kernel's cold
# compile from ~125 to ~100 ms of CPU (single runs), and with NOTE (cold float32 pow) in
# codegen.llvm_pow its steady speed stayed the same within noise.
_VECTOR_VARIANT_OPS = ((Op.SIN, np.float64), (Op.COS, np.float64))
_NATIVE_LDEXP_VECTOR_VARIANT_OPS = ((Op.POW, np.float32),)   # AVX-512's only


def _calls_vector_variant(body, native_ldexp: bool) -> bool:
    ops = _VECTOR_VARIANT_OPS + (_NATIVE_LDEXP_VECTOR_VARIANT_OPS if native_ldexp else ())
    return any(isinstance(s, Instr) and (s.op, s.dtype) in ops for s in body)


def _with_interleave(text: str, loops: dict[str, int]) -> str:
    """``text`` with NOTE (interleaved math loops) metadata on the latches of ``loops``
    (var -> vectors per iteration; llvmlite.ir cannot make the self-referencing node a
    loop ID needs)."""
    for k, (var, count) in enumerate(loops.items()):
        latch = f'br i1 %"{var}.latch", label %"{var}.body", label %"{var}.exit"'
        assert text.count(latch) == 1, latch
        loop_id, option = 2 * k + 9000, 2 * k + 9001
        text = text.replace(latch, f"{latch}, !llvm.loop !{loop_id}")
        text += (f"\n!{loop_id} = distinct !{{!{loop_id}, !{option}}}\n"
                 f'!{option} = !{{!"llvm.loop.interleave.count", i32 {count}}}\n')
    return text


# NOTE (light pipeline): a kernel that compares no integers (softmax, log_softmax,
# layer_norm, GELU, ReLU's where(x > 0, ...), most update and elementwise kernels) gives
# LLVM's O3 nothing that its O1 with the vectorisers does not already do, and O1 costs
# 15-20% less CPU (runtime.llvm_pipeline: NOTE (O1 with the vectorisers)). A kernel that
# compares an index with a bound (the masked loads of a concatenation or a padding) keeps
# O3, whose non-trivial loop unswitching turns a condition fixed per row into two copies
# of the inner loop: an LSTM kernel that adds three masked inputs runs contiguous vector
# loads where O1 leaves 16-lane gathers. A comparison of floats depends on the values
# loaded, never fixed per loop, so unswitching has nothing to take out. The first line of
# the source says which (the runtime reads it; it is part of the source, so of every
# cache key).
LIGHT_PIPELINE = "; tracegrad: light pipeline\n"


def _decides_on_indices(kernel: LoopKernel) -> bool:
    """True when ``kernel`` compares integers (an index against a bound: a mask)."""
    defs = kernel_defs(kernel)   # a name no instruction defines is a loop variable: an index
    return any(s.op in COMPARISON and any(np.dtype(defs[a].dtype if a in defs else INDEX).kind
                                          != "f" for a in s.args)
               for s in defs.values())


def render_llvm(kernel: LoopKernel, native_ldexp: bool = False,
                stream_min_bytes: int = 0) -> str:
    """LLVM IR text of ``kernel``: one module holding one function of the kernel ABI.
    ``native_ldexp``: the target scales by powers of two in one vector instruction
    (AVX-512; NOTE (native ldexp) in codegen.llvm_math). ``stream_min_bytes``: an x86-64
    target's last-level cache; a row kernel whose buffers hold at least that many bytes
    writes its output rows with non-temporal stores (NOTE (streamed rows) in
    codegen.stream_rows); 0 never does."""
    with phase("render"):
        return _Renderer(kernel, native_ldexp, stream_min_bytes).render()
