"""Copy kernels with costly index math become a gather through a table made once.

A kernel that only moves data (its group holds movement ops only: im2col under a
convolution, a reshape of a permuted window view) computes, for every element, a chain
of divisions and remainders and a padding mask: the CNN step's im2col of its second
convolution took ~2 ns per element on the 2-core VM, 20% of the whole step. Its
element map depends on the shapes only, so it is found once, by running the kernel
itself on its source filled with ``index + 1`` and again with ``-(index + 1)``: where
the two results are negatives of each other the element is copied from that index;
where they agree it is the padding value. The driver then runs ``dst[i] =
table[i] < 0 ? fill : src[table[i]]`` (``table_copy_function``), a loop LLVM
vectorises into gathers.  NOTE (runs): when the table splits into runs of ``run``
elements that are each all padding or consecutive source indices (im2col of
channels-last activations: runs of C channels), it keeps one entry per run and the
driver copies each run with one vector load and store.

Only kernels whose loop IR divides or takes remainders and that write more elements
than they read (windows that overlap, as im2col's do) use a table: a plain, transposed
or same-size copy is as cheap as it is. Both buffers are float32/float64 at no offset,
the result has ``MIN_ELEMENTS`` to ``MAX_ELEMENTS`` elements, and ``index + 1`` is exact
in the source's dtype.

>>> call = TableCopy(0, 1, 3, 8, np.dtype(np.float32), 0.0)
>>> "define internal void @c(" in table_copy_function("c", call)
True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .driver_ints import Spell, literal

import numpy as np

from ..codegen.ops import MOVEMENT
from ..codegen.schedule import KernelStep

MIN_ELEMENTS = 4096
MIN_RUN, MAX_RUN = 4, 64   # NOTE (runs): elements one table entry may stand for
# the table costs 4 bytes per element and is found by two runs of the kernel: bounded
# (kernels this big are split over the thread pool anyway, which a table does not do)
MAX_ELEMENTS = 1 << 22
_REAL = {np.dtype(np.float32): ("float", 1 << 24), np.dtype(np.float64): ("double", 1 << 53)}
_MOVEMENT_NAMES = frozenset(op.name for op in MOVEMENT)


@dataclass(frozen=True)
class TableCopy:
    """``addrs[dst][i] = table[i] < 0 ? fill : addrs[src][table[i]]`` for ``i < n``;
    the table's address is ``fns[fn]``.  With ``run > 1`` an entry stands for ``run``
    elements: ``dst[r*run + j] = table[r] < 0 ? fill : src[table[r] + j]`` (NOTE (runs))."""
    src: int
    dst: int
    fn: int
    n: int
    dtype: np.dtype
    fill: float
    run: int = 1


def copy_table(step: KernelStep, run: Callable[[int, int, int], None]
               ) -> tuple[np.ndarray, float, int] | None:
    """(int32 table, fill value, elements per entry) of a copy kernel ``step`` (see module
    doc and NOTE (runs)), or None. ``run(outer, src address, dst address)`` runs the
    compiled kernel."""
    kernel = step.kernel
    if not kernel.ops or not set(kernel.ops) <= _MOVEMENT_NAMES or len(kernel.buffers) != 2:
        return None
    src, dst = kernel.buffers
    if src.is_output or not dst.is_output or src.offset or dst.offset:
        return None
    if src.dtype != dst.dtype or src.dtype not in _REAL:
        return None
    if "MOD(" not in step.loop_ir and "IDIV(" not in step.loop_ir:
        return None
    if dst.size <= src.size:
        # measured (CNN step): a table paid 3-5x on windows that repeat their source
        # (im2col: 58 -> 18 µs, 361 -> 67 µs) but lost ~10% on same-size reshapes
        return None
    if not MIN_ELEMENTS <= dst.size <= MAX_ELEMENTS or src.size >= _REAL[src.dtype][1]:
        return None
    encoded = np.arange(1, src.size + 1, dtype=src.dtype)
    results = []
    for sign in (1, -1):
        source = encoded * sign
        out = np.full(dst.size, np.nan, dst.dtype)
        run(kernel.outer, source.ctypes.data, out.ctypes.data)
        results.append(out)
    first, second = results
    if np.isnan(first).any():
        return None   # an element the kernel does not write: not a plain copy
    copied = (first == -second) & (first != 0)
    filled = first[~copied]
    if filled.size and (not (filled == second[~copied]).all() or (filled != filled[0]).any()):
        return None
    index = np.where(copied, first, 0).astype(np.int64) - 1
    if copied.any() and (index[copied].min() < 0 or index[copied].max() >= src.size):
        return None
    table = np.where(copied, index, -1).astype(np.int32)
    fill = float(filled[0]) if filled.size else 0.0
    per_entry = run_length(table, src.size)
    return (table[::per_entry].copy() if per_entry > 1 else table), fill, per_entry


def run_length(table: np.ndarray, src_size: int) -> int:
    """NOTE (runs): the most elements per entry (up to ``MAX_RUN``, a divisor of the
    size) such that every run of the table is all padding or consecutive source
    indices; 1 when that is under ``MIN_RUN``.  im2col with channels last in a column
    (NOTE (channels last in a column), tracegrad/nn/_conv.py) over channels-last
    activations copies runs of C channels: one vector load and store each, where a table
    entry per element is one scalar gather."""
    n = table.size
    if n < 2:
        return 1
    pad = table < 0
    follows = (table[1:] == table[:-1] + 1) & ~pad[:-1] & ~pad[1:]
    same_pad = pad[1:] & pad[:-1]
    breaks = np.flatnonzero(~(follows | same_pad)) + 1   # where a new segment starts
    run = int(np.gcd.reduce(np.append(breaks, n)))
    while run > MAX_RUN:
        run = next(d for d in range(MAX_RUN, 0, -1) if run % d == 0)
    if run < MIN_RUN or run > src_size:
        return 1
    return run


def table_copy_function(name: str, call: TableCopy) -> str:
    """LLVM IR of ``void @name(ptr src, ptr dst, ptr table, i64 n)`` (see ``TableCopy``;
    ``n`` is an argument, so a symbolic program's driver passes it from its size table).
    NOTE (glue at O0, runtime.driver): the driver holding it is not optimised, so a run
    is written as one vector load and store, not a loop LLVM would have to vectorise."""
    real = _REAL[call.dtype][0]
    fill = "0x%016X" % int(np.array(call.fill, np.float64).view(np.uint64))
    run = call.run
    ty = real if run == 1 else f"<{run} x {real}>"
    fill_value = fill if run == 1 else "<" + ", ".join([f"{real} {fill}"] * run) + ">"
    return "\n".join([
        f"define internal void @{name}(ptr noalias %src, ptr noalias %dst, "
        "ptr noalias %table, i64 %n) {",
        "entry:",
        f"  %entries = udiv i64 %n, {run}",
        "  br label %loop",
        "loop:",
        "  %i = phi i64 [ 0, %entry ], [ %next, %loop ]",
        "  %tp = getelementptr i32, ptr %table, i64 %i",
        "  %t = load i32, ptr %tp",
        "  %pad = icmp slt i32 %t, 0",
        "  %j32 = select i1 %pad, i32 0, i32 %t",
        "  %j = zext i32 %j32 to i64",
        f"  %sp = getelementptr {real}, ptr %src, i64 %j",
        f"  %v = load {ty}, ptr %sp, align 4",
        f"  %r = select i1 %pad, {ty} {fill_value}, {ty} %v",
        f"  %d = mul i64 %i, {run}",
        f"  %dp = getelementptr {real}, ptr %dst, i64 %d",
        f"  store {ty} %r, ptr %dp, align 4",
        "  %next = add i64 %i, 1",
        "  %more = icmp ult i64 %next, %entries",
        "  br i1 %more, label %loop, label %done",
        "done:",
        "  ret void",
        "}",
    ])


def table_copy_lines(k: int, call: TableCopy, name: str, spell: Spell = literal) -> list[str]:
    """The driver's lines for call ``k``: the operands' and the table's addresses, then
    the call; ``spell`` writes the element count (NOTE (size table), runtime.driver)."""
    lines, n = spell(call.n, f"c{k}n")
    return [*lines,
            f"  %c{k}sp = getelementptr i64, ptr %addrs, i64 {call.src}",
            f"  %c{k}s = load ptr, ptr %c{k}sp",
            f"  %c{k}dp = getelementptr i64, ptr %addrs, i64 {call.dst}",
            f"  %c{k}d = load ptr, ptr %c{k}dp",
            f"  %c{k}tp = getelementptr i64, ptr %fns, i64 {call.fn}",
            f"  %c{k}t = load ptr, ptr %c{k}tp",
            f"  call void @{name}(ptr %c{k}s, ptr %c{k}d, ptr %c{k}t, i64 {n})"]

