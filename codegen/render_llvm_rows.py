"""The LLVM renderer's streamed output rows (NOTE (streamed rows) in codegen.stream_rows).

A streamed row's last loop (the one that writes the row) is rendered in blocks of whole
cache lines: an inner loop over the block's elements computes them into a 64-byte
aligned stack line (LLVM vectorises it; its one vector iteration then keeps the line in
registers), and each block ends with one non-temporal vector store of the line when the
output row is 64-byte aligned (a plain vector store otherwise). Values an earlier loop
stashes in the row (NOTE (row stash) in codegen.lower) go to a stack row instead, which
the last loop reads back.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import llvmlite.ir as ir
import numpy as np

from .loop_ir import Instr, Loop, Store
from .ops import Op
from .stream_rows import LINE_BYTES, StreamedRow, kernel_defs, outer_only_chain

if TYPE_CHECKING:
    from .render_llvm import _Renderer

I32, I64 = ir.IntType(32), ir.IntType(64)
# lines per block of a last loop that evaluates costly math: four vectors in flight, as
# NOTE (interleaved math loops) in codegen.render_llvm
MATH_LINES = 4


def _touches(s, row: StreamedRow) -> bool:
    if isinstance(s, Store):
        return s.buf == row.buf
    return isinstance(s, Instr) and s.op is Op.LOAD and s.out in row.accesses


class RowStreams:
    """The stack rows and lines of a kernel's streamed outputs while it renders."""

    def __init__(self, r: "_Renderer", rows: list[StreamedRow]) -> None:
        self.r = r
        self.rows = {row.buf: row for row in rows}
        self.defs = kernel_defs(r.k) if rows else {}
        self.stack_rows: dict[str, ir.AllocaInstr] = {}
        self.last_loop: dict[int, list[StreamedRow]] = {}   # id(loop) -> its rows
        self.lines: dict[str, tuple[ir.AllocaInstr, ir.Value]] = {}  # while a block renders
        for row in rows:
            loops = [s for s in r.k.body if isinstance(s, Loop)
                     and any(_touches(t, row) for t in s.body)]
            self.last_loop.setdefault(id(loops[-1]), []).append(row)
            if row.stashed:
                slot = r._alloca(self._elem(row), f"{row.buf}.row", ir.Constant(I64, row.extent))
                slot.align = LINE_BYTES
                self.stack_rows[row.buf] = slot

    def _elem(self, row: StreamedRow) -> ir.Type:
        return self.r.mem_type(row.buf)

    def address(self, buf: str, index: str, load: str) -> ir.Value | None:
        """Where a streamed row's access goes: a store of the last loop into its line, any
        other access into the stack row; None for every other access."""
        row = self.rows.get(buf)
        access = load or index
        if row is None or access not in row.accesses:
            return None
        b = self.r.b
        if not load and buf in self.lines:
            line, lane = self.lines[buf]
            return b.gep(line, [lane], inbounds=True, source_etype=self._elem(row))
        return b.gep(self.stack_rows[buf], [self.r.env[row.accesses[access]]], inbounds=True,
                     source_etype=self._elem(row))

    def render_loop(self, loop: Loop, interleave: bool) -> bool:
        """Render ``loop`` in blocks of lines when it is a streamed row's last loop;
        False (nothing rendered) otherwise."""
        rows = self.last_loop.get(id(loop))
        if not rows:
            return False
        r, b = self.r, self.r.b
        extent = loop.extent
        assert isinstance(extent, int)   # streamed_rows takes constant row lengths only
        item = min(r.itemsize(row.buf) for row in rows)
        lines = MATH_LINES if interleave and extent * item % (MATH_LINES * LINE_BYTES) == 0 \
            else 1
        block = lines * LINE_BYTES // item
        starts = {}
        for row in rows:
            for instr in outer_only_chain(row.base, self.defs):
                r.env[instr.out] = r._instr(instr)   # its loop computes it again, later
                r.dtypes[instr.out] = instr.dtype
            ptr = r.buffers[row.buf][0]
            start = b.gep(ptr, [r.env[row.base]], inbounds=True, source_etype=self._elem(row))
            low = b.and_(b.ptrtoint(start, I64), ir.Constant(I64, LINE_BYTES - 1))
            starts[row.buf] = (start, b.icmp_unsigned("==", low, ir.Constant(I64, 0)))
            line = r._alloca(self._elem(row), f"{row.buf}.line", ir.Constant(I64, block))
            line.align = LINE_BYTES
            self.lines[row.buf] = (line, None)
        outer = self._begin(f"{loop.var}.block", extent // block)
        first = b.mul(outer, ir.Constant(I64, block))
        lane = self._begin(loop.var, block, value=lambda k: b.add(first, k))
        for row in rows:
            self.lines[row.buf] = (self.lines[row.buf][0], lane)
        r._body(loop.body)
        self._end(loop.var, lane, block)
        if interleave and lines == MATH_LINES:
            r.interleaved[loop.var] = MATH_LINES
        for row in rows:
            self._store_line(row, *starts[row.buf], first, block)
        self._end(f"{loop.var}.block", outer, extent // block)
        for row in rows:
            del self.lines[row.buf]
        return True

    def _store_line(self, row: StreamedRow, start: ir.Value, aligned: ir.Value,
                    first: ir.Value, block: int) -> None:
        """The block's line to the output row: non-temporal when the row is aligned."""
        b, elem = self.r.b, self._elem(row)
        value = b.load(self.lines[row.buf][0], typ=ir.VectorType(elem, block), align=LINE_BYTES)
        at = b.gep(start, [first], inbounds=True, source_etype=elem)
        with b.if_else(aligned) as (streamed, plain):
            with streamed:
                store = b.store(value, at, align=LINE_BYTES)
                store.set_metadata("nontemporal", self.r.module.add_metadata([ir.Constant(I32, 1)]))
            with plain:
                b.store(value, at, align=self.r.itemsize(row.buf))

    def _begin(self, var: str, extent: int, value=None) -> ir.Value:
        """Open ``for var in [0, extent)`` (``extent`` > 0) named as the renderer names
        loops; the loop variable is bound to ``value(k)`` (default ``k``)."""
        r, b = self.r, self.r.b
        pre = b.block
        header = r.fn.append_basic_block(f"{var}.body")
        b.branch(header)
        b.position_at_end(header)
        k = b.phi(I64, name=var if value is None else f"{var}.lane")
        k.add_incoming(ir.Constant(I64, 0), pre)
        r.env[var] = k if value is None else value(k)
        r.dtypes[var] = np.dtype(np.int64)
        return k

    def _end(self, var: str, k: ir.PhiInstr, extent: int) -> None:
        r, b = self.r, self.r.b
        nxt = b.add(k, ir.Constant(I64, 1), name=f"{var}.next")
        k.add_incoming(nxt, b.block)
        exit_ = r.fn.append_basic_block(f"{var}.exit")
        b.cbranch(b.icmp_signed("<", nxt, ir.Constant(I64, extent), name=f"{var}.latch"),
                  k.parent, exit_)
        b.position_at_end(exit_)

    def fence(self) -> None:
        """NOTE (streamed rows): non-temporal stores are weakly ordered; the fence makes
        them visible before whoever waits for this call reads the output."""
        if self.rows:
            self.r.call("llvm.x86.sse.sfence", ir.VoidType(), [])
