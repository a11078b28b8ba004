"""Fusion: partition the simplified graph into kernel groups and extern steps.

Rules (see DESIGN.md "Codegen"):

- Elementwise ops, their broadcasts and views fuse: a producer joins its consumers'
  group when all of its consumers are in that one group.  A value read by several
  groups, an extern op or the caller is materialised once, in its own group.
- Producers fuse into the reduction that reads them (they run inside its loop).
- Elementwise consumers of a reduction fuse after it when they share its rows: the
  group becomes a *row kernel* (outer loop over ``rows``, passes over ``rowlen``
  elements per row), so softmax, log_softmax and layer_norm are one kernel each.
  "Sharing rows" is checked per edge (``row_aligned``): every value that depends on an
  in-group reduction must be read at an index in the same row.
- An expensive elementwise value (transcendental, POW) is never recomputed behind a
  broadcast or overlapping window: it is materialised instead.  Inside a row kernel,
  elementwise values are recomputed once per pass over the row (NOTE: softmax evaluates
  ``exp`` twice per element; the row sits in L1 and the kernel stays memory-bound).
- MATMUL and the other ``EXTERN`` ops, and ops on dtypes codegen does not lower
  (float16, ...), become extern steps that read materialised buffers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

import numpy as np

from .graph import Graph, GraphNode
from .ops import COMPUTE, ELEMENTWISE, EXTERN, LOOP_OPS, MOVEMENT, REDUCE, Op
from .scalar_ops import COSTLY
from .view import ShapeTracker, contiguous_strides
from .recompute import recompute_cheap_values
from .view_copies import is_strided, share_permuted_copies

LOWERED_DTYPES = frozenset(np.dtype(t) for t in
                           ("float32", "float64", "int32", "int64", "uint8", "bool"))
_LOWERED_STR = frozenset(t.str for t in LOWERED_DTYPES)


@dataclass(frozen=True)
class Edge:
    """How a consumer reads one input: base node ``src`` through ``view`` (None: same shape)."""
    src: int
    view: ShapeTracker | None


@dataclass
class Group:
    id: int
    root: int
    nodes: set[int] = field(default_factory=set)
    outputs: list[int] = field(default_factory=list)
    rows: int | None = None          # set once the group holds a reduction
    rowlen: int | None = None
    trailing: bool = True            # False: the root reduction reduces leading dims
    reductions: list[int] = field(default_factory=list)
    members: list[int] = field(default_factory=list)  # ``nodes`` in graph order (fuse fills it)


@dataclass
class Fusion:
    graph: Graph
    groups: list[Group]
    externs: list[int]
    steps: list[tuple[str, int]]     # ("group", group id) or ("extern", node id), run order
    group_of: dict[int, int]
    # input_edges of every node a group may hold, computed once for fusion and lowering;
    # emptied when planning ends (NOTE (edges end with planning), codegen.schedule)
    edges: dict[int, list[Edge]] = field(default_factory=dict)


def is_lowerable(graph: Graph, n: GraphNode) -> bool:
    """Whether codegen can compute ``n`` in a kernel (else it is an extern step)."""
    if n.op in EXTERN or n.op not in LOOP_OPS:
        return False
    if n.op is Op.POW and n.dtype.kind != "f" and not _small_const_exponent(graph, n):
        return False  # NOTE: integer POW has no scalar lowering; x**2 and x**3 become MULs
    # NOTE: by dtype.str, a cached string hash (np.dtype hashes are computed per lookup)
    return n.dtype.str in _LOWERED_STR and all(graph.node(i).dtype.str in _LOWERED_STR
                                               for i in n.inputs)


def _small_const_exponent(graph: Graph, n: GraphNode) -> bool:
    """Whether POW ``n`` raises to a constant 1, 2 or 3 (lowered as multiplications)."""
    src = graph.node(n.inputs[1])
    if src.op in MOVEMENT:
        src = graph.node(src.inputs[0])
    return src.op is Op.CONST and src.attrs["value"] in (1, 2, 3)


def input_edges(graph: Graph, n: GraphNode) -> list[Edge]:
    """The edges ``n`` reads, with implicit NumPy broadcasting folded into the view."""
    if n.op in MOVEMENT:
        return [Edge(n.inputs[0], n.attrs["view"])]
    edges = []
    for i in n.inputs:
        src = graph.node(i)
        if src.op in MOVEMENT:
            base, st = src.inputs[0], src.attrs["view"]
        else:
            base, st = i, None
        target = src.shape if n.op in REDUCE else n.shape
        if st is None and src.shape != target:
            st = ShapeTracker.from_shape(src.shape)
        if st is not None:
            st = st.broadcast_to(target)
        edges.append(Edge(base, st))
    return edges


def edge_shape(graph: Graph, n: GraphNode, k: int) -> tuple[int, ...]:
    """Shape of the index at which ``n`` reads its ``k``-th edge."""
    if n.op in REDUCE or n.op in MOVEMENT:
        return graph.node(n.inputs[0]).shape if n.op in REDUCE else n.shape
    return n.shape


def reduce_rows(graph: Graph, n: GraphNode) -> tuple[int, int, bool]:
    """(rows, rowlen, reduced dims are trailing) of reduction ``n``."""
    shape = graph.node(n.inputs[0]).shape
    axes = set(n.attrs["axes"])
    rows = prod(s for d, s in enumerate(shape) if d not in axes)
    rowlen = prod(s for d, s in enumerate(shape) if d in axes)
    big = [d for d, s in enumerate(shape) if s != 1]
    trailing = all(not (a in axes and b not in axes) for a, b in zip(big, big[1:]))
    return rows, rowlen, trailing


def split_rows(shape: tuple[int, ...], rows: int) -> int | None:
    """Index t with prod(shape[:t]) == rows, or None."""
    acc = 1
    for t in range(len(shape) + 1):
        if acc == rows:
            return t
        if t < len(shape):
            acc *= shape[t]
    return None


def row_aligned(view: ShapeTracker | None, c_shape, p_shape, rows: int, rowlen: int) -> bool:
    """Whether reading producer (shape p_shape) at view(i) stays in the consumer's row.

    Both values are laid out row-major with ``k = numel / rows`` elements per row
    (``k`` is 1 for per-row values, ``rowlen`` for full rows).
    """
    n_c, n_p = prod(c_shape), prod(p_shape)
    if rows == 0 or n_c % rows or n_p % rows:
        return False
    k_c, k_p = n_c // rows, n_p // rows
    if k_c not in (1, rowlen) or k_p not in (1, rowlen):
        return False
    if view is None:
        return tuple(c_shape) == tuple(p_shape)
    if len(view.views) != 1:
        return False
    v = view.views[0]
    t = split_rows(v.shape, rows)
    if t is None:
        return False
    expect = contiguous_strides(v.shape[:t])
    for n, s, e in zip(v.shape[:t], v.strides[:t], expect):
        if n != 1 and s != e * k_p:
            return False
    lo = hi = v.offset
    for n, s in zip(v.shape[t:], v.strides[t:]):
        if s < 0:
            lo += (n - 1) * s
        else:
            hi += (n - 1) * s
    return 0 <= lo and hi < k_p


# NOTE (fusion rounds share node facts): ``fuse`` runs the fuser again after each rewrite
# (violations refit the same graph, recompute rounds clone a few values into a new one).
# A node's input edges and whether it is lowerable depend only on the node and its input
# nodes, and a rewrite keeps every node it does not touch as the same object, so each
# round reuses these facts for every node whose object and input objects are unchanged
# (an LSTM's backward at length 16: 2 rounds, the second computes 100 of 1547 nodes' edges).
_NodeFacts = dict[int, tuple[GraphNode, tuple[GraphNode, ...], list[Edge] | None, bool]]


class _Fuser:
    def __init__(self, graph: Graph, forced: set[int] | frozenset[int] = frozenset(),
                 facts: _NodeFacts | None = None):
        self.g = graph
        self.forced = forced          # nodes that must be materialised (own group)
        self.facts: _NodeFacts = {} if facts is None else facts
        self.lowerable: dict[int, bool] = {}
        self.order = {n.id: k for k, n in enumerate(graph.nodes)}
        self.groups: dict[int, Group] = {}
        self.group_of: dict[int, int] = {}
        self.outputs = set(graph.outputs)
        # Views that an extern reads but NumPy cannot express as strides (a pad's mask, a
        # reshape of a non-contiguous view) are copied by a kernel once per call, instead
        # of gathered index by index in NumPy.
        self.copied = {i for n in graph.nodes if n.op not in LOOP_OPS
                       for i in n.inputs if graph.node(i).op in MOVEMENT
                       and not is_strided(graph.node(i).attrs["view"])}
        self.materialised_views = self.outputs | self.copied
        # consumers of each base node: (consumer id, edge index) through folded views
        self.readers: dict[int, list[tuple[int, int]]] = {n.id: [] for n in graph.nodes}
        self.edges: dict[int, list[Edge]] = {}
        for n in graph.nodes:
            edges = self._facts_of(n)
            if edges is not None:
                self.edges[n.id] = edges
                for k, e in enumerate(edges):
                    self.readers[e.src].append((n.id, k))
            elif n.op not in MOVEMENT:
                for i in n.inputs:  # an extern op (or an input of it that is a view)
                    src = graph.node(i)
                    copied = src.op in MOVEMENT and i in self.copied
                    base = src.inputs[0] if src.op in MOVEMENT and not copied else i
                    self.readers[base].append((-1, 0))

    def _facts_of(self, n: GraphNode) -> list[Edge] | None:
        """``n``'s input edges when fusion reads them (else None); records whether ``n``
        is lowerable (NOTE (fusion rounds share node facts))."""
        node = self.g.node
        reads = n.op in COMPUTE or (n.op in MOVEMENT and n.id in self.materialised_views)
        known = self.facts.get(n.id)
        if known is not None and known[0] is n and (known[2] is not None) == reads:
            for i, old in zip(n.inputs, known[1]):
                if node(i) is not old:
                    break
            else:
                self.lowerable[n.id] = known[3]
                return known[2]
        known = (n, tuple([node(i) for i in n.inputs]),
                 input_edges(self.g, n) if reads else None,
                 n.op not in (Op.INPUT, Op.CONST) and is_lowerable(self.g, n))
        self.facts[n.id] = known
        self.lowerable[n.id] = known[3]
        return known[2]

    def run(self) -> Fusion:
        for n in reversed(self.g.nodes):
            if not self.lowerable[n.id]:
                continue
            if n.op in MOVEMENT and n.id not in self.materialised_views:
                continue
            readers = self.readers[n.id]
            targets = {self.group_of.get(c, -1) for c, _ in readers}
            if (len(targets) == 1 and -1 not in targets and n.id not in self.forced
                    and self._absorb(n, self.groups[targets.pop()])):
                continue
            gid = len(self.groups)
            group = Group(gid, n.id, {n.id}, [n.id])
            if n.op in REDUCE:
                group.rows, group.rowlen, group.trailing = reduce_rows(self.g, n)
                group.reductions.append(n.id)
            self.groups[gid] = group
            self.group_of[n.id] = gid
        return self._finish()

    def _absorb(self, n: GraphNode, group: Group) -> bool:
        g = self.g
        is_output = n.id in self.outputs
        if n.op in MOVEMENT:
            return False
        if g.node(group.root).op in MOVEMENT and self._duplicated(n, group):
            # NOTE (copies of overlapping windows): a copy whose windows overlap (im2col)
            # would compute ``n`` once per window that holds it, and could no longer run
            # as a table gather (runtime.copy_table); ``n`` is materialised instead
            return False
        rows, rowlen = group.rows, group.rowlen
        if n.op in REDUCE:
            r_rows, r_len, trailing = reduce_rows(g, n)
            if not trailing or not group.trailing:
                return False
            if rows is not None and (rows, rowlen) != (r_rows, r_len):
                return False
            rows, rowlen = r_rows, r_len
        if rows is not None and (is_output or rows != group.rows):
            # NOTE: without a reduction yet, an extra output of another size may still
            # become a per-row output; ``violations`` refits the fusion if it does not.
            assert rowlen is not None  # set together with rows
            outs = group.outputs + ([n.id] if is_output else [])
            if any(g.node(o).numel not in (rows, rows * rowlen) for o in outs):
                return False
        if (n.op not in REDUCE and rows is not None and rowlen is not None
                and self._rows_of_own(n, rows, rowlen)):
            return False
        members = group.nodes | {n.id}
        reductions = group.reductions + ([n.id] if n.op in REDUCE else [])
        if reductions and not self._rows_ok(members, reductions, rows, rowlen):
            return False
        group.nodes.add(n.id)
        group.rows, group.rowlen, group.reductions = rows, rowlen, reductions
        if is_output:
            group.outputs.append(n.id)
        self.group_of[n.id] = group.id
        return True

    def _rows_of_own(self, n: GraphNode, rows: int, rowlen: int) -> bool:
        """Whether ``n`` is a per-row value of reductions over other rows than (``rows``,
        ``rowlen``) and so belongs in their kernel.

        NOTE (per-row values stay with their rows): a loss's per-row value ``log(s) - p``
        (``s``, ``p`` row sums of an (N, C) input) is read by the mean over N.  Taken
        into the mean's kernel it would leave ``s`` and ``p`` in a kernel each, both
        reading (and one materialising) the (N, C) rows; kept out, it roots a row kernel
        that computes ``s``, ``p`` and the per-row value in one pass over each row.
        """
        seen, stack = 0, [n]
        while stack and seen < 16:
            cur = stack.pop()
            seen += 1
            for i in cur.inputs:
                src = self.g.node(i)
                if src.op in REDUCE:
                    r_rows, r_len, _ = reduce_rows(self.g, src)
                    if r_rows == n.numel and r_len > 1 and (r_rows, r_len) != (rows, rowlen):
                        return True
                elif src.op in ELEMENTWISE or src.op in MOVEMENT:
                    stack.append(src)
        return False

    def _duplicated(self, n: GraphNode, group: Group) -> bool:
        """Whether some path from ``n`` to the group's root broadcasts or overlaps it."""
        seen, stack = set(), [n.id]
        while stack:
            cur = stack.pop()
            for c, k in self.readers[cur]:
                if c not in group.nodes or (cur, c) in seen:
                    continue
                seen.add((cur, c))
                if g_node_is_reduce(self.g, c):
                    continue  # a reduction reads each element once; its result is an acc
                view = self.edges[c][k].view
                if view is not None and not view.is_injective():
                    return True
                stack.append(c)
        return False

    def _rows_ok(self, members, reductions, rows, rowlen) -> bool:
        tainted, stack = set(), list(reductions)
        while stack:
            cur = stack.pop()
            if cur in tainted:
                continue
            tainted.add(cur)
            stack.extend(c for c, _ in self.readers[cur] if c in members)
        for p in tainted:
            for c, k in self.readers[p]:
                if c not in members:
                    continue
                shape_c = edge_shape(self.g, self.g.node(c), k)
                if not row_aligned(self.edges[c][k].view, shape_c, self.g.node(p).shape,
                                   rows, rowlen):
                    return False
        return True

    def violations(self) -> set[int]:
        """Nodes to materialise on their own and refit: extra outputs whose size fits no
        loop of their kernel, and expensive nodes that their group would evaluate more
        than once per element (behind a broadcast or overlapping window), unless the value
        is per-row in a row kernel (it then depends on the outer index only and LLVM
        hoists it out of the row loops)."""
        bad: set[int] = set()
        for gr in self.groups.values():
            root = self.g.node(gr.root).numel
            allowed = {root} if gr.rows is None else {
                gr.rows, gr.rows * gr.rowlen}  # type: ignore[operator]  # rowlen is set with rows
            bad.update(o for o in gr.outputs if self.g.node(o).numel not in allowed)
            for n in gr.nodes:
                node = self.g.node(n)
                if node.op not in COSTLY or (gr.rows is not None and node.numel == gr.rows):
                    continue
                if self._duplicated(node, gr):
                    bad.add(n)
        return bad

    def _finish(self) -> Fusion:
        groups = sorted(self.groups.values(), key=lambda gr: self.order[gr.root])
        remap = {gr.id: k for k, gr in enumerate(groups)}
        for gr in groups:
            gr.id = remap[gr.id]
            gr.reductions.sort(key=self.order.__getitem__)
            gr.members = sorted(gr.nodes, key=self.order.__getitem__)
        group_of = {n: remap[gid] for n, gid in self.group_of.items()}
        # NOTE: a view that no kernel computes is realised by the executor from its
        # ShapeTracker (as_strided or a gather), never by re-running the movement op.
        externs = [n.id for n in self.g.nodes
                   if n.op not in (Op.INPUT, Op.CONST) and n.id not in group_of
                   and n.op not in MOVEMENT]
        steps = [("group", gr.id) for gr in groups] + [("extern", e) for e in externs]
        steps.sort(key=lambda s: self.order[groups[s[1]].root if s[0] == "group" else s[1]])
        return Fusion(self.g, groups, externs, steps, group_of, self.edges)


