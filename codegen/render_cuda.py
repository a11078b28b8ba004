"""Render a ``LoopKernel`` as one self-contained CUDA C translation unit.

The renderer only prints: index math, loop structure and dtypes were decided by
``codegen.lower`` (the LLVM renderer prints the same IR).  Each IR op is one entry of
``CUDA_RULES``, a table from ``Op`` to a C expression (tinygrad's ``code_for_op``); every SSA value
becomes a ``const`` local.

Kernel ABI: ``extern "C" __global__ void name(const T* __restrict__ buf0, ...,
U* __restrict__ bufN)``, one pointer per ``kernel.buffers`` entry in order, no scalars
(shapes are baked in).  Two layouts, chosen by ``kernel_layout`` and matched by
``launch_config``:

- ``"grid"``: the outer loop is a grid-stride loop, one thread per outer iteration
  (elementwise kernels; row kernels whose rows are short).
- ``"block_rows"``: one block per outer iteration (a row), a grid-stride loop over blocks;
  the row's top-level loops stride over ``threadIdx.x`` and each accumulator is combined
  across the block after its loop (warp shuffles, then one value per warp through shared
  memory), so every thread sees the row's result.  Per-row stores are made by thread 0.
  ``blockDim.x`` must be a multiple of 32 (``launch_config`` ensures it).

Indices are ``long long``; a division or modulo whose operands provably fit in 32 bits
(ranges from loop extents and constants) is done in ``unsigned`` arithmetic, which is
several times cheaper than 64-bit division on a GPU.  Bool is ``bool`` in registers and
``unsigned char`` in memory; int64 is ``long long``.

NOTE (math accuracy): transcendentals use the IEEE-accurate libdevice functions
(``expf``, ``tanhf``, ...; at most 1-2 ulp).  The fast intrinsics (``__expf``,
``__logf``, ``__fdividef``) are not used: ``__expf``'s error grows with ``|x|``
(2 + 1.16|x| ulp), which breaks softmax/GELU tolerances for large inputs.  Nor is
``-use_fast_math`` (the driver compiles with ``-lineinfo`` only), so ``sinf``/``cosf``
reduce their argument exactly over the whole float range (CUDA's Payne-Hanek slow path;
2 ulp at most), as the LLVM renderer's float32 sin/cos (NOTE (float32 reduction)).

>>> from tracegrad.codegen.loop_ir import KernelBuilder, BufferArg
>>> from tracegrad.codegen.ops import Op
>>> b = KernelBuilder("k", outer=4)
>>> b.store("buf1", "o", b.emit(Op.EXP, (b.emit(Op.LOAD, ("buf0", "o"), "float32"),), "float32"))
>>> src = render_cuda(b.finish([BufferArg("buf0", np.dtype("float32"), 4, False),
...                             BufferArg("buf1", np.dtype("float32"), 4, True)]))
>>> 'extern "C" __global__ void k(const float* __restrict__ buf0, float* __restrict__ buf1)' in src
True
>>> "expf(v0)" in src
True
"""
from __future__ import annotations

import math
import re
from typing import Callable

import numpy as np

from .loop_ir import INDEX, AccUpdate, DefineAcc, Instr, Loop, LoopKernel, Store
from .ops import Op
from .scalar_ops import RENDERINGS
from .schedule import without_lengths

# register types; in memory bool is unsigned char
_CTYPE = {"float32": "float", "float64": "double", "int8": "signed char", "int16": "short",
          "int32": "int", "int64": "long long", "uint8": "unsigned char",
          "uint16": "unsigned short", "uint32": "unsigned int",
          "uint64": "unsigned long long", "bool": "bool"}
_U32_MAX = (1 << 32) - 1
_WARP = 32

