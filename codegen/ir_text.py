"""An IR builder that writes each instruction's text as it is built (NOTE (IR text)).

``TextBuilder`` has the interface of ``llvmlite.ir.IRBuilder`` that the LLVM renderer, its
rules (``codegen.render_llvm.LLVM_RULES``, a primitive's own ``llvm=`` rendering) and
``codegen.llvm_math`` use: the arithmetic, bitwise, comparison, cast, memory, vector, call
and branch instructions, block positioning and ``if_else``. Values, types, constants, the
module, its functions and its blocks stay llvmlite.ir's; only instructions are this
module's: each holds its printed line (a phi, an alloca and a store finish theirs when
printed, as their operands, alignment or metadata may still change), so printing the
module joins strings instead of formatting an object graph.

The text is llvmlite's, byte for byte: the same names (one ``NameScope`` per function, an
unnamed value ``%".N"`` by creation order, void instructions included), spacing and
operand formats (tests/test_ir_text.py compares the two builders over every rule and row
kernel).

NOTE (IR text): llvmlite.ir built an object per instruction (name registration, operand
checks, attribute sets) and formatted it again in ``str(module)``: softmax 4096x1024's
kernel (~250 instructions) took 3.0 ms to render, 38% of it printing (cProfile). This
builder keeps llvmlite's printing of the rest (header, declarations, metadata). Render
CPU per kernel, llvmlite.ir.IRBuilder -> TextBuilder (same renderer, thread CPU, median
of 15 interleaved, one process, load 5.5): softmax 2.99 -> 1.67 ms, log_softmax 3.27 ->
1.77, layer_norm with weight and bias 1.88 -> 1.16, cross_entropy's backward row 4.30 ->
2.35, GELU (tanh) 1.52 -> 0.85, SiLU 1.15 -> 0.67, small scalar kernels 0.2-0.4 ms ->
0.13-0.27. What stays is the renderer's own Python (planning, ``codegen.llvm_math``'s
emitters, name registration). A whole cold first call (process CPU after a GELU compile
paid LLVM's first use, a gc.collect() before each, median of 5 processes alternating
with the commit before this round, load 4.3): softmax 31.0 -> 25.9 ms, log_softmax
24.9 -> 20.3, layer_norm 19.3 -> 16.4, cross_entropy fwd+bwd 86.6 -> 73.5; of that, this
builder's share is the render column, the rest NOTE (short pipeline) in
runtime.llvm_pipeline and NOTE (copy addresses) in codegen.render_llvm_vector.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import llvmlite.ir as ir

_CMP = {">": "gt", "<": "lt", "==": "eq", "!=": "ne", ">=": "ge", "<=": "le"}
_VOID = ir.VoidType()
_I1, _I32 = ir.IntType(1), ir.IntType(32)
_BOOLS: dict[int, ir.Type] = {}   # lanes -> <lanes x i1> (0: i1)
# context managers: they move the position while their block runs, after a delegated call
_NOT_DELEGATED = frozenset({"goto_entry_block", "goto_block", "if_then", "if_else"})


def _bools(ty: ir.Type) -> ir.Type:
    """The type of a comparison of ``ty`` values."""
    lanes = ty.count if isinstance(ty, ir.VectorType) else 0
    out = _BOOLS.get(lanes)
    if out is None:
        out = _BOOLS[lanes] = ir.VectorType(_I1, lanes) if lanes else _I1
    return out


def _arg(v) -> str:
    """An operand as ``type ref``."""
    if type(v) is TextInstr:
        return f"{v.type} {v.ref}"
    return f"{v.type} {v.get_reference()}"


class TextInstr:
    """An instruction and its value: ``type``, ``get_reference()`` and its line."""

    __slots__ = ("parent", "type", "ref", "line")

    def __init__(self, parent: ir.Block, ty: ir.Type, ref: str, line: str) -> None:
        self.parent, self.type, self.ref, self.line = parent, ty, ref, line

    def get_reference(self) -> str:
        return self.ref

    @property
    def name(self) -> str:
        return self.ref[2:-1]

    def set_metadata(self, name: str, node) -> None:
        self.line += f", !{name} {node.get_reference()}"

    def __str__(self) -> str:
        return self.line

    def __repr__(self) -> str:
        return f"<ir_text {self.line!r}>"


class TextPhi(TextInstr):
    """A phi: its incoming values are added after it is built."""

    __slots__ = ("incomings",)

    def __init__(self, parent: ir.Block, ty: ir.Type, ref: str, line: str) -> None:
        super().__init__(parent, ty, ref, line)
        self.incomings: list[tuple] = []

    def add_incoming(self, value, block: ir.Block) -> None:
        self.incomings.append((value, block))

    def __str__(self) -> str:
        incs = ", ".join(f"[{v.get_reference()}, {b.get_reference()}]"
                         for v, b in self.incomings)
        return f"{self.line} {incs}"


class TextAlloca(TextInstr):
    """An alloca: its alignment may be set after it is built."""

    __slots__ = ("allocated_type", "align")

    def __init__(self, parent: ir.Block, ty: ir.Type, ref: str, line: str,
                 allocated: ir.Type) -> None:
        super().__init__(parent, ty, ref, line)
        self.allocated_type = allocated
        self.align: int | None = None

    def __str__(self) -> str:
        return self.line if self.align is None else f"{self.line}, align {self.align}"


class TextBuilder:
    """``llvmlite.ir.IRBuilder``'s interface (the part named in the module doc), writing
    text (NOTE (IR text))."""

    def __init__(self, block: ir.Block) -> None:
        self._block = block
        self._anchor = len(block.instructions)

    def __getattr__(self, name: str):
        """An IRBuilder method not written as text here (``fma``, ``ctpop``, ``switch``,
        ``unreachable``... in a primitive's own ``llvm=`` rendering): llvmlite's own
        instruction, inserted at this position; its text is IRBuilder's by construction.
        NOTE: without this such a rendering raised AttributeError and its function ran
        eagerly (a compile warning), where IRBuilder had compiled it."""
        method = getattr(ir.IRBuilder, name, None)
        if name.startswith("_") or not callable(method) or name in _NOT_DELEGATED:
            raise AttributeError(f"TextBuilder has no attribute {name!r}")

        def delegated(*args, **kwargs):
            b = ir.IRBuilder(self._block)
            b._anchor = self._anchor
            out = getattr(b, name)(*args, **kwargs)
            self._block, self._anchor = b.block, b._anchor
            return out
        delegated.__name__ = name
        return delegated

    # -- position -------------------------------------------------------------------------
    @property
    def block(self) -> ir.Block:
        return self._block

    basic_block = block

    @property
    def function(self) -> ir.Function:
        return self._block.parent

    @property
    def module(self) -> ir.Module:
        return self._block.parent.module

    def position_at_end(self, block: ir.Block) -> None:
        self._block = block
        self._anchor = len(block.instructions)

    def position_at_start(self, block: ir.Block) -> None:
        self._block = block
        self._anchor = 0

    def position_before(self, instr) -> None:
        self._block = instr.parent
        self._anchor = self._block.instructions.index(instr)

    def append_basic_block(self, name: str = "") -> ir.Block:
        return self.function.append_basic_block(name)

    @contextlib.contextmanager
    def goto_block(self, block: ir.Block) -> Iterator[None]:
        """At the end of ``block`` (before its terminator) while the block runs."""
        old = self._block
        if block.terminator is not None:
            self.position_before(block.terminator)
        else:
            self.position_at_end(block)
        try:
            yield
        finally:
            self.position_at_end(old)

    @contextlib.contextmanager
    def _branch_helper(self, enter: ir.Block, exit_: ir.Block) -> Iterator[ir.Block]:
        self.position_at_end(enter)
        yield exit_
        if self._block.terminator is None:
            self.branch(exit_)

    def _label(self, suffix: str) -> ir.Block:
        label = self._block.name
        if len(label) > 50:   # llvmlite's _label_suffix
            label = label[:25] + ".."
        return self.append_basic_block(label + suffix)

    @contextlib.contextmanager
    def if_then(self, pred, likely=None):
        """Blocks ``<current>.if`` and ``.endif``; ``likely`` weighs the branch (``!prof``)
        as llvmlite's ``set_weights`` does."""
        bbif, bbend = self._label(".if"), self._label(".endif")
        br = self.cbranch(pred, bbif, bbend)
        if likely is not None:
            module = self.module
            weights = [ir.MetaDataString(module, "branch_weights")]
            weights += [ir.Constant(ir.IntType(32), w) for w in ([99, 1] if likely else [1, 99])]
            br.set_metadata("prof", module.add_metadata(weights))
        with self._branch_helper(bbif, bbend):
            yield bbend
        self.position_at_end(bbend)

    @contextlib.contextmanager
    def if_else(self, pred, likely=None):
        """Blocks ``<current>.if``, ``.else`` and ``.endif``, as llvmlite names them."""
        if likely is not None:
            raise NotImplementedError("TextBuilder.if_else: branch weights (likely=)")
        bbif, bbelse, bbend = (self._label(suffix) for suffix in (".if", ".else", ".endif"))
        self.cbranch(pred, bbif, bbelse)
        yield self._branch_helper(bbif, bbend), self._branch_helper(bbelse, bbend)
        self.position_at_end(bbend)

    # -- emission -------------------------------------------------------------------------
    def _ref(self, name: str) -> str:
        scope = self._block.parent.scope
        if not name:   # NameScope.register("", deduplicate=True) without its loop
            count = scope._basenamemap[""] + 1
            name = f".{count}"
            if name not in scope._useset:
                scope._basenamemap[""] = count
                scope._useset.add(name)
                return f'%"{name}"'
        name = scope.register(name, deduplicate=True)
        if "\\" in name or '"' in name:
            name = name.replace("\\", "\\5c").replace('"', "\\22")
        return f'%"{name}"'

    def _emit(self, ty: ir.Type, name: str, text: str, cls=TextInstr, *extra) -> TextInstr:
        """Insert the instruction ``text`` (its operands) of result type ``ty``."""
        ref = self._ref(name)
        line = text if isinstance(ty, ir.VoidType) else f"{ref} = {text}"
        instr = cls(self._block, ty, ref, line, *extra)
        self._block.instructions.insert(self._anchor, instr)
        self._anchor += 1
        return instr

    def _terminate(self, text: str) -> TextInstr:
        assert self._block.terminator is None, "the block already has a terminator"
        instr = self._emit(_VOID, "", text)
        self._block.terminator = instr
        return instr

    def _binop(self, opname: str, lhs, rhs, name: str, flags) -> TextInstr:
        op = " ".join([opname, *flags]) if flags else opname
        return self._emit(lhs.type, name,
                          f"{op} {lhs.type} {lhs.get_reference()}, {rhs.get_reference()}")

    def add(self, lhs, rhs, name="", flags=()):
        return self._binop("add", lhs, rhs, name, flags)

    def sub(self, lhs, rhs, name="", flags=()):
        return self._binop("sub", lhs, rhs, name, flags)

    def mul(self, lhs, rhs, name="", flags=()):
        return self._binop("mul", lhs, rhs, name, flags)

    def udiv(self, lhs, rhs, name="", flags=()):
        return self._binop("udiv", lhs, rhs, name, flags)

    def sdiv(self, lhs, rhs, name="", flags=()):
        return self._binop("sdiv", lhs, rhs, name, flags)

    def urem(self, lhs, rhs, name="", flags=()):
        return self._binop("urem", lhs, rhs, name, flags)

    def srem(self, lhs, rhs, name="", flags=()):
        return self._binop("srem", lhs, rhs, name, flags)

    def fadd(self, lhs, rhs, name="", flags=()):
        return self._binop("fadd", lhs, rhs, name, flags)

    def fsub(self, lhs, rhs, name="", flags=()):
        return self._binop("fsub", lhs, rhs, name, flags)

    def fmul(self, lhs, rhs, name="", flags=()):
        return self._binop("fmul", lhs, rhs, name, flags)

    def fdiv(self, lhs, rhs, name="", flags=()):
        return self._binop("fdiv", lhs, rhs, name, flags)

    def frem(self, lhs, rhs, name="", flags=()):
        return self._binop("frem", lhs, rhs, name, flags)

    def shl(self, lhs, rhs, name="", flags=()):
        return self._binop("shl", lhs, rhs, name, flags)

    def lshr(self, lhs, rhs, name="", flags=()):
        return self._binop("lshr", lhs, rhs, name, flags)

    def ashr(self, lhs, rhs, name="", flags=()):
        return self._binop("ashr", lhs, rhs, name, flags)

    def and_(self, lhs, rhs, name="", flags=()):
        return self._binop("and", lhs, rhs, name, flags)

    def or_(self, lhs, rhs, name="", flags=()):
        return self._binop("or", lhs, rhs, name, flags)

    def xor(self, lhs, rhs, name="", flags=()):
        return self._binop("xor", lhs, rhs, name, flags)

    def not_(self, value, name=""):
        ty = value.type
        ones = ir.Constant(ty, (-1,) * ty.count) if isinstance(ty, ir.VectorType) \
            else ir.Constant(ty, -1)
        return self.xor(value, ones, name=name)

    def neg(self, value, name=""):
        return self.sub(ir.Constant(value.type, 0), value, name=name)

    def fneg(self, arg, name="", flags=()):
        op = " ".join(["fneg", *flags]) if flags else "fneg"
        return self._emit(arg.type, name, f"{op} {arg.type} {arg.get_reference()}")

    def _compare(self, opname: str, op: str, lhs, rhs, name: str, flags) -> TextInstr:
        fl = "".join(" " + f for f in flags)
        return self._emit(_bools(lhs.type), name, f"{opname}{fl} {op} {lhs.type} "
                          f"{lhs.get_reference()}, {rhs.get_reference()}")

    def icmp_signed(self, cmpop, lhs, rhs, name=""):
        op = _CMP[cmpop]
        return self._compare("icmp", op if cmpop in ("==", "!=") else "s" + op, lhs, rhs,
                             name, ())

    def icmp_unsigned(self, cmpop, lhs, rhs, name=""):
        op = _CMP[cmpop]
        return self._compare("icmp", op if cmpop in ("==", "!=") else "u" + op, lhs, rhs,
                             name, ())

    def fcmp_ordered(self, cmpop, lhs, rhs, name="", flags=()):
        op = "o" + _CMP[cmpop] if cmpop in _CMP else cmpop
        return self._compare("fcmp", op, lhs, rhs, name, flags)

    def fcmp_unordered(self, cmpop, lhs, rhs, name="", flags=()):
        op = "u" + _CMP[cmpop] if cmpop in _CMP else cmpop
        return self._compare("fcmp", op, lhs, rhs, name, flags)

    def select(self, cond, lhs, rhs, name="", flags=()):
        return self._emit(lhs.type, name, f"select {' '.join(flags)} {_arg(cond)}, "
                          f"{_arg(lhs)}, {_arg(rhs)}")

    def extract_value(self, agg, idx, name=""):
        indices = idx if isinstance(idx, (tuple, list)) else [idx]
        typ = agg.type
        for i in indices:
            typ = typ.elements[i]
        return self._emit(typ, name, f"extractvalue {agg.type} {agg.get_reference()}, "
                          f"{', '.join(map(str, indices))}")

    def insert_value(self, agg, value, idx, name=""):
        indices = idx if isinstance(idx, (tuple, list)) else [idx]
        return self._emit(agg.type, name, f"insertvalue {_arg(agg)}, {_arg(value)}, "
                          f"{', '.join(map(str, indices))}")

    def _cast(self, opname: str, val, typ: ir.Type, name: str):
        if str(val.type) == str(typ):
            return val
        return self._emit(typ, name, f"{opname} {_arg(val)} to {typ}")

    def trunc(self, val, typ, name=""):
        return self._cast("trunc", val, typ, name)

    def zext(self, val, typ, name=""):
        return self._cast("zext", val, typ, name)

    def sext(self, val, typ, name=""):
        return self._cast("sext", val, typ, name)

    def fptrunc(self, val, typ, name=""):
        return self._cast("fptrunc", val, typ, name)

    def fpext(self, val, typ, name=""):
        return self._cast("fpext", val, typ, name)

    def bitcast(self, val, typ, name=""):
        return self._cast("bitcast", val, typ, name)

    def fptoui(self, val, typ, name=""):
        return self._cast("fptoui", val, typ, name)

    def uitofp(self, val, typ, name=""):
        return self._cast("uitofp", val, typ, name)

    def fptosi(self, val, typ, name=""):
        return self._cast("fptosi", val, typ, name)

    def sitofp(self, val, typ, name=""):
        return self._cast("sitofp", val, typ, name)

    def ptrtoint(self, val, typ, name=""):
        return self._cast("ptrtoint", val, typ, name)

    def inttoptr(self, val, typ, name=""):
        return self._cast("inttoptr", val, typ, name)

    # -- memory ---------------------------------------------------------------------------
    def alloca(self, typ, size=None, name=""):
        if size is not None and not hasattr(size, "type"):
            size = ir.Constant(_I32, size)
        text = f"alloca {typ}" + (f", {_arg(size)}" if size is not None else "")
        return self._emit(typ.as_pointer(), name, text, TextAlloca, typ)

    def load(self, ptr, name="", align=None, typ=None):
        if typ is None:
            if isinstance(ptr, TextAlloca):
                typ = ptr.allocated_type
            elif not ptr.type.is_opaque:
                typ = ptr.type.pointee
            else:
                raise ValueError("TextBuilder.load: an opaque pointer needs typ=")
        text = f"load {typ}, {_arg(ptr)}" + (f", align {align}" if align is not None else "")
        return self._emit(typ, name, text)

    def store(self, value, ptr, align=None):
        text = f"store {_arg(value)}, {_arg(ptr)}" + (f", align {align}" if align is not None
                                                      else "")
        return self._emit(_VOID, "", text)

    def gep(self, ptr, indices, inbounds=False, name="", source_etype=None):
        if source_etype is None:
            if ptr.type.is_opaque or len(indices) != 1:
                raise ValueError("TextBuilder.gep: give source_etype= (one index of a "
                                 "typed pointer otherwise)")
            source_etype = ptr.type.pointee
        op = "getelementptr inbounds" if inbounds else "getelementptr"
        idx = ", ".join(_arg(i) for i in indices)
        return self._emit(ptr.type, name, f"{op} {source_etype}, {_arg(ptr)}, {idx}")

    # -- vectors --------------------------------------------------------------------------
    def insert_element(self, vector, value, idx, name=""):
        return self._emit(vector.type, name, f"insertelement {_arg(vector)}, {_arg(value)}, "
                          f"{_arg(idx)}")

    def extract_element(self, vector, idx, name=""):
        return self._emit(vector.type.element, name,
                          f"extractelement {_arg(vector)}, {_arg(idx)}")

    def shuffle_vector(self, vector1, vector2, mask, name=""):
        ty = ir.VectorType(vector1.type.element, mask.type.count)
        return self._emit(ty, name, f"shufflevector {_arg(vector1)}, {_arg(vector2)}, "
                          f"{_arg(mask)}")

    # -- calls, phis, branches ------------------------------------------------------------
    def call(self, fn, args, name="", cconv=None, tail=False, fastmath=(), attrs=(),
             arg_attrs=None):
        if attrs or arg_attrs:
            raise NotImplementedError("TextBuilder.call: attrs / arg_attrs")
        fnty = fn.function_type
        cconv = fn.calling_convention if cconv is None and isinstance(fn, ir.Function) \
            else cconv
        callee = f"{fnty if fnty.var_arg else fnty.return_type} {fn.get_reference()}"
        if cconv:
            callee = f"{cconv} {callee}"
        fm = " " + " ".join(sorted(set(fastmath))) if fastmath else ""
        head = "tail call" if tail is True else f"{tail} call" if tail else "call"
        return self._emit(fnty.return_type, name,
                          f"{head}{fm} {callee}({', '.join(_arg(a) for a in args)})")

    def phi(self, typ, name="", flags=()):
        return self._emit(typ, name, f"phi {' '.join(flags)} {typ}", TextPhi)

    def branch(self, target):
        return self._terminate(f"br label {target.get_reference()}")

    def cbranch(self, cond, truebr, falsebr):
        return self._terminate(f"br {_arg(cond)}, label {truebr.get_reference()}, "
                               f"label {falsebr.get_reference()}")

    def ret_void(self):
        return self._terminate("ret void")

    def ret(self, value):
        return self._terminate(f"ret {_arg(value)}")
