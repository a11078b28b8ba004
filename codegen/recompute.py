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
from .passes import _ViewAttr
from .view import ShapeTracker, View, contiguous_strides

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
            window = _one_window(fuser, value, readers, chain)
            clones, read = ([], -1) if window is None else _clone_at(fuser, chain, window,
                                                                     next_id)
            if clones:   # NOTE (clones at the readers' window)
                placed += clones
                next_id += len(clones)
                for c in dict.fromkeys(readers):
                    old = rewired.get(c, g.node(c))
                    rewired[c] = GraphNode(old.id, old.op, tuple(
                        read if g.node(i).op in MOVEMENT and g.node(i).inputs[0] == value
                        else i for i in old.inputs), old.shape, old.dtype, old.attrs)
                continue
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


# NOTE (clones at the readers' window): an RNN reads its input projection ``xw + b``
# (T, B, gates) one step's slice per kernel; cloned whole, each step's kernel held nodes
# of shape (T, B, gates) and read them at its step's offset, so its lowering key (NOTE
# (group keys), codegen.lower) differed at every step and every length (an LSTM over
# lengths 4, 8, 12, 16: 45 lowerings of kernels already lowered). When a group reads the
# value only through one view that picks a box of it (a slice, a permutation: each of
# its dims walks one dim of the value), the chain is cloned at that box instead, each
# input read through the same box of its own view, which the key then factors out like
# any other buffer's base. Elementwise ops commute with picking elements, so the values
# are the same.
def _one_window(fuser: "_Fuser", value: int, readers: list[int],
                chain: list[GraphNode]) -> View | None:
    """The one unmasked single view through which every read of ``value`` by ``readers``
    goes (a movement node reading ``value``), when the chain can be cloned at it; else
    None."""
    g = fuser.g
    shape = g.node(value).shape
    if any(n.shape != shape or n.op in MOVEMENT for n in chain):
        return None
    window = None
    for c in readers:
        for i in g.node(c).inputs:
            src = g.node(i)
            if i == value:
                return None   # read as it is: nothing to narrow
            if src.op in MOVEMENT and src.inputs[0] == value:
                views = src.attrs["view"].views
                if len(views) != 1 or views[0].mask is not None \
                        or (window is not None and views[0] != window):
                    return None
                window = views[0]
    if window is None or _box(window, shape) is None:
        return None
    return window


def _box(window: View, shape: tuple[int, ...]) -> tuple[list[int], list[tuple[int, int]]] | None:
    """(start in each dim of ``shape``, (dim, step) walked by each dim of ``window``) when
    ``window`` over the contiguous ``shape`` picks a box of it; else None."""
    if not all(type(n) is int for n in (*shape, *window.shape, *window.strides)) \
            or 0 in shape or 0 in window.shape:
        return None
    strides = contiguous_strides(shape)
    start, rest = [], window.offset
    for n, st in zip(shape, strides):
        d, rest = divmod(rest, st) if st else (0, rest)
        start.append(d)
    if rest or any(not 0 <= s < n for s, n in zip(start, shape)):
        return None
    walks: list[tuple[int, int]] = []
    used = set()
    for n, stride in zip(window.shape, window.strides):
        if n == 1:
            walks.append((-1, 0))
            continue
        for d, st in enumerate(strides):
            if shape[d] > 1 and st and stride % st == 0 and d not in used:
                step = stride // st
                if step > 0 and start[d] + step * (n - 1) < shape[d]:
                    walks.append((d, step))
                    used.add(d)
                    break
        else:
            return None
    return start, walks


def _through(view: ShapeTracker, window: View, box) -> ShapeTracker | None:
    """``view`` (over an input, of the chain's shape) read through ``window``'s box."""
    if len(view.views) != 1 or view.views[0].mask is not None:
        return None
    v = view.views[0]
    start, walks = box
    offset = v.offset + sum(s * st for s, st in zip(start, v.strides))
    strides = tuple(0 if d < 0 else step * v.strides[d] for d, step in walks)
    return ShapeTracker((View(window.shape, strides, offset),))


def _clone_at(fuser: "_Fuser", chain: list[GraphNode], window: View,
              next_id: int) -> tuple[list[GraphNode], int]:
    """Copies of ``chain`` at ``window`` (NOTE (clones at the readers' window)) under
    fresh ids from ``next_id``, each input outside the chain read through the window,
    and the id of the last copy (the value's)."""
    g = fuser.g
    box = _box(window, chain[-1].shape)
    assert box is not None
    ids: dict[int, int] = {}
    out: list[GraphNode] = []
    for n in chain:
        inputs = []
        for k, i in enumerate(n.inputs):
            if i in ids:
                inputs.append(ids[i])
                continue
            e = fuser.edges[n.id][k]
            view = e.view or ShapeTracker.from_shape(n.shape)
            through = _through(view, window, box)
            if through is None:
                return [], -1
            src = g.node(e.src)
            # (no "shape": the view is no reshape of the base, only fusion reads it)
            out.append(GraphNode(next_id + len(out), Op.RESHAPE, (e.src,), window.shape,
                                 src.dtype, {"view": _ViewAttr(through.views)}))
            inputs.append(out[-1].id)
        ids[n.id] = next_id + len(out)
        out.append(GraphNode(ids[n.id], n.op, tuple(inputs), window.shape, n.dtype, n.attrs))
    return out, ids[chain[-1].id]
