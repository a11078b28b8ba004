"""Recompute cheap values in each kernel that reads them instead of materialising them.

NOTE (recompute cheap values): fusion materialises a value that several kernels read
(``codegen.fuse``).  When that value is a few cheap elementwise ops over one big buffer
(plus small ones), every reader can compute it from that buffer for the price of reading
the value itself, and the kernel that wrote it goes.  A ReLU after a convolution is the
case: ``a = mm + bias`` and ``mask = a <= 0`` were each a kernel (the forward ``where``
reads both, the backward ``where(mask, 0, g)`` reads the mask); now the forward ReLU and
the backward ``where`` each read ``mm`` and ``bias`` and compute the rest themselves.
The value is cloned once per reading group (fresh node ids, placed where the original
was), and fusion runs again on the new graph.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .graph import Graph, GraphNode
from .ops import ELEMENTWISE, MOVEMENT, Op
from .scalar_ops import COSTLY

if TYPE_CHECKING:
    from .fuse import Fusion, _Fuser

MAX_OPS = 4          # ops of a value recomputed per reader
BIG_FRACTION = 4     # an input is big when it has more than numel / BIG_FRACTION elements


def _candidate(fuser: "_Fuser", fusion: "Fusion", node_id: int) -> list[int] | None:
    """The nodes of ``node_id``'s group, in graph order, when the value may be recomputed
    by each reader (NOTE (recompute cheap values)); else None."""
    g = fuser.g
    group = fusion.groups[fusion.group_of[node_id]]
    node = g.node(node_id)
    if (group.outputs != [node_id] or group.reductions or node_id in fuser.outputs
            or node_id in fuser.forced or len(group.nodes) > MAX_OPS):
        return None
    if any(g.node(n).op not in ELEMENTWISE or g.node(n).op in COSTLY for n in group.nodes):
        return None
    readers = fuser.readers[node_id]
    reader_groups = {fusion.group_of.get(c, -1) for c, _ in readers}
    if len(reader_groups) < 2 or -1 in reader_groups:
        return None
    for c, k in readers:
        view = fuser.edges[c][k].view
        if view is not None and not view.is_injective():
            return None   # read more than once per element: recomputing would multiply work
    big = set()
    for n in group.nodes:
        for e in fuser.edges[n]:
            if e.src in group.nodes:
                continue
            if g.node(e.src).numel * BIG_FRACTION > node.numel:
                if e.view is not None and not e.view.is_injective():
                    return None   # a big input broadcast: each reader would redo that
                big.add(e.src)
    return sorted(group.nodes, key=fuser.order.__getitem__) if len(big) <= 1 else None


def _clone(nodes: list[GraphNode], ids: dict[int, int], next_id: int) -> list[GraphNode]:
    """Copies of ``nodes`` (graph order) under fresh ids, reading each other's copies;
    ``ids`` receives old id -> new id."""
    out: list[GraphNode] = []
    for n in nodes:
        ids[n.id] = next_id + len(out)
        out.append(GraphNode(ids[n.id], n.op, tuple(ids.get(i, i) for i in n.inputs),
                             n.shape, n.dtype, n.attrs))
    return out


def recompute_cheap_values(fuser: "_Fuser", fusion: "Fusion") -> Graph | None:
    """A graph in which every value that qualifies (NOTE (recompute cheap values)) is
    cloned into each group that reads it; None when no value qualifies.  A value whose
    own inputs are cloned in the same round waits for the next one (fusion runs between
    rounds), so a chain is cloned whole, once per reading group."""
    g = fuser.g
    views_of: dict[int, list[GraphNode]] = {}   # base id -> movement nodes reading it
    for n in g.nodes:
        if n.op in MOVEMENT:
            views_of.setdefault(n.inputs[0], []).append(n)
    clones_after: dict[int, list[GraphNode]] = {}   # original node id -> clones to place
    rewired: dict[int, GraphNode] = {}              # reader id -> reader with new inputs
    next_id = max(n.id for n in g.nodes) + 1
    for gr in fusion.groups:
        if len(gr.outputs) != 1:
            continue
        value = gr.outputs[0]
        members = _candidate(fuser, fusion, value)
        if members is None or any(m in rewired for m in members):
            continue
        member_inputs = {i for m in members for i in g.node(m).inputs}
        inner = [v for m in members for v in views_of.get(m, ()) if v.id in member_inputs]
        chain = sorted({n.id: n for n in [g.node(m) for m in members] + inner}.values(),
                       key=lambda n: fuser.order[n.id])
        by_group: dict[int, list[int]] = {}
        for c, _ in fuser.readers[value]:
            by_group.setdefault(fusion.group_of[c], []).append(c)
        placed = clones_after.setdefault(value, [])
        for readers in by_group.values():
            ids: dict[int, int] = {}
            placed += _clone(chain, ids, next_id)
            next_id += len(chain)
            placed += _clone(views_of.get(value, []), ids, next_id)
            next_id += len(views_of.get(value, []))
            for c in dict.fromkeys(readers):
                old = rewired.get(c, g.node(c))
                rewired[c] = GraphNode(old.id, old.op, tuple(ids.get(i, i) for i in old.inputs),
                                       old.shape, old.dtype, old.attrs)
    if not clones_after:
        return None
    nodes: list[GraphNode] = []
    for n in g.nodes:
        nodes.append(rewired.get(n.id, n))
        nodes.extend(clones_after.get(n.id, ()))
    live = set(g.outputs)
    for n in reversed(nodes):
        if n.id in live:
            live.update(n.inputs)
    return g.rebuilt([n for n in nodes if n.id in live or n.op is Op.INPUT], g.outputs)
