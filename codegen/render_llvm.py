"""Render a ``LoopKernel`` as one self-contained LLVM module (text) with llvmlite.ir.

ABI: ``void @name(i64 %start, i64 %end, ptr noalias %buf0, ...)`` runs outer iterations
``start <= o < end``.  The renderer only prints: index math, loop structure and dtype
choices were made by ``codegen.lower``.  To let LLVM vectorise the innermost loop the
module keeps every access a GEP off a ``noalias`` parameter with a simple induction
variable, emits no calls for math (``codegen.llvm_math.emit_math`` when present, LLVM
intrinsics otherwise) and marks only accumulator updates ``reassoc`` (an FP reduction
does not vectorise without it; nothing else uses unsafe fast-math).

>>> from tracegrad.codegen.loop_ir import KernelBuilder, BufferArg
>>> b = KernelBuilder("k", outer=4)
>>> b.store("buf1", "o", b.emit("LOAD", ("buf0", "o"), "float32"))
>>> src = render_llvm(b.finish([BufferArg("buf0", np.dtype("float32"), 4, False),
...                             BufferArg("buf1", np.dtype("float32"), 4, True)]))
>>> 'define void @"k"(i64 %"start", i64 %"end", ptr noalias %"buf0"' in src
True
"""
from __future__ import annotations

import llvmlite.ir as ir
import numpy as np

from .loop_ir import AccUpdate, DefineAcc, Instr, Loop, LoopKernel, Store

try:  # call-free vectorisable math (polynomials), shared with the CUDA-less CPU path
    from .llvm_math import FUNCTIONS as _MATH_FUNCTIONS, emit_math as _emit_math
except ImportError:  # pragma: no cover - stand-in: intrinsics (scalar libm calls per lane)
    _MATH_FUNCTIONS, _emit_math = (), None

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
F32, F64 = ir.FloatType(), ir.DoubleType()
_REG = {"float32": F32, "float64": F64, "int32": I32, "int64": I64, "uint8": I8, "bool": I1}
_MEM = {**_REG, "bool": I8}
_FCMP = {"CMPLT": "<", "CMPLE": "<=", "CMPGT": ">", "CMPGE": ">=", "CMPEQ": "==", "CMPNE": "!="}
_INTRINSIC = {"EXP": "llvm.exp", "LOG": "llvm.log", "SIN": "llvm.sin", "COS": "llvm.cos",
              "SQRT": "llvm.sqrt", "FLOOR": "llvm.floor", "CEIL": "llvm.ceil",
              "ROUND": "llvm.roundeven", "ABS": "llvm.fabs", "TANH": "llvm.tanh",
              "MAXIMUM": "llvm.maximum", "MINIMUM": "llvm.minimum", "POW": "llvm.pow"}
_LIBM = {"ERF": "erf", "LOG1P": "log1p", "EXPM1": "expm1"}


def _suffix(ty) -> str:
    return "f32" if ty == F32 else "f64"