_HELPERS = {
    "fpow": """\
#ifndef TG_CUDA_FPOW
#define TG_CUDA_FPOW
// PyTorch's exponents, else pow in double (float32: rounded once): NOTE (one pow)
template <typename T>
__device__ __forceinline__ T tg_fpow(T x, T e) {
  return e == (T)2 ? x * x : e == (T)3 ? x * x * x : e == (T)0.5 ? sqrt(x)
      : e == (T)-1 ? (T)1 / x : e == (T)-2 ? (T)1 / (x * x) : (T)pow((double)x, (double)e);
}
#endif
""",
    "ipow": """\
#ifndef TG_CUDA_IPOW
#define TG_CUDA_IPOW
// integer power by squaring; a negative exponent gives 1/x truncated (0 unless |x| == 1)
template <typename T>
__device__ __forceinline__ T tg_ipow(T x, T e) {
  if (e < 0) return (x == 1) ? (T)1 : (x == (T)-1 ? ((e & 1) ? (T)-1 : (T)1) : (T)0);
  T r = 1;
  while (e) { if (e & 1) r *= x; x *= x; e >>= 1; }
  return r;
}
#endif
""",
    "shfl": """\
#ifndef TG_CUDA_SHFL
#define TG_CUDA_SHFL
// __shfl_down_sync has no overloads below 32 bits: widen and narrow back
template <typename T> struct tg_shfl_wide { typedef T type; };
template <> struct tg_shfl_wide<bool> { typedef int type; };
template <> struct tg_shfl_wide<signed char> { typedef int type; };
template <> struct tg_shfl_wide<unsigned char> { typedef unsigned type; };
template <> struct tg_shfl_wide<short> { typedef int type; };
template <> struct tg_shfl_wide<unsigned short> { typedef unsigned type; };
template <typename T>
__device__ __forceinline__ T tg_shfl_down(T v, int s) {
  return (T)__shfl_down_sync(0xffffffffu, (typename tg_shfl_wide<T>::type)v, s);
}
#endif
""",
}


def ctype(dtype) -> str:
    """C type of a register value of ``dtype`` (bool is ``bool``; see ``mem_ctype``)."""
    name = np.dtype(dtype).name
    if name not in _CTYPE:
        raise NotImplementedError(f"CUDA renderer: dtype {name}")
    return _CTYPE[name]


def mem_ctype(dtype) -> str:
    """C element type of a buffer of ``dtype``: bool is stored as ``unsigned char``."""
    return "unsigned char" if np.dtype(dtype) == np.bool_ else ctype(dtype)


def literal(value, dtype) -> str:
    """C literal of ``value`` as ``dtype`` (exact for float32/float64, inf/nan included).

    >>> literal(0.5, "float32"), literal(float("-inf"), "float64"), literal(-2**63, "int64")
    ('0.5f', '(-__longlong_as_double(0x7ff0000000000000LL))', '(-9223372036854775807LL - 1)')
    """
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return "true" if value else "false"
    if dt.kind == "f":
        v = float(dt.type(value))
        f32 = dt.itemsize == 4
        if math.isnan(v):
            return "__int_as_float(0x7fffffff)" if f32 else "__longlong_as_double(0x7ff8000000000000LL)"
        if math.isinf(v):
            inf = "__int_as_float(0x7f800000)" if f32 else "__longlong_as_double(0x7ff0000000000000LL)"
            return inf if v > 0 else f"(-{inf})"
        # repr round-trips the double, which holds the float32 value exactly, so the
        # nearest float to the printed decimal is that value again
        text = repr(v)
        return f"{text}f" if f32 else text
    v = int(value)
    if dt.kind == "u":
        return f"{v}ULL" if dt.itemsize == 8 else f"{v}u"
    suffix = "LL" if dt.itemsize == 8 else ""
    if v == np.iinfo(dt).min and dt.itemsize >= 4:  # -N is unary minus on N, out of range
        return f"(-{-(v + 1)}{suffix} - 1)"
    return f"{v}{suffix}"


# -- op -> C expression ------------------------------------------------------------------
# each entry takes the operand names and the operand dtype (for CMP*) or result dtype


# CUDA_RULES[op](r, dtype, *names) -> C expression; ``dtype`` is the first operand's, ``r``
# the renderer (``r.helpers`` collects the helper snippets an expression needs). CONST,
# LOAD, ACC, CAST and WHERE are the renderer's own hooks.

def _fn(base: str, dt: np.dtype) -> str:
    return base + ("f" if dt == np.float32 else "")


class _NoRule(NotImplementedError):
    """An op with no rendering for an operand dtype (``_Renderer.op`` names the op)."""


def _by_kind(f: Callable | None = None, i: Callable | None = None, u: Callable | None = None,
             b: Callable | None = None) -> Callable:
    """A rule that picks by the operand kind: float, signed, unsigned, bool (defaults to
    unsigned)."""
    def rule(r, dt, *xs):
        dt = np.dtype(dt)
        fn = {"f": f, "i": i, "u": u, "b": b if b is not None else u}[dt.kind]
        if fn is None:
            raise _NoRule(dt.name)
        return fn(dt, *xs)
    return rule