def g_node_is_reduce(graph: Graph, node_id: int) -> bool:
    return graph.node(node_id).op in REDUCE


MAX_RECOMPUTE_ROUNDS = 4   # NOTE (recompute cheap values): a chain of k values takes k


def fuse(graph: Graph) -> Fusion:
    """Partition a simplified graph (``codegen.passes.simplify``) into groups and externs.
    ``Fusion.graph`` is the graph the groups index: ``graph``, or a rewrite of it that
    reads one copy of a view in two orders (``codegen.view_copies``) and recomputes
    cheap values in each kernel that reads them (``codegen.recompute``).

    >>> from tracegrad.codegen.ops import Op
    >>> g = Graph(); x = g.add(Op.INPUT, (), (4, 8), "float32", index=0)
    >>> m = g.add(Op.MAX, (x.id,), (4, 1), "float32", axes=(1,), keepdim=True)
    >>> d = g.add(Op.SUB, (x.id, m.id), (4, 8), "float32")
    >>> g.outputs = [g.add(Op.EXP, (d.id,), (4, 8), "float32").id]
    >>> [sorted(gr.nodes) for gr in fuse(g).groups]
    [[1, 2, 3]]
    """
    graph = share_permuted_copies(graph)
    forced: set[int] = set()
    rounds = 0
    before: Fusion | None = None   # the fusion of the graph before the last recompute round
    facts: _NodeFacts = {}
    while True:
        fuser = _Fuser(graph, forced, facts)
        result = fuser.run()
        bad = fuser.violations() - forced
        if bad:
            forced |= bad
            continue
        if before is not None and len(result.groups) >= len(before.groups):
            return before   # a clone its readers' kernels could not take: no kernel saved
        cloned = recompute_cheap_values(fuser, result) if rounds < MAX_RECOMPUTE_ROUNDS else None
        if cloned is None:
            return result
        graph, rounds, before = cloned, rounds + 1, result