class _Renderer:
    def __init__(self, kernel: LoopKernel):
        self.k = kernel
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
        self.b = ir.IRBuilder(self.entry)
        self.accs = {}

    def render(self) -> str:
        self._loop(self.k.outer_var, self.fn.args[0], self.fn.args[1], self.k.body)
        self.b.ret_void()
        # NOTE: LLVM prefers 256-bit vectors on AVX-512 hosts unless told otherwise; these
        # loops are bandwidth-bound and gain from 512 (no effect on narrower hosts).
        # llvmlite.ir rejects string attributes, so add it to the text.
        return str(self.module).replace(
            ") nounwind\n{", ') nounwind "prefer-vector-width"="512"\n{', 1)

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
        b.cbranch(b.icmp_signed("<", nxt, end), header, exit_)
        b.position_at_end(exit_)

    def _body(self, body):
        b = self.b
        for s in body:
            if isinstance(s, Instr):
                self.env[s.out] = self._instr(s)
                self.dtypes[s.out] = s.dtype
            elif isinstance(s, Loop):
                self._loop(s.var, ir.Constant(I64, 0), ir.Constant(I64, s.extent), s.body)
            elif isinstance(s, DefineAcc):
                ty = _REG[s.dtype.name]
                with b.goto_block(self.entry):
                    b.position_at_start(self.entry)
                    slot = b.alloca(ty, name=s.acc)
                self.accs[s.acc] = (slot, s.op, s.dtype)
                b.store(self._const(s.init, s.dtype), slot)
            elif isinstance(s, AccUpdate):
                slot, op, dtype = self.accs[s.acc]
                old = b.load(slot)
                b.store(self._binary(op, dtype, old, self.env[s.value], reduce=True), slot)
            elif isinstance(s, Store):
                ptr, dtype = self.buffers[s.buf]
                val = self.env[s.value]
                if dtype == np.bool_:
                    val = b.zext(val, I8)
                b.store(val, b.gep(ptr, [self.env[s.index]], inbounds=True,
                                   source_etype=_MEM[dtype.name]))
            else:
                raise TypeError(s)

    # -- values ---------------------------------------------------------------------------
    def _const(self, value, dtype):
        ty = _REG[np.dtype(dtype).name]
        if isinstance(ty, ir.IntType):
            return ir.Constant(ty, int(value) & ((1 << ty.width) - 1))
        return ir.Constant(ty, float(value))

    def _instr(self, s: Instr):
        b, dt = self.b, s.dtype
        if s.op == "CONST":
            return self._const(s.args[0], dt)
        if s.op == "LOAD":
            ptr, bdt = self.buffers[s.args[0]]
            val = b.load(b.gep(ptr, [self.env[s.args[1]]], inbounds=True,
                               source_etype=_MEM[bdt.name]), typ=_MEM[bdt.name])
            return b.icmp_unsigned("!=", val, ir.Constant(I8, 0)) if bdt == np.bool_ else val
        if s.op == "ACC":
            slot, _, _ = self.accs[s.args[0]]
            return b.load(slot)
        args = [self.env[a] for a in s.args]
        if s.op == "CAST":
            return self._cast(args[0], self.dtypes[s.args[0]], dt)
        if s.op == "WHERE":
            return b.select(args[0], args[1], args[2])
        if len(args) == 2:
            return self._binary(s.op, self.dtypes[s.args[0]], args[0], args[1])
        return self._unary(s.op, dt, args[0])

    def _call(self, name, ty, args):
        fn = self.module.globals.get(name)
        if fn is None:
            fn = ir.Function(self.module, ir.FunctionType(ty, [a.type for a in args]), name=name)
        return self.b.call(fn, args)

    def _intrinsic(self, base, ty, args):
        return self._call(f"{base}.{_suffix(ty)}", ty, args)

    def _binary(self, op, dtype, x, y, reduce=False):
        b, kind, ty = self.b, np.dtype(dtype).kind, x.type
        if op.startswith("CMP"):
            if kind == "f":
                pred = _FCMP[op]
                return b.fcmp_unordered(pred, x, y) if op == "CMPNE" else b.fcmp_ordered(pred, x, y)
            signed = kind == "i"
            return (b.icmp_signed if signed else b.icmp_unsigned)(_FCMP[op], x, y)
        if kind == "f":
            flags = ("reassoc",) if reduce else ()
            if op in ("ADD", "SUB", "MUL", "DIV"):
                fn = {"ADD": b.fadd, "SUB": b.fsub, "MUL": b.fmul, "DIV": b.fdiv}[op]
                return fn(x, y, flags=flags)
            return self._intrinsic(_INTRINSIC[op], ty, [x, y])
        if kind == "b":
            op = {"ADD": "OR", "MUL": "AND", "MAXIMUM": "OR", "MINIMUM": "AND"}.get(op, op)
        signed = kind == "i"
        if op in ("MAXIMUM", "MINIMUM"):
            pred = ">" if op == "MAXIMUM" else "<"
            cmp = (b.icmp_signed if signed else b.icmp_unsigned)(pred, x, y)
            return b.select(cmp, x, y)
        table = {"ADD": b.add, "SUB": b.sub, "MUL": b.mul, "AND": b.and_, "OR": b.or_,
                 "XOR": b.xor, "IDIV": b.udiv, "MOD": b.urem}
        return table[op](x, y)

    def _unary(self, op, dtype, x):
        b, kind, ty = self.b, np.dtype(dtype).kind, x.type
        if op == "NOT":
            return b.xor(x, ir.Constant(ty, 1 if kind == "b" else -1))
        if op == "NEG":
            return b.fneg(x) if kind == "f" else b.neg(x)
        if op == "SIGN":
            zero = ir.Constant(ty, 0)
            one, minus = ir.Constant(ty, 1), ir.Constant(ty, -1)
            if kind == "f":
                return b.select(b.fcmp_ordered(">", x, zero), one,
                                b.select(b.fcmp_ordered("<", x, zero), minus, x))
            if kind != "i":
                return b.select(b.icmp_unsigned(">", x, zero), one, zero)
            return b.select(b.icmp_signed(">", x, zero), one,
                            b.select(b.icmp_signed("<", x, zero), minus, zero))
        if kind != "f":
            if op == "ABS" and kind == "i":
                return b.select(b.icmp_signed("<", x, ir.Constant(ty, 0)), b.neg(x), x)
            if op in ("ABS", "FLOOR", "CEIL", "ROUND"):
                return x
            raise NotImplementedError(f"{op} on {dtype}")
        if op == "RECIP":
            return b.fdiv(ir.Constant(ty, 1.0), x)
        if op == "SIGMOID" and "sigmoid" not in _MATH_FUNCTIONS:
            e = self._math("EXP", b.fneg(x))
            return b.fdiv(ir.Constant(ty, 1.0), b.fadd(ir.Constant(ty, 1.0), e))
        return self._math(op, x)

    def _math(self, op, x):
        if op.lower() in _MATH_FUNCTIONS:
            return _emit_math(self.b, op.lower(), x)
        if op in _LIBM:
            name = _LIBM[op] + ("f" if x.type == F32 else "")
            return self._call(name, x.type, [x])
        return self._intrinsic(_INTRINSIC[op], x.type, [x])

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


def render_llvm(kernel: LoopKernel) -> str:
    """LLVM IR text of ``kernel``: one module holding one function of the kernel ABI."""
    return _Renderer(kernel).render()
