"""One copy per view, whatever order its readers want it in.

An extern (a matmul) reads a view NumPy cannot express as strides (im2col: windows over
a padded input) through a copy kernel that materialises it (``codegen.fuse``).  A
convolution reads its input columns twice: as ``(N*L, C*k*k)`` in the forward matmul and
as the transpose in the backward matmul that makes the weight gradient, and each read
was its own copy kernel.  NOTE (permuted copies): when one copied view is a permutation
of another of the same base, it is read as a permute of the other's copy instead, a
plain strided view that the gemm takes through its transpose flags.  CNN step (batch 64):
the second im2col of each convolution (83 and 19 us) goes.
"""
from __future__ import annotations

from dataclasses import replace

from .graph import Graph, GraphNode
from .ops import LOOP_OPS, MOVEMENT, Op
from .view import ShapeTracker, View


def is_strided(st: ShapeTracker) -> bool:
    """Whether NumPy can read this view without copying (one view, no mask)."""
    return len(st.views) == 1 and st.last.mask is None


def _permuted(v: View, perm: tuple[int, ...]) -> View:
    mask = None if v.mask is None else tuple(v.mask[p] for p in perm)
    return replace(v, shape=tuple(v.shape[p] for p in perm),
                   strides=tuple(v.strides[p] for p in perm), mask=mask)


def permutation_between(first: ShapeTracker, second: ShapeTracker) -> tuple[int, ...] | None:
    """``perm`` with ``first.permute(perm) == second``, found by matching the last views'
    dims (shape, stride, mask); None when ``second`` is no permutation of ``first``."""
    if first.views[:-1] != second.views[:-1] or len(first.shape) != len(second.shape):
        return None
    a, b = first.last, second.last
    if a.offset != b.offset or a.fill != b.fill or (a.mask is None) != (b.mask is None):
        return None

    def dims(v: View) -> list[tuple]:
        return [(n, s, None if v.mask is None else v.mask[d])
                for d, (n, s) in enumerate(zip(v.shape, v.strides))]
    free = list(enumerate(dims(a)))
    perm = []
    for want in dims(b):
        k = next((i for i, (_, d) in enumerate(free) if d == want), None)
        if k is None:
            return None
        perm.append(free.pop(k)[0])
    perm_t = tuple(perm)
    return perm_t if _permuted(a, perm_t) == b else None


def share_permuted_copies(graph: Graph) -> Graph:
    """The graph with every copied view that permutes an earlier copied view of the same
    base rewritten as a PERMUTE of that view (NOTE (permuted copies)); ``graph`` itself
    when there is none."""
    copied: dict[int, list[GraphNode]] = {}   # base id -> copied views, in graph order
    seen: set[int] = set()
    for n in graph.nodes:
        if n.op in LOOP_OPS:
            continue
        for i in n.inputs:
            src = graph.node(i)
            if (src.op in MOVEMENT and i not in seen
                    and not is_strided(src.attrs["view"])):
                seen.add(i)
                copied.setdefault(src.inputs[0], []).append(src)
    order = {n.id: k for k, n in enumerate(graph.nodes)}
    rewritten: dict[int, GraphNode] = {}
    for views in copied.values():
        views.sort(key=lambda v: order[v.id])
        for k, later in enumerate(views):
            for first in views[:k]:
                if first.id in rewritten:
                    continue
                perm = permutation_between(first.attrs["view"], later.attrs["view"])
                if perm is not None:
                    view = ShapeTracker.from_shape(first.shape).permute(perm)
                    rewritten[later.id] = GraphNode(later.id, Op.PERMUTE, (first.id,),
                                                    later.shape, later.dtype,
                                                    {"perm": perm, "view": view})
                    break
    if not rewritten:
        return graph
    return graph.rebuilt([rewritten.get(n.id, n) for n in graph.nodes], graph.outputs)