def _math(base: str) -> Callable:
    return _by_kind(f=lambda dt, a: f"{_fn(base, dt)}({a})")


def _infix(sym: str) -> Callable:
    def expr(dt, a, b):
        # cast back: C promotes narrow ints to int
        return f"({ctype(dt)})({a} {sym} {b})" if dt.kind != "f" and dt.itemsize < 4 \
            else f"({a} {sym} {b})"
    return expr


def _logical(sym: str) -> Callable:
    return lambda dt, a, b: f"({a} {sym} {b})"


def _float_extremum(cmp: str) -> Callable:
    # NOTE: NaN-propagating like np.maximum and llvm.maximum (fmaxf drops NaN)
    return lambda dt, a, b: f"(({a} {cmp} {b} || {a} != {a}) ? {a} : {b})"


def _int_extremum(cmp: str) -> Callable:
    return lambda dt, a, b: f"({a} {cmp} {b} ? {a} : {b})"


def _sign(dt, a):
    t = ctype(dt)
    if dt.kind == "f":  # +0 for -0 and NaN, as torch.sign
        return f"({a} > 0 ? ({t})1 : ({a} < 0 ? ({t})-1 : ({t})0))"
    if dt.kind == "u" or dt.kind == "b":
        return f"({t})({a} > 0)"
    return f"({t})(({a} > 0) - ({a} < 0))"


def _identity(dt, a):
    return a


def _compare(sym: str) -> Callable:
    return lambda r, dt, a, b: f"({a} {sym} {b})"


def _ipow(r, dt, a, b):
    r.helpers.add("ipow")
    return f"tg_ipow<{ctype(dt)}>({a}, {b})"


def _fpow(r, dt, a, b):
    r.helpers.add("fpow")
    return f"tg_fpow<{ctype(dt)}>({a}, {b})"


# the built-in rules; an op registered before this import keeps its own
CUDA_RULES: dict[Op, Callable] = RENDERINGS["cuda"]
for _op, _rule in {
    Op.NEG: _by_kind(f=lambda dt, a: f"(-{a})", i=lambda dt, a: f"({ctype(dt)})(-{a})",
                     u=lambda dt, a: f"({ctype(dt)})(-{a})"),
    Op.NOT: _by_kind(i=lambda dt, a: f"({ctype(dt)})(~{a})", u=lambda dt, a: f"({ctype(dt)})(~{a})",
                     b=lambda dt, a: f"(!{a})"),
    Op.SIGN: _by_kind(f=_sign, i=_sign, u=_sign),
    Op.ABS: _by_kind(f=lambda dt, a: f"{_fn('fabs', dt)}({a})",
                     i=lambda dt, a: f"({a} < 0 ? ({ctype(dt)})(-{a}) : {a})", u=_identity),
    Op.FLOOR: _by_kind(f=lambda dt, a: f"{_fn('floor', dt)}({a})", i=_identity, u=_identity),
    Op.CEIL: _by_kind(f=lambda dt, a: f"{_fn('ceil', dt)}({a})", i=_identity, u=_identity),
    Op.ROUND: _by_kind(f=lambda dt, a: f"{_fn('rint', dt)}({a})", i=_identity, u=_identity),
    # as the interpreter: an integer reciprocal is 1/x in double, truncated
    Op.RECIP: _by_kind(f=lambda dt, a: f"({literal(1.0, dt)} / {a})",
                       i=lambda dt, a: f"({ctype(dt)})(1.0 / (double){a})",
                       u=lambda dt, a: f"({ctype(dt)})(1.0 / (double){a})"),
    **{op: _math(op.name.lower()) for op in (Op.SQRT, Op.EXP, Op.LOG, Op.SIN, Op.COS, Op.TANH,
                                             Op.ERF, Op.LOG1P, Op.EXPM1, Op.EXP2, Op.LOG2,
                                             Op.LOG10)},   # CUDA's functions of those names
    Op.SIGMOID: _by_kind(f=lambda dt, a: f"({literal(1.0, dt)} / ({literal(1.0, dt)} + "
                                         f"{_fn('exp', dt)}(-{a})))"),
    # a bool sum/product (reductions) is or/and
    Op.ADD: _by_kind(f=_infix("+"), i=_infix("+"), u=_infix("+"), b=_logical("||")),
    Op.SUB: _by_kind(f=_infix("-"), i=_infix("-"), u=_infix("-")),
    Op.MUL: _by_kind(f=_infix("*"), i=_infix("*"), u=_infix("*"), b=_logical("&&")),
    Op.DIV: _by_kind(f=_infix("/")),
    Op.POW: lambda r, dt, a, b: _ipow(r, dt, a, b) if np.dtype(dt).kind in "iu"
    else _fpow(r, dt, a, b),   # NOTE (one pow) in codegen.numpy_pow
    Op.FMOD: _by_kind(f=lambda dt, a, b: f"{_fn('fmod', dt)}({a}, {b})"),   # exact in CUDA
    Op.MAXIMUM: _by_kind(f=_float_extremum(">"), i=_int_extremum(">"), u=_int_extremum(">"),
                         b=_logical("||")),
    Op.MINIMUM: _by_kind(f=_float_extremum("<"), i=_int_extremum("<"), u=_int_extremum("<"),
                         b=_logical("&&")),
    Op.CMPLT: _compare("<"),
    Op.CMPLE: _compare("<="),
    Op.CMPEQ: _compare("=="),
    Op.CMPNE: _compare("!="),
    Op.AND: _by_kind(i=_infix("&"), u=_infix("&"), b=_logical("&&")),
    Op.OR: _by_kind(i=_infix("|"), u=_infix("|"), b=_logical("||")),
    Op.XOR: _by_kind(i=_infix("^"), u=_infix("^"), b=_logical("!=")),
    Op.IDIV: _by_kind(i=_infix("/"), u=_infix("/")),
    Op.MOD: _by_kind(i=_infix("%"), u=_infix("%")),
}.items():
    CUDA_RULES.setdefault(_op, _rule)


