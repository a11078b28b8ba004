"""A sum of padded pieces that tile their result (a concatenation) as one copy per piece.

NOTE (slot copies): the backward of an unrolled loop that read slice ``t`` of a stack
(an RNN's input projection ``x_proj[t]``) pads each step's gradient to the stack's shape
and adds the T pads.  Fused, that was one kernel of T masked loads per element, whose
text held T and every slot boundary, so each sequence length rendered and compiled it
anew (LSTM over lengths 4..16: the biggest of the four kernels each new length compiled).
When every piece is a contiguous run of the result and the runs tile it exactly, the sum
is a concatenation: each piece is copied into its run by one kernel whose text is the
same for every piece and every length (the run's start is the output's element offset,
``BufferArg.offset``), and each element is read once instead of T times.  Adding a pad's
zeros changed nothing but the sign of a zero (``-0.0 + 0.0``), which reassociation may
change anyway.  LSTM over lengths 4..16 (B=16 in=32 h=64): new kernel sources per later
length 4 -> 3; the steady step over the length cycle (with NOTE (length parameters) too)
1686 us of CPU against 1705 (25 interleaved runs, load 8: the same within noise).
"""
from __future__ import annotations

import math

import numpy as np

from .fuse import Edge, Group
from .graph import Graph
from .loop_ir import INDEX, BufferArg, KernelBuilder, LoopKernel
from .ops import Op
from .view import ShapeTracker, contiguous_strides

MIN_PIECES = 2


def _run(view: ShapeTracker | None, src_numel: int) -> tuple[int, int] | None:
    """(start, count) when ``view`` places its whole contiguous source at one contiguous
    run of the padded shape and reads zeros elsewhere; else None."""
    if view is None or len(view.views) != 1:
        return None
    v = view.last
    if v.mask is None or v.fill not in (0, 0.0) or not v.shape:
        return None
    (lo, hi), *rest = v.mask
    inner = v.shape[1:]
    if any(m != (0, n) for m, n in zip(rest, inner)) or not 0 <= lo < hi <= v.shape[0]:
        return None
    row = math.prod(inner)
    if tuple(s for s, n in zip(v.strides[1:], inner) if n > 1) != tuple(
            s for s, n in zip(contiguous_strides(inner), inner) if n > 1):
        return None
    if hi - lo > 1 and v.strides[0] != row:
        return None
    if v.offset + lo * v.strides[0] != 0 or (hi - lo) * row != src_numel:
        return None
    return lo * row, src_numel


def concat_pieces(graph: Graph, group: Group,
                  edges: dict[int, list[Edge]]) -> list[tuple[int, int, int]] | None:
    """(source node, start, count) of each piece, in order of ``start``, when ``group``
    is a sum of padded pieces that tile its one result (NOTE (slot copies)); else None."""
    members = set(group.members)
    root = graph.node(group.root)
    if (group.reductions or group.outputs != [group.root] or root.dtype.kind != "f"
            or any(graph.node(n).op is not Op.ADD for n in members)):
        return None
    pieces = []
    for n in group.members:
        for e in edges.get(n, ()):
            if e.src in members:
                if e.view is not None:
                    return None
                continue
            src = graph.node(e.src)
            if src.op is Op.CONST or src.dtype != root.dtype:
                return None
            run = _run(e.view, src.numel)
            if run is None:
                return None
            pieces.append((run[0], run[1], e.src))
    pieces.sort()
    end = 0
    for start, count, _ in pieces:
        if start != end:
            return None   # a gap (the pad's zeros would be needed) or an overlap (a sum)
        end += count
    if end != root.numel or len(pieces) < MIN_PIECES:
        return None
    return [(src, start, count) for start, count, src in pieces]


_BODIES: dict[tuple[int, str], list] = {}


def copy_kernel(name: str, count: int, start: int, out_numel: int, rowlen: int,
                dtype: np.dtype) -> LoopKernel:
    """``out[start + i] = src[i]`` for ``i < count``, in rows of ``rowlen`` (a divisor of
    ``count``): buffers ``buf0`` (the source) and ``buf1`` (the result, taken at element
    offset ``start``).  One body object per (rowlen, dtype): the runtime formats and
    renders it once."""
    dtype = np.dtype(dtype)
    key = (rowlen, dtype.str)
    body = _BODIES.get(key)
    if body is None:
        b = KernelBuilder("copy", outer=1)
        j = b.begin_loop(rowlen, "j")
        row = b.emit(Op.MUL, (b.var_outer, b.const(rowlen, INDEX)), INDEX)
        i = b.emit(Op.ADD, (row, j), INDEX)
        b.store("buf1", i, b.emit(Op.LOAD, ("buf0", i), dtype))
        b.end_loop()
        body = _BODIES[key] = b.finish([]).body
    buffers = [BufferArg("buf0", dtype, count, False),
               BufferArg("buf1", dtype, out_numel, True, start)]
    return LoopKernel(name, buffers, count // rowlen, body, ops=["PAD"], work=count)


def slot_copy_kernels(graph: Graph, root: int, pieces: list[tuple[int, int, int]],
                      first: int) -> list[tuple[int, int, int, LoopKernel]]:
    """(source, start, count, copy kernel) of each piece of ``root`` (``concat_pieces``),
    the kernels named ``k{first}_pad`` onwards."""
    node = graph.node(root)
    last = node.shape[-1] if node.shape else 1
    out = []
    for k, (src, start, count) in enumerate(pieces):
        rowlen = last if last and count % last == 0 else 1
        out.append((src, start, count, copy_kernel(f"k{first + k}_pad", count, start,
                                                   node.numel, rowlen, node.dtype)))
    return out
