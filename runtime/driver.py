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


NativeCall = Union[KernelCall, GemmCall, IndexCall, TableCopy]


def _load(k: int, name: str, table: str, index: int) -> list[str]:
    return [f"  %{name}p = getelementptr i64, ptr %{table}, i64 {index}",
            f"  %{name} = load ptr, ptr %{name}p"]


def _operand(k: int, tag: str, op: GemmOperand, spell: Spell) -> tuple[list[str], str]:
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


def driver_source(calls: list[NativeCall], spell: Spell = literal) -> str:
    """LLVM IR of a driver that runs ``calls`` in order (see module doc); ``spell``
    writes its integers: literals, or loads from a size table (NOTE (size table))."""
    body: list[str] = []
    helpers: list[str] = []
    for k, call in enumerate(calls):
        if isinstance(call, IndexCall):
            helpers.append(index_function(f"tg_index{k}", call))
            body += index_call_lines(k, call, f"tg_index{k}", spell)
            continue
        if isinstance(call, TableCopy):
            helpers.append(table_copy_function(f"tg_copy{k}", call))
            body += table_copy_lines(k, call, f"tg_copy{k}", spell)
            continue
        body += _load(k, f"f{k}", "fns", call.fn)
        if isinstance(call, KernelCall):
            args = []
            for j, pos in enumerate(call.positions):
                body += _load(k, f"a{k}_{j}", "addrs", pos)
                args.append(f"ptr %a{k}_{j}")
            lines, outer = spell(call.outer, f"n{k}")
            body += lines
            body.append(f"  call void %f{k}(i64 0, i64 {outer}, {', '.join(args)})")
            continue
        ints = f"i{call.int_bits}"
        real = "float" if np.dtype(call.dtype) == np.float32 else "double"
        pointers = []
        for tag, op in (("a", call.a), ("b", call.b), ("c", call.c)):
            lines, ref = _operand(k, tag, op, spell)
            body += lines
            pointers.append(ref)
        sizes = {}
        for tag, value in (("m", call.m), ("n", call.n), ("k", call.k), ("lda", call.a.ld),
                           ("ldb", call.b.ld), ("ldc", call.c.ld)):
            lines, sizes[tag] = _gemm_int(spell, value, f"g{k}_{tag}", call.int_bits)
            body += lines
        flag = {False: NO_TRANS, True: TRANS}
        body.append(
            f"  call void %f{k}(i32 {ROW_MAJOR}, i32 {flag[call.a.transpose]}, "
            f"i32 {flag[call.b.transpose]}, {ints} {sizes['m']}, {ints} {sizes['n']}, "
            f"{ints} {sizes['k']}, {real} {_float_literal(call.alpha)}, ptr {pointers[0]}, "
            f"{ints} {sizes['lda']}, ptr {pointers[1]}, {ints} {sizes['ldb']}, "
            f"{real} {_float_literal(call.beta)}, ptr {pointers[2]}, {ints} {sizes['ldc']})")
    return "\n".join([*helpers, f"define void @{DRIVER_NAME}(i64 %start, i64 %end, ptr %fns, "
                      "ptr %addrs) {", "entry:", *body, "  ret void", "}", ""])


def driver_with_table(calls: list[NativeCall], fns: list[int], size_table: bool
                      ) -> tuple[str, np.ndarray]:
    """(LLVM source, table) of a driver running ``calls``, whose functions are
    ``fns[call.fn]``. Each driver reads a table of its own: the addresses of its
    functions, then (``size_table``: a symbolic program, NOTE (size table)) its integers;
    its text then depends on its own calls alone, not on where other runs of the program
    start (a kernel split over threads from some size on leaves its run, not the others)."""
    own: list[int] = []
    local: list[NativeCall] = []
    for call in calls:
        if not isinstance(call, IndexCall):
            own.append(fns[call.fn])
            call = dataclasses.replace(call, fn=len(own) - 1)
        local.append(call)
    sizes = SizeTable(len(own)) if size_table else None
    source = driver_source(local, sizes or literal)
    return source, np.array(own + (sizes.values if sizes else []), np.int64)


def compile_drivers(runs: list[list[NativeCall]], fns: list[int], size_table: bool,
                    compiled: dict[str, JitModule]) -> list[tuple[str, np.ndarray, JitModule]]:
    """(source, table, module) of each run's driver (``driver_with_table``), the drivers
    ``compiled`` (source -> module, updated) lacks compiled as one module at O0 (NOTE
    (glue at O0), NOTE (one module per batch) in runtime.llvm_jit): one by one, the 32
    drivers of the LSTM's 4 lengths cost a module's fixed work each."""
    built = [driver_with_table(calls, fns, size_table) for calls in runs]
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
