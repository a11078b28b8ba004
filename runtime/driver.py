"""A generated driver: one LLVM function that calls a run of kernels and gemms in order.

``CompiledProgram`` used to call every step from Python: ~2.6 µs per ctypes kernel call
plus the argument shuffling, and a NumPy ``matmul`` (view making, dispatch) per matmul.
A driver calls them natively instead, so a run of steps costs one ctypes call:

    void @tg_driver(i64 %start, i64 %end, ptr %fns, ptr %addrs)

(the kernel ABI of ``runtime.llvm_jit``, so it compiles, caches and is called like a
kernel; ``start``/``end`` are unused). ``fns`` is a table of function addresses (the
kernels' entry points and the CBLAS gemm), ``addrs`` the program's per-call table of
buffer addresses (``cpu_program``'s NOTE (per-call cost)). Both are read at run time,
never baked into the code, so the driver's text depends on the program's shape only and
its object code is cached on disk like any kernel's. A symbolic program's driver also
reads its integers (extents, gemm sizes, offsets) from ``fns``, after the addresses, so
its text holds no size at all and one compiled driver serves every size (NOTE (size
table) in ``runtime.driver_ints``). Those loads cost nothing measurable: the same
12-call program (6 gemms, 60 integers) called 2000 times, min of 30 alternated runs,
14.6 µs with literals vs 12.5 µs with the table on the loaded 2-core VM, within its
noise; specialised programs keep literals all the same.

>>> calls = [KernelCall(0, 8, (0, 1))]
>>> "call void %f0(i64 0, i64 8, ptr %a0_0, ptr %a0_1)" in driver_source(calls)
True
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Union

import numpy as np

from ..codegen.schedule import BufferInfo, BufferRead, ExternStep
from ..codegen.view import contiguous_strides
from .cblas import NO_TRANS, ROW_MAJOR, TRANS, GemmLibrary, gemm_operand
from .copy_table import TableCopy, table_copy_function, table_copy_lines
from .driver_ints import SizeTable, Spell, literal
from .llvm_jit import JitModule, compile_llvm_many
from .native_index import IndexCall, index_call_lines, index_function

DRIVER_NAME = "tg_driver"


@dataclass(frozen=True)
class KernelCall:
    """Iterations ``[0, outer)`` of the kernel at ``fns[fn]`` over ``addrs[positions]``."""
    fn: int
    outer: int
    positions: tuple[int, ...]


@dataclass(frozen=True)
class GemmOperand:
    """A gemm matrix: ``addrs[position]`` + ``byte_offset``, transposed or not, and its
    leading dimension (elements)."""
    position: int
    byte_offset: int
    transpose: bool
    ld: int


@dataclass(frozen=True)
class GemmCall:
    """``c = alpha * op(a) @ op(b) + beta * c`` (row major) through the gemm at ``fns[fn]``."""
    fn: int
    dtype: np.dtype
    m: int
    n: int
    k: int
    a: GemmOperand
    b: GemmOperand
    c: GemmOperand
    int_bits: int
    alpha: float = 1.0
    beta: float = 0.0


@dataclass(frozen=True)
class ParallelCall:
    """``call`` (a kernel or a gemm) cut into ``chunks`` blocks (1: whole) that the native pool's
    ``tg_dispatch`` at ``fns[dispatch]`` runs on the caller and its workers, the pool's
    state at ``fns[state]`` (``runtime.native_pool``, NOTE (native claims))."""
    call: Union[KernelCall, GemmCall]
    chunks: int
    dispatch: int
    state: int


NativeCall = Union[KernelCall, GemmCall, IndexCall, TableCopy, ParallelCall]


def _load(k: int | str, name: str, table: str, index: int) -> list[str]:
    return [f"  %{name}p = getelementptr i64, ptr %{table}, i64 {index}",
            f"  %{name} = load ptr, ptr %{name}p"]


def _operand(k: int | str, tag: str, op: GemmOperand, spell: Spell) -> tuple[list[str], str]:
    name = f"a{k}_{tag}"
    lines = _load(k, name, "addrs", op.position)
    if op.byte_offset or isinstance(spell, SizeTable):   # one that is 0 at some sizes only
        more, offset = spell(op.byte_offset, f"{name}b")
        lines += [*more, f"  %{name}o = getelementptr i8, ptr %{name}, i64 {offset}"]
        name += "o"
    return lines, f"%{name}"


def _gemm_int(spell: Spell, value: int, name: str, bits: int) -> tuple[list[str], str]:
    """A gemm's integer argument, narrowed to the BLAS's integer width if it is loaded."""
    lines, ref = spell(value, name)
    if lines and bits != 64:
        lines.append(f"  %{name}t = trunc i64 {ref} to i{bits}")
        ref = f"%{name}t"
    return lines, ref


def _float_literal(value: float) -> str:
    # NOTE: LLVM wants float constants as the hex of their double; exact for float32 values
    return "0x%016X" % int(np.array(value, np.float64).view(np.uint64))


def _kernel_lines(k: int | str, call: KernelCall, spell: Spell,
                  span: tuple[str, str] | None = None) -> list[str]:
    """The call of a kernel over ``[0, outer)``, or over ``span`` (lo, hi references)."""
    body = _load(k, f"f{k}", "fns", call.fn)
    args = []
    for j, pos in enumerate(call.positions):
        body += _load(k, f"a{k}_{j}", "addrs", pos)
        args.append(f"ptr %a{k}_{j}")
    if span is None:
        lines, outer = spell(call.outer, f"n{k}")
        body += lines
        span = ("0", outer)
    body.append(f"  call void %f{k}(i64 {span[0]}, i64 {span[1]}, {', '.join(args)})")
    return body


def gemm_by_rows(call: GemmCall) -> bool:
    """A split gemm cuts C's rows, or its columns when C is wider than tall (as
    ``runtime.cblas.GemmBlocks``)."""
    return call.m >= call.n


def _gemm_lines(k: int | str, call: GemmCall, spell: Spell,
                span: tuple[str, str] | None = None, by_rows: bool = True) -> list[str]:
    """The CBLAS call of a gemm, whole or (``span``: lo, hi references) the block of C's
    rows (``by_rows``) or columns ``[lo, hi)``: each element still one dot product over
    all of K."""
    body = _load(k, f"f{k}", "fns", call.fn)
    ints = f"i{call.int_bits}"
    real = "float" if np.dtype(call.dtype) == np.float32 else "double"
    size = np.dtype(call.dtype).itemsize
    # elements from one row (column) of the block to the next in each operand: a leading
    # dimension (spelled: a size-table value in a symbolic driver), 1, or None (the
    # operand is shared by every block)
    lead = {"a": (call.a.ld if not call.a.transpose else 1) if by_rows else None,
            "b": None if by_rows else (call.b.ld if call.b.transpose else 1),
            "c": call.c.ld if by_rows else 1}
    uses_ld = {"a": not call.a.transpose, "b": call.b.transpose, "c": by_rows}
    pointers = []
    for tag, op in (("a", call.a), ("b", call.b), ("c", call.c)):
        lines, ref = _operand(k, tag, op, spell)
        body += lines
        ld = lead[tag]
        if span is not None and ld is not None:
            name = f"a{k}_{tag}s"
            more, ld_ref = spell(ld, f"{name}ld") if uses_ld[tag] else ([], "1")
            body += [*more, f"  %{name}e = mul i64 {span[0]}, {ld_ref}",
                     f"  %{name}b = mul i64 %{name}e, {size}",
                     f"  %{name} = getelementptr i8, ptr {ref}, i64 %{name}b"]
            ref = f"%{name}"
        pointers.append(ref)
    sizes = {}
    for tag, value in (("m", call.m), ("n", call.n), ("k", call.k), ("lda", call.a.ld),
                       ("ldb", call.b.ld), ("ldc", call.c.ld)):
        if span is not None and tag == ("m" if by_rows else "n"):
            body.append(f"  %g{k}_{tag} = sub i64 {span[1]}, {span[0]}")
            sizes[tag] = f"%g{k}_{tag}"
            if call.int_bits != 64:
                body.append(f"  %g{k}_{tag}t = trunc i64 %g{k}_{tag} to i{call.int_bits}")
                sizes[tag] += "t"
            continue
        lines, sizes[tag] = _gemm_int(spell, value, f"g{k}_{tag}", call.int_bits)
        body += lines
    flag = {False: NO_TRANS, True: TRANS}
    body.append(
        f"  call void %f{k}(i32 {ROW_MAJOR}, i32 {flag[call.a.transpose]}, "
        f"i32 {flag[call.b.transpose]}, {ints} {sizes['m']}, {ints} {sizes['n']}, "
        f"{ints} {sizes['k']}, {real} {_float_literal(call.alpha)}, ptr {pointers[0]}, "
        f"{ints} {sizes['lda']}, ptr {pointers[1]}, {ints} {sizes['ldb']}, "
        f"{real} {_float_literal(call.beta)}, ptr {pointers[2]}, {ints} {sizes['ldc']})")
    return body


def _block(k: int | str, call: KernelCall | GemmCall, spell: Spell, by_rows: bool
           ) -> list[str]:
    """A trampoline's lines for chunk ``%chunk`` of ``%chunks``: ``[outer * c / chunks,
    outer * (c + 1) / chunks)`` of the kernel's outer loop or of C's rows (columns)."""
    if isinstance(call, KernelCall):
        outer = call.outer
    else:
        outer = call.m if by_rows else call.n
    lines, ref = spell(outer, f"outer{k}")
    lo, hi = f"%lo{k}", f"%hi{k}"
    lines += [f"  {lo}0 = mul i64 {ref}, %chunk", f"  {lo} = udiv i64 {lo}0, %chunks",
              f"  %chunk1{k} = add i64 %chunk, 1", f"  {hi}0 = mul i64 {ref}, %chunk1{k}",
              f"  {hi} = udiv i64 {hi}0, %chunks"]
    if isinstance(call, KernelCall):
        return lines + _kernel_lines(k, call, spell, (lo, hi))
    return lines + _gemm_lines(k, call, spell, (lo, hi), by_rows)


def _parallel_lines(k: int, call: ParallelCall, spell: Spell) -> tuple[str, list[str]]:
    """(trampoline, driver lines) of a step split over the native pool: the driver hands
    ``tg_tramp{k}(chunk, chunks, ctx)`` to ``tg_dispatch`` (``runtime.native_pool``),
    ``ctx`` pointing at the driver's ``fns`` and ``addrs``.

    A symbolic driver's gemm cuts C's rows at some sizes and its columns at others
    (``gemm_by_rows``), so its trampoline holds both blocks and branches on a value of
    the size table: one driver text serves every size (NOTE (symbolic splits))."""
    inner = call.call
    tramp = [f"define internal void @tg_tramp{k}(i64 %chunk, i64 %chunks, ptr %ctx) {{",
             "entry:", "  %fns = load ptr, ptr %ctx",
             "  %addrsp = getelementptr ptr, ptr %ctx, i64 1",
             "  %addrs = load ptr, ptr %addrsp"]
    rows = isinstance(inner, KernelCall) or gemm_by_rows(inner)
    if isinstance(inner, GemmCall) and isinstance(spell, SizeTable):
        flag_lines, flag = spell(int(rows), "rowflag")
        tramp += [*flag_lines, f"  %byrows = icmp ne i64 {flag}, 0",
                  "  br i1 %byrows, label %rowblock, label %colblock",
                  "rowblock:", *_block("r", inner, spell, True), "  ret void",
                  "colblock:", *_block("c", inner, spell, False), "  ret void", "}"]
    else:
        tramp += [*_block(k, inner, spell, rows), "  ret void", "}"]
    chunk_lines, chunks = spell(call.chunks, f"c{k}")   # a symbolic driver's: per size
    lines = [f"  %ctx{k} = alloca [2 x ptr]", f"  store ptr %fns, ptr %ctx{k}",
             f"  %ctx{k}a = getelementptr ptr, ptr %ctx{k}, i64 1",
             f"  store ptr %addrs, ptr %ctx{k}a",
             *_load(k, f"d{k}", "fns", call.dispatch), *_load(k, f"s{k}", "fns", call.state),
             *chunk_lines, f"  call void %d{k}(i64 {chunks}, i64 0, ptr %s{k}, "
             f"ptr @tg_tramp{k}, ptr %ctx{k})"]
    return "\n".join(tramp), lines


def driver_source(calls: list[NativeCall], spell: Spell = literal) -> str:
    """LLVM IR of a driver that runs ``calls`` in order (see module doc); ``spell``
    writes its integers: literals, or loads from a size table (NOTE (size table))."""
    body: list[str] = []
    helpers: list[str] = []
    for k, call in enumerate(calls):
        if isinstance(call, IndexCall):
            helpers.append(index_function(f"tg_index{k}", call))
            body += index_call_lines(k, call, f"tg_index{k}", spell)
        elif isinstance(call, TableCopy):
            helpers.append(table_copy_function(f"tg_copy{k}", call))
            body += table_copy_lines(k, call, f"tg_copy{k}", spell)
        elif isinstance(call, ParallelCall):
            tramp, lines = _parallel_lines(k, call, spell)
            helpers.append(tramp)
            body += lines
        elif isinstance(call, KernelCall):
            body += _kernel_lines(k, call, spell)
        else:
            body += _gemm_lines(k, call, spell)
    # a declaration helpers share (two scatter_adds' llvm.memcpy) once: LLVM's parser
    # refuses a function declared twice, and the program then ran eagerly
    lines = [line for helper in helpers for line in helper.split("\n")]
    declared = dict.fromkeys(line for line in lines if line.startswith("declare "))
    defined = [line for line in lines if line not in declared]
    return "\n".join([*defined, *declared, f"define void @{DRIVER_NAME}(i64 %start, i64 %end, "
                      "ptr %fns, ptr %addrs) {", "entry:", *body, "  ret void", "}", ""])


def driver_with_table(calls: list[NativeCall], fns: list[int], size_table: bool
                      ) -> tuple[str, np.ndarray]:
    """(LLVM source, table) of a driver running ``calls``, whose functions are
    ``fns[call.fn]``. Each driver reads a table of its own: the addresses of its
    functions, then (``size_table``: a symbolic program, NOTE (size table)) its integers;
    its text then depends on its own calls alone, not on where other runs of the program
    start (a kernel split over threads from some size on leaves its run, not the others)."""
    own: list[int] = []
    local: list[NativeCall] = []
    def mine(fn: int) -> int:
        own.append(fns[fn])
        return len(own) - 1
    for call in calls:
        if isinstance(call, ParallelCall):
            call = dataclasses.replace(call, call=dataclasses.replace(
                call.call, fn=mine(call.call.fn)), dispatch=mine(call.dispatch),
                state=mine(call.state))
        elif not isinstance(call, IndexCall):
            call = dataclasses.replace(call, fn=mine(call.fn))
        local.append(call)
    sizes = SizeTable(len(own)) if size_table else None
    source = driver_source(local, sizes or literal)
    return source, np.array(own + (sizes.values if sizes else []), np.int64)


def compile_drivers(built: list[tuple[str, np.ndarray]], compiled: dict[str, JitModule]
                    ) -> list[tuple[str, np.ndarray, JitModule]]:
    """(source, table, module) of each driver (``built`` by ``driver_with_table``), the
    drivers ``compiled`` (source -> module, updated) lacks compiled as one module at O0
    (NOTE (glue at O0), NOTE (one module per batch) in runtime.llvm_jit): one by one, the
    32 drivers of the LSTM's 4 lengths cost a module's fixed work each."""
    new = list(dict.fromkeys(s for s, _ in built if s not in compiled))
    compiled.update(zip(new, compile_llvm_many(new, DRIVER_NAME, opt_level=0) if new else []))
    return [(s, table, compiled[s]) for s, table in built]


def gemm_for_matmul(step: ExternStep, buffers: dict[str, BufferInfo],
                    position: Callable[[str], int], fn: int,
                    library: GemmLibrary | None) -> GemmCall | None:
    """The gemm call that computes the matmul ``step`` into its planned output, or None
    when it is not one (no BLAS found, a batched or 1-D matmul, an operand that is no
    plain or transposed matrix, mixed dtypes)."""
    node = step.node
    if library is None or not step.fills_output or len(node.shape) != 2:
        return None
    if library.address(node.dtype) is None or 0 in node.shape:
        return None
    operands = []
    for arg in step.inputs:
        if not isinstance(arg, BufferRead) or buffers[arg.buffer].dtype != node.dtype:
            return None
        info = buffers[arg.buffer]
        if arg.view is None:
            shape, strides, offset = info.shape, contiguous_strides(info.shape), 0
        else:
            if len(arg.view.views) != 1 or arg.view.last.mask is not None:
                return None
            v = arg.view.last
            shape, strides, offset = v.shape, v.strides, v.offset
        layout = gemm_operand(tuple(shape), tuple(strides))
        if layout is None:
            return None
        operands.append(GemmOperand(position(arg.buffer), offset * info.dtype.itemsize,
                                    *layout))
    (m, k), (_, n) = (_shape_of(a, buffers) for a in step.inputs)  # type: ignore[arg-type]
    if k == 0:
        return None  # NOTE: NumPy fills zeros; leave that edge to it
    c = GemmOperand(position(step.output), 0, False, max(n, 1))
    return GemmCall(fn, np.dtype(node.dtype), m, n, k, operands[0], operands[1], c,
                    library.int_bits)


def _shape_of(arg: BufferRead, buffers: dict[str, BufferInfo]) -> tuple[int, ...]:
    return buffers[arg.buffer].shape if arg.view is None else arg.view.shape
