"""Which outputs of a row kernel the LLVM renderer streams to memory (NOTE (streamed rows)).

A row kernel (softmax, log_softmax, layer_norm, cross_entropy's rows) runs one iteration
of its outer loop per row: a few innermost loops over the row's ``N`` elements, the last
of which writes the output row. ``streamed_rows`` finds the outputs whose every access in
the kernel is such a row access, ``buf[base(o) + j]`` for ``j`` in ``[0, N)``, with one
``base`` for all of them, and whose last such loop writes the row; the renderer
(``codegen.render_llvm``) then writes those rows with non-temporal stores.

NOTE (streamed rows): an output row written with ordinary stores is first read from
memory (a cache line is fetched before it is modified, "read for ownership") and written
back later, so each output byte costs two bytes of memory traffic, and the output rows
push the input rows out of the cache. Non-temporal stores write whole lines without
reading them and leave the cache to the inputs. They need 64-byte aligned vector stores,
which LLVM's loop vectoriser does not make from a scalar store, so the renderer runs the
row's last loop in blocks of whole lines (``codegen.render_llvm_rows``): each block is
computed into an aligned stack line, which the vectoriser keeps in registers, and stored
with one non-temporal vector store when the output row is 64-byte aligned (a plain vector
store otherwise). A row an earlier loop stashes values in (NOTE (row stash) in
``codegen.lower``) is kept on the stack (in L1: at most ``MAX_ROW_BYTES``; longer
stashed rows are not streamed, other rows of any length are). Only kernels
whose buffers together reach the renderer's ``stream_min_bytes`` (the host's last-level
cache, ``runtime.render_options``) stream: below that the output would still be in
cache for whoever reads it next. Measured (2026-12-02, 2-core EPYC VM at load 6-8,
layer_norm 4096x1024 float32 on one thread, 40 alternating calls, min / median): 1.62 /
3.95 ms plain, 0.97 / 2.62 ms streamed (1.18 / 2.92 ms when the row was copied out of a
stack row after the loop instead: the copy's burst of stores stalls on memory). Same
machine at load 7, one thread, batches of 4 calls, median CPU per call plain -> streamed:
softmax 3.62 -> 3.16, log_softmax 2.17 -> 1.58, layer_norm 3.93 -> 2.78 ms.

>>> import numpy as np
>>> from tracegrad.codegen.loop_ir import KernelBuilder, BufferArg
>>> from tracegrad.codegen.ops import Op
>>> b = KernelBuilder("k", outer=64)
>>> j = b.begin_loop(16, prefix="j")
>>> at = b.emit(Op.ADD, (b.emit(Op.MUL, ("o", b.const(16, "int64")), "int64"), j), "int64")
>>> b.store("buf1", at, b.emit(Op.LOAD, ("buf0", at), "float32"))
>>> b.end_loop()
>>> k = b.finish([BufferArg("buf0", np.dtype("float32"), 1024, False),
...               BufferArg("buf1", np.dtype("float32"), 1024, True)])
>>> [(s.buf, s.extent) for s in streamed_rows(k, min_bytes=8192)]
[('buf1', 16)]
>>> streamed_rows(k, min_bytes=1 << 20)  # the rows stay in cache for their reader
[]
"""
from __future__ import annotations

from dataclasses import dataclass

from .loop_ir import Instr, Loop, LoopKernel, Store
from .ops import Op

# bytes of one non-temporal vector store, and the alignment it needs
LINE_BYTES = 64
# a stashed row kept on the stack stays in L1 beside the input row it is computed from
MAX_ROW_BYTES = 16 << 10


@dataclass
class StreamedRow:
    """Output ``buf`` written row by row: element ``j`` of the row at ``base + j``."""
    buf: str
    extent: int              # elements per row
    base: str                # an int64 value that depends only on the outer variable
    accesses: dict[str, str]  # LOAD names and ``index`` names of its stores -> ``j``
    stashed: bool = False    # an earlier loop than the last stores into it (a stack row)


def streamed_rows(kernel: LoopKernel, min_bytes: int) -> list[StreamedRow]:
    """The outputs of ``kernel`` to stream (NOTE (streamed rows)); none when
    ``min_bytes`` is 0 or more than the bytes of all the kernel's buffers."""
    if min_bytes <= 0 or not all(isinstance(b.size, int) for b in kernel.buffers):
        return []
    if sum(b.size * b.dtype.itemsize for b in kernel.buffers) < min_bytes:
        return []
    defs = _defs(kernel.body)
    rows: list[StreamedRow] = []
    for buf in kernel.buffers:
        if not buf.is_output or buf.dtype.kind not in "fiu" or buf.dtype.itemsize not in (4, 8):
            continue
        row = _row_of(kernel, buf.name, defs)
        row_bytes = 0 if row is None else row.extent * buf.dtype.itemsize
        if row is not None and row_bytes % LINE_BYTES == 0 \
                and (row_bytes <= MAX_ROW_BYTES or not row.stashed):
            rows.append(row)
    return rows