def _cast(a: str, src: np.dtype, dst: np.dtype) -> str:
    if src == dst:
        return a
    if dst.kind == "b":
        return f"({a} != 0)"
    return f"({ctype(dst)}){a}"


# -- layout --------------------------------------------------------------------------------


def _walk(body):
    for s in body:
        yield s
        if isinstance(s, Loop):
            yield from _walk(s.body)


def _live_values(body) -> set[str]:
    """Names of the values some store, accumulator update or live instruction reads."""
    stmts = list(_walk(body))
    live: set[str] = set()
    for s in stmts:
        if isinstance(s, Store):
            live.update((s.index, s.value))
        elif isinstance(s, AccUpdate):
            live.add(s.value)
    instrs = [s for s in stmts if isinstance(s, Instr)]
    for s in reversed(instrs):  # SSA: a reader comes after what it reads
        if s.out in live and s.op not in (Op.CONST, Op.LOAD, Op.ACC):
            live.update(a for a in s.args if isinstance(a, str))
        elif s.out in live and s.op is Op.LOAD:
            live.add(s.args[1])
    return live


def _block_rows_ok(kernel: LoopKernel) -> bool:
    """Whether the row body can be split across a block: accumulators are defined at the
    top and updated only inside top-level loops that do not also read them."""
    loops = [s for s in kernel.body if isinstance(s, Loop)]
    if not loops:
        return False
    if any(isinstance(s, AccUpdate) for s in kernel.body):
        return False
    for loop in loops:
        inner = list(_walk(loop.body))
        updated = {s.acc for s in inner if isinstance(s, AccUpdate)}
        if any(isinstance(s, DefineAcc) for s in inner):
            return False
        if any(isinstance(s, Instr) and s.op is Op.ACC and s.args[0] in updated for s in inner):
            return False
    return True


def _row_length(kernel: LoopKernel) -> int:
    # a run-time extent (NOTE (kernel parameters)) is refused where the loop is rendered
    return max((s.extent for s in kernel.body if isinstance(s, Loop) and isinstance(s.extent, int)),
               default=0)


LAYOUTS = ("grid", "block_rows")


def kernel_layout(kernel: LoopKernel, layout: str | None = None) -> str:
    """``"block_rows"`` (one block per outer iteration) or ``"grid"`` (one thread each).

    ``layout`` forces one: ``"grid"`` always works; ``"block_rows"`` raises where the
    kernel's rows cannot be split across a block.  ``None`` picks ``"block_rows"`` for
    kernels with top-level row loops of 32 or more iterations."""
    if layout is not None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if layout == "block_rows" and not _block_rows_ok(kernel):
            raise ValueError(f"kernel {kernel.name}: rows cannot be split across a block")
        return layout
    if _block_rows_ok(kernel) and _row_length(kernel) >= _WARP:
        return "block_rows"
    return "grid"


def launch_config(kernel: LoopKernel, max_threads: int = 256, max_blocks: int = 65535,
                  layout: str | None = None) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """``(grid, block)`` for ``render_cuda(kernel)``, as PyCUDA takes them.

    ``"grid"`` kernels get ``max_threads`` threads per block (fewer for small kernels)
    and enough blocks to cover the outer loop, at most ``max_blocks`` (the grid-stride
    loop covers the rest).  ``"block_rows"`` kernels get one block per row (at most
    ``max_blocks``) of a power of two >= 32 threads, no more than the row needs.

    >>> from tracegrad.codegen.loop_ir import KernelBuilder, BufferArg
    >>> from tracegrad.codegen.ops import Op
    >>> b = KernelBuilder("k", outer=1000)
    >>> b.store("buf1", "o", b.emit(Op.LOAD, ("buf0", "o"), "float32"))
    >>> launch_config(b.finish([BufferArg("buf0", np.dtype("float32"), 1000, False),
    ...                         BufferArg("buf1", np.dtype("float32"), 1000, True)]))
    ((4, 1, 1), (256, 1, 1))
    """
    if max_threads < _WARP or max_threads % _WARP or max_threads > 1024:
        raise ValueError(f"max_threads must be a multiple of 32 in [32, 1024], got {max_threads}")
    outer = max(kernel.outer, 1)
    if kernel_layout(kernel, layout) == "block_rows":
        threads = _WARP
        while threads < _row_length(kernel) and threads * 2 <= max_threads:
            threads *= 2
        return (min(outer, max_blocks), 1, 1), (threads, 1, 1)
    threads = min(max_threads, -(-outer // _WARP) * _WARP)
    return (min(-(-outer // threads), max_blocks), 1, 1), (threads, 1, 1)


# -- renderer ------------------------------------------------------------------------------


class _Renderer:
    def __init__(self, kernel: LoopKernel, layout: str | None):
        self.k = kernel
        self.block_rows = kernel_layout(kernel, layout) == "block_rows"
        self.buffers = {b.name: b.dtype for b in kernel.buffers}
        self.dtypes: dict[str, np.dtype] = {}
        self.ranges: dict[str, tuple[int, int]] = {kernel.outer_var: (0, max(kernel.outer - 1, 0))}
        self.accs: dict[str, DefineAcc] = {}
        self.helpers: set[str] = set()
        self.lines: list[str] = []
        self.live = _live_values(kernel.body)

    def render(self) -> str:
        k = self.k
        name = _c_name(k.name)
        params = ", ".join(
            f"{'' if b.is_output else 'const '}{mem_ctype(b.dtype)}* __restrict__ {b.name}"
            for b in k.buffers)
        consts = [s for s in k.body if isinstance(s, Instr) and s.op is Op.CONST]
        rest = [s for s in k.body if not (isinstance(s, Instr) and s.op is Op.CONST)]
        body: list[str] = []
        self.lines = body
        for s in consts:
            self._stmt(s, "  ")
        if self.block_rows:
            for s in rest:
                if isinstance(s, DefineAcc):
                    body.append(f"  __shared__ {ctype(s.dtype)} tg_red_{s.acc}[{_WARP}];")
            o, outer = k.outer_var, literal(k.outer, INDEX)
            body.append(f"  for (long long {o} = blockIdx.x; {o} < {outer}; {o} += gridDim.x) {{")
        else:
            o, outer = k.outer_var, literal(k.outer, INDEX)
            body.append(f"  for (long long {o} = blockIdx.x * (long long)blockDim.x + threadIdx.x; "
                        f"{o} < {outer}; {o} += (long long)gridDim.x * blockDim.x) {{")
        for s in rest:
            self._stmt(s, "    ", top=True)
        body.append("  }")
        layout = "block_rows" if self.block_rows else "grid"
        head = [f"// tracegrad kernel {k.name}: layout {layout}, ops {'+'.join(k.ops) or '-'}"]
        head += [_HELPERS[h] for h in sorted(self.helpers)]
        sig = f'extern "C" __global__ void {name}({params}) {{'
        return "\n".join(head + [sig] + body + ["}", ""])

    # -- statements ------------------------------------------------------------------------
    def _stmt(self, s, ind: str, top: bool = False) -> None:
        out = self.lines
        if isinstance(s, Instr):
            self.dtypes[s.out] = s.dtype
            if s.out not in self.live:  # e.g. an index constant that simplification orphaned
                self._expr(s)  # still record its range
                return
            out.append(f"{ind}const {ctype(s.dtype)} {_c_name(s.out)} = {self._expr(s)};")
        elif isinstance(s, Loop):
            if not isinstance(s.extent, int):
                raise NotImplementedError(f"CUDA renderer: loop {s.var} has a run-time extent "
                                          f"{s.extent} (a symbolic kernel body runs on the CPU "
                                          f"only)")
            self.ranges[s.var] = (0, max(s.extent - 1, 0))
            n = literal(s.extent, INDEX)
            if top and self.block_rows:
                out.append(f"{ind}for (long long {s.var} = threadIdx.x; {s.var} < {n}; "
                           f"{s.var} += blockDim.x) {{")
            else:
                out.append(f"{ind}for (long long {s.var} = 0; {s.var} < {n}; {s.var}++) {{")
            for t in s.body:
                self._stmt(t, ind + "  ")
            out.append(f"{ind}}}")
            if top and self.block_rows:
                updated = list(dict.fromkeys(t.acc for t in _walk(s.body) if isinstance(t, AccUpdate)))
                if updated:
                    self._block_reduce(updated, ind)
        elif isinstance(s, DefineAcc):
            self.accs[s.acc] = s
            out.append(f"{ind}{ctype(s.dtype)} {s.acc} = {literal(s.init, s.dtype)};")
        elif isinstance(s, AccUpdate):
            acc = self.accs[s.acc]
            out.append(f"{ind}{s.acc} = {self.op(acc.op, acc.dtype, s.acc, _c_name(s.value))};")
        elif isinstance(s, Store):
            val = _c_name(s.value)
            if self.buffers[s.buf] == np.bool_:
                val = f"(unsigned char){val}"
            store = f"{s.buf}[{_c_name(s.index)}] = {val};"
            if top and self.block_rows:
                store = f"if (threadIdx.x == 0) {store}"
            out.append(ind + store)
        else:
            raise TypeError(f"unknown statement {s!r}")

    def _block_reduce(self, accs: list[str], ind: str) -> None:
        """Combine each thread's partial ``accs`` across the block; all threads get it."""
        self.helpers.add("shfl")
        out, i2 = self.lines, ind + "  "

        def warp_reduce(indent):
            for a in accs:
                d = self.accs[a]
                comb = self.op(d.op, d.dtype, a, "t")
                out.append(f"{indent}for (int s = {_WARP // 2}; s > 0; s >>= 1) {{ "
                           f"const {ctype(d.dtype)} t = tg_shfl_down({a}, s); {a} = {comb}; }}")

        out.append(f"{ind}// block reduction of {', '.join(accs)}: warps, then warp 0 over the warps")
        warp_reduce(ind)
        out.append(f"{ind}if ((threadIdx.x & {_WARP - 1}u) == 0u) {{")
        out += [f"{i2}tg_red_{a}[threadIdx.x / {_WARP}u] = {a};" for a in accs]
        out.append(f"{ind}}}")
        out.append(f"{ind}__syncthreads();")
        out.append(f"{ind}if (threadIdx.x < {_WARP}u) {{")
        for a in accs:
            d = self.accs[a]
            out.append(f"{i2}{a} = threadIdx.x < blockDim.x / {_WARP}u ? tg_red_{a}[threadIdx.x] : "
                       f"{literal(d.init, d.dtype)};")
        warp_reduce(i2)
        out.append(f"{i2}if (threadIdx.x == 0u) {{")
        out += [f"{i2}  tg_red_{a}[0] = {a};" for a in accs]
        out.append(f"{i2}}}")
        out.append(f"{ind}}}")
        out.append(f"{ind}__syncthreads();")
        out += [f"{ind}{a} = tg_red_{a}[0];" for a in accs]
        out.append(f"{ind}__syncthreads();  // before the next row reuses tg_red_*")

    # -- values ----------------------------------------------------------------------------
    def _expr(self, s: Instr) -> str:
        dt = s.dtype
        if s.op is Op.CONST:
            if dt == INDEX:
                self.ranges[s.out] = (s.args[0], s.args[0])
            return literal(s.args[0], dt)
        if s.op is Op.LOAD:
            buf, idx = s.args[0], _c_name(s.args[1])
            return f"({buf}[{idx}] != 0)" if self.buffers[buf] == np.bool_ else f"{buf}[{idx}]"
        if s.op is Op.ACC:
            return s.args[0]
        args = [_c_name(a) for a in s.args]
        if dt == INDEX:
            self._index_range(s)
        if s.op is Op.CAST:
            return _cast(args[0], self.dtypes[s.args[0]], dt)
        if s.op is Op.WHERE:
            return f"({args[0]} ? {args[1]} : {args[2]})"
        in_dt = self.dtypes.get(s.args[0], INDEX)
        if s.op in (Op.IDIV, Op.MOD) and self._fits_u32(s.args[0]) and self._fits_u32(s.args[1]):
            sym = "/" if s.op is Op.IDIV else "%"
            return f"(long long)((unsigned){args[0]} {sym} (unsigned){args[1]})"
        return self.op(s.op, in_dt, *args)

    def op(self, op: Op, dtype, *args: str) -> str:
        """C expression of ``op`` on ``args`` (whose first has ``dtype``), by ``CUDA_RULES``."""
        rule = CUDA_RULES.get(op)
        if rule is None:
            raise NotImplementedError(f"CUDA renderer: no rule for {op.name}")
        try:
            return rule(self, np.dtype(dtype), *args)
        except _NoRule as e:
            raise NotImplementedError(f"CUDA renderer: {op.name} on {e}") from None

    def _fits_u32(self, name: str) -> bool:
        r = self.ranges.get(name)
        return r is not None and r[0] >= 0 and r[1] <= _U32_MAX

    def _index_range(self, s: Instr) -> None:
        r: list = [self.ranges.get(a) for a in s.args]  # the ranges read below are not None
        if any(x is None for x in r[-2:]):
            return
        if s.op in (Op.ADD, Op.SUB, Op.MUL):
            (a0, a1), (b0, b1) = r
            if s.op is Op.ADD:
                self.ranges[s.out] = (a0 + b0, a1 + b1)
            elif s.op is Op.SUB:
                self.ranges[s.out] = (a0 - b1, a1 - b0)
            else:
                p = [a0 * b0, a0 * b1, a1 * b0, a1 * b1]
                self.ranges[s.out] = (min(p), max(p))
        elif s.op is Op.IDIV and r[0][0] >= 0 and r[1][0] > 0:
            self.ranges[s.out] = (r[0][0] // r[1][1], r[0][1] // r[1][0])
        elif s.op is Op.MOD and r[0][0] >= 0 and r[1][0] > 0:
            self.ranges[s.out] = (0, min(r[1][1] - 1, r[0][1]))
        elif s.op is Op.WHERE:
            self.ranges[s.out] = (min(r[1][0], r[2][0]), max(r[1][1], r[2][1]))


def _c_name(name: str) -> str:
    """IR value names (``%3``) become C identifiers (``v3``); others are already valid."""
    if name.startswith("%"):
        return "v" + name[1:]
    name = re.sub(r"\W", "_", name)
    return name if name and not name[0].isdigit() else "k" + name


def render_cuda(kernel: LoopKernel, layout: str | None = None) -> str:
    """CUDA C source of ``kernel``: one ``extern "C" __global__`` function that compiles on
    its own (``nvcc --ptx``).  Launch it with ``launch_config(kernel)`` (pass the same
    ``layout`` to both when forcing one; see ``kernel_layout``)."""
    return _Renderer(kernel, layout).render()


def render_cuda_program(program) -> list[tuple[str, str]]:
    """``(name, CUDA source)`` of every kernel step of a ``codegen.schedule.Program``."""
    # a kernel's lengths are constants again here (NOTE (length parameters))
    return [(_c_name(step.name), render_cuda(without_lengths(step, program.buffers).kernel))
            for step in program.kernels]