def _defs(body: list, out: dict[str, Instr] | None = None) -> dict[str, Instr]:
    out = {} if out is None else out
    for s in body:
        if isinstance(s, Instr):
            out[s.out] = s
        elif isinstance(s, Loop):
            _defs(s.body, out)
    return out


def _row_of(kernel: LoopKernel, buf: str, defs: dict[str, Instr]) -> StreamedRow | None:
    """The one row shape of every access to ``buf``, or None when any access is not a
    row access or a row is read before a whole-row store wrote it."""
    extent, base_key, base = None, None, None
    names: dict[str, str] = {}
    stored = False  # a store to the row finished in an earlier loop
    last_stores = False
    loops = 0
    for s in kernel.body:
        if _touches(s, buf, defs):
            if not isinstance(s, Loop) or not isinstance(s.extent, int):
                return None
            loop_stores = False
            for t in s.body:
                if isinstance(t, Loop) and _touches(t, buf, defs):
                    return None
                if isinstance(t, Store) and t.buf == buf:
                    index, loop_stores = t.index, True
                elif isinstance(t, Instr) and t.op is Op.LOAD and t.args[0] == buf:
                    if not stored or loop_stores:   # reads what this loop wrote
                        return None
                    index = t.args[1]
                else:
                    continue
                start = _row_start(index, s.var, defs)
                if start is None:
                    return None
                key = _key(start, defs)
                if extent is None:
                    extent, base_key, base = s.extent, key, start
                elif (s.extent, key) != (extent, base_key):
                    return None
                names[t.index if isinstance(t, Store) else t.out] = s.var
            stored = stored or loop_stores
            last_stores = loop_stores
            loops += 1
    if extent is None or base is None or not last_stores:   # the last loop must write it
        return None
    return StreamedRow(buf, extent, base, names, stashed=loops > 1)


def _touches(s, buf: str, defs: dict[str, Instr]) -> bool:
    if isinstance(s, Store):
        return s.buf == buf
    if isinstance(s, Instr):
        return s.op is Op.LOAD and s.args[0] == buf
    if isinstance(s, Loop):
        return any(_touches(t, buf, defs) for t in s.body)
    return False


def _row_start(index: str, var: str, defs: dict[str, Instr]) -> str | None:
    """``base`` when ``index`` is ``base + var`` with ``base`` free of every inner loop
    variable (a kernel of one row, whose index is ``var`` alone, is too small to stream)."""
    d = defs.get(index)
    if d is None or d.op is not Op.ADD or var not in d.args:
        return None
    other = d.args[1] if d.args[0] == var else d.args[0]
    return other if _outer_only(other, defs) else None


def _outer_only(name: str, defs: dict[str, Instr]) -> bool:
    """``name`` reads only the outer variable and constants."""
    if name == "o":
        return True
    d = defs.get(name)
    if d is None:
        return False
    if d.op is Op.CONST:
        return True
    if d.op in (Op.LOAD, Op.ACC):
        return False
    return all(_outer_only(a, defs) for a in d.args)


def _key(name: str, defs: dict[str, Instr]) -> object:
    """A structural key of an index expression: hash-consing shares names only within a
    loop, so two loops compute the same row start under two names."""
    d = defs.get(name)
    if d is None:
        return name
    if d.op is Op.CONST:
        return (d.args[0],)
    return (d.op, tuple(_key(a, defs) for a in d.args))


def outer_only_chain(name: str, defs: dict[str, Instr]) -> list[Instr]:
    """The instructions ``name`` is computed from, in dependency order (constants left
    out: the renderer holds them), so the renderer can compute it again after the loops."""
    seen: dict[str, Instr] = {}

    def visit(n: str) -> None:
        d = defs.get(n)
        if d is None or d.op is Op.CONST or n in seen:
            return
        for a in d.args:
            visit(a)
        seen[n] = d
    visit(name)
    return list(seen.values())


def kernel_defs(kernel: LoopKernel) -> dict[str, Instr]:
    """Every instruction of ``kernel`` by the name it defines."""
    return _defs(kernel.body)

