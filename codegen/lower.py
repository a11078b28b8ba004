"""Lowering: one fused group -> one ``LoopKernel``.

All index math is decided here (views become integer ops over the outer index ``o`` and
the loop variables), so renderers never see a shape.  Kernel layouts:

- elementwise, every access a plain reshape of the output: one flat loop, ``o`` is the
  element (the runtime splits it across threads; LLVM vectorises it);
- elementwise otherwise: ``o`` runs over all but the last dim, an inner loop over it;
- with reductions (a row kernel): ``o`` runs over rows; each *pass* is one loop over the
  row that updates the accumulators of the reductions at that dependency level; then
  per-row outputs are stored, then a last pass over the row stores full-row outputs.

NOTE (safe indices): an index that a view's mask marks invalid may point outside its
buffer, so it is replaced by 0 (``WHERE(valid, idx, 0)``) before any load or further
index math; the loaded value is then replaced by the fill value.  This also keeps every
operand of IDIV/MOD non-negative, which lets backends use unsigned division.
"""
from __future__ import annotations

from dataclasses import replace
from math import prod

import numpy as np

from .fuse import Edge, Group, edge_shape, input_edges, split_rows
from .graph import Graph, GraphNode
from .index_math import Idx, b_const, unravel
from .loop_ir import INDEX, BufferArg, KernelBuilder, LoopKernel
from .offsets import hoist_offsets
from .phase_clock import phase
from .row_reciprocal import multiplies_by_reciprocal
from .ops import COMPARISON, MOVEMENT, REDUCE, Op
from .scalar_ops import COSTLY, REDUCTION_ACC, SCALAR_OPS

_BOOL = np.dtype(bool)


def _acc_init(op: Op, dtype: np.dtype):
    if op is Op.SUM:
        return dtype.type(0).item()
    if op is Op.PROD:
        return dtype.type(1).item()
    low = op is Op.MAX
    if dtype.kind == "f":
        return -np.inf if low else np.inf
    if dtype.kind == "b":
        return not low
    info = np.iinfo(dtype)
    return int(info.min if low else info.max)


def _members(graph: Graph, group: Group) -> list[int]:
    """The group's nodes in graph order (``fuse`` records them; a hand-made group not)."""
    if group.members:
        return group.members
    return [n.id for n in graph.nodes if n.id in group.nodes]


class _Frame:
    """One node being evaluated by ``_Lowerer.value``: its input values so far."""
    __slots__ = ("node", "idx", "key", "edges", "args", "k", "guards", "out")

    def __init__(self, lowerer: "_Lowerer", node_id: int, idx: Idx):
        self.node = lowerer.g.node(node_id)
        self.idx = idx
        self.key = (node_id, idx.linear()) if self.node.op not in REDUCE else None
        self.out = lowerer.known_value(self.node, self.key)
        if self.out is None:
            self.edges = lowerer.edges_of(self.node)
            self.args: list[str] = []
            self.k = 0
            self.guards: tuple | list = ()


class _Lowerer:
    def __init__(self, graph: Graph, group: Group, name: str,
                 edges: dict[int, list[Edge]] | None = None):
        self.g, self.group = graph, group
        self._edges = {} if edges is None else edges
        self.members = _members(graph, group)
        # kernel-local buffer names in order of first use: the kernel source then does not
        # depend on the program around it (and caches across programs)
        self.buffers: dict[int, str] = {}
        self.accs: dict[int, str] = {}
        # (node, linear index) -> value, one dict per open loop: a value made inside a
        # loop is not visible after it
        self.memo: list[dict[tuple[int, str], str]] = [{}]
        self.name = name
        self.stash: tuple[int, int, int] | None = None
        self.row_linear: str | None = None

    def edges_of(self, node) -> list[Edge]:
        edges = self._edges.get(node.id)
        if edges is None:
            edges = self._edges[node.id] = input_edges(self.g, node)
        return edges

    # -- values -------------------------------------------------------------------------
    # NOTE (iterative lowering): a node's value needs its inputs' values first. A fused
    # chain can be thousands of nodes deep, so ``value`` walks it with an explicit stack of
    # ``_Frame``s instead of recursing; it emits in the order the recursive definition
    # would (inputs depth-first, left to right, then the node), so kernels print the same.

    def value(self, node_id: int, idx: Idx) -> str:
        """The value of in-group node ``node_id`` at ``idx``."""
        frame = _Frame(self, node_id, idx)
        if frame.out is not None:
            return frame.out
        stack = [frame]
        while True:
            f = stack[-1]
            if f.k < len(f.edges):
                k = f.k
                f.k += 1
                edge_idx = f.idx if f.node.op in MOVEMENT else Idx(
                    self.b, edge_shape(self.g, f.node, k), f.idx.linear(),
                    f.idx.multi() if f.idx._multi is not None else None)
                src, src_idx, guards = self._view(f.edges[k], edge_idx)
                if src.op is not Op.CONST and src.id in self.group.nodes:
                    child = _Frame(self, src.id, src_idx)
                    if child.out is None:
                        f.guards = guards
                        stack.append(child)
                        continue
                    f.args.append(self._guarded(child.out, src, guards))
                else:
                    f.args.append(self._guarded(self._outside(src, src_idx), src, guards))
                continue
            if f.node.op in MOVEMENT:
                out = f.args[0]
            else:
                out = self.elementwise(f.node, f.args, f.edges)
            assert f.key is not None  # a reduction (no key) is always known, never evaluated
            self.memo[-1][f.key] = out
            stack.pop()
            if not stack:
                return out
            parent = stack[-1]
            parent.args.append(self._guarded(out, f.node, parent.guards))
            parent.guards = ()

    def known_value(self, node: "GraphNode", key: tuple[int, str] | None) -> str | None:
        """The value of ``node`` at linear index ``key[1]`` when it needs no computing: a
        reduction's accumulator, a value made earlier in an open loop, or a stashed row."""
        if node.op in REDUCE:
            return self.b.emit(Op.ACC, (self.accs[node.id],), node.dtype)
        assert key is not None  # only a reduction's frame has no key
        for memo in reversed(self.memo):
            if key in memo:
                return memo[key]
        if (self.stash is not None and node.id == self.stash[0]
                and key[1] == self.row_linear):
            # NOTE (row stash): stored into the output row by an earlier pass, see _stash
            out = self.b.emit(Op.LOAD, (self.buffer(self.stash[2]), key[1]), node.dtype)
            self.memo[-1][key] = out
            return out
        return None

    def read(self, edge: Edge, idx: Idx) -> str:
        """Read ``edge.src`` through its view at consumer index ``idx``."""
        src, idx, guards = self._view(edge, idx)
        if src.op is not Op.CONST and src.id in self.group.nodes:
            out = self.value(src.id, idx)
        else:
            out = self._outside(src, idx)
        return self._guarded(out, src, guards)

    def _outside(self, src, idx: Idx) -> str:
        """A value from outside the group: a constant or a load from the input's buffer."""
        if src.op is Op.CONST:
            return self.b.const(src.attrs["value"], src.dtype)
        return self.b.emit(Op.LOAD, (self.buffer(src.id), idx.linear()), src.dtype)

    def _guarded(self, out: str, src, guards) -> str:
        """``out`` with the fill value of each masked view where the view is invalid."""
        for valid, fill in reversed(guards):
            out = self.b.emit(Op.WHERE, (valid, out, self.b.const(fill, src.dtype)), src.dtype)
        return out

    def _view(self, edge: Edge, idx: Idx):
        """(source node, index into it, masks) of reading ``edge`` at ``idx``: the view's
        index math, with NOTE (safe indices) applied to masked views."""
        b, src = self.b, self.g.node(edge.src)
        guards = []
        if edge.view is not None:
            views = edge.view.views
            for k in range(len(views) - 1, -1, -1):
                v = views[k]
                below = views[k - 1].shape if k else src.shape
                if v.is_contiguous:
                    idx = Idx(b, below, idx.linear())
                    continue
                multi = idx.multi()
                lin = b_const(b, v.offset)
                for m, s in zip(multi, v.strides):
                    if s:
                        term = b.emit(Op.MUL, (m, b_const(b, s)), INDEX)
                        lin = b.emit(Op.ADD, (lin, term), INDEX)
                if v.mask is not None:
                    valid = None
                    for m, (lo, hi), n in zip(multi, v.mask, v.shape):
                        conds = []
                        if lo > 0:
                            conds.append(b.emit(Op.CMPLE, (b_const(b, lo), m), _BOOL))  # m >= lo
                        if hi < n:
                            conds.append(b.emit(Op.CMPLT, (m, b_const(b, hi)), _BOOL))
                        for c in conds:
                            valid = c if valid is None else b.emit(Op.AND, (valid, c), _BOOL)
                    if valid is not None:
                        lin = b.emit(Op.WHERE, (valid, lin, b_const(b, 0)), INDEX)
                        guards.append((valid, v.fill))
                idx = Idx(b, below, lin)
        return src, idx, guards

    def buffer(self, node_id: int) -> str:
        if node_id not in self.buffers:
            self.buffers[node_id] = f"buf{len(self.buffers)}"
        return self.buffers[node_id]

    def elementwise(self, node, args, edges) -> str:
        b, op, dt = self.b, node.op, node.dtype
        in_dt = [self.g.node(e.src).dtype for e in edges]
        if op is Op.CAST:
            return b.emit(Op.CAST, (args[0],), dt) if in_dt[0] != dt else args[0]
        if op is Op.WHERE:
            cond = args[0] if in_dt[0] == _BOOL else b.emit(Op.CAST, (args[0],), _BOOL)
            a, c = (x if d == dt else b.emit(Op.CAST, (x,), dt)
                    for x, d in zip(args[1:], in_dt[1:]))
            return b.emit(Op.WHERE, (cond, a, c), dt)
        if op in COMPARISON:
            common = np.result_type(*in_dt)
            args = [x if d == common else b.emit(Op.CAST, (x,), common)
                    for x, d in zip(args, in_dt)]
            return b.emit(op, tuple(args), dt)
        args = [x if d == dt else b.emit(Op.CAST, (x,), dt) for x, d in zip(args, in_dt)]
        if op is Op.POW and self.g.node(edges[1].src).op is Op.CONST:
            special = self._pow_const(args[0], float(self.g.node(edges[1].src).attrs["value"]), dt)
            if special is not None:
                return special
        expand = SCALAR_OPS[op].expand
        if expand is not None:  # an op written as other scalar ops: nothing to render
            return expand(b.emit, tuple(args), dt)
        if (op is Op.DIV and dt.kind == "f"
                and multiplies_by_reciprocal(self.g, self.group, self.edges_of, edges)):
            # NOTE (row reciprocal): softmax's x / sum as x * (1 / sum), hoisted
            return b.emit(Op.MUL, (args[0], b.emit(Op.RECIP, (args[1],), dt)), dt)
        return b.emit(op, tuple(args), dt)

    def _pow_const(self, x, p, dt):
        b = self.b
        if p == 1:
            return x
        if p == 2:
            return b.emit(Op.MUL, (x, x), dt)
        if p == 3:
            return b.emit(Op.MUL, (b.emit(Op.MUL, (x, x), dt), x), dt)
        if dt.kind == "f" and p == 0.5:
            return b.emit(Op.SQRT, (x,), dt)
        if dt.kind == "f" and p == -1:
            return b.emit(Op.RECIP, (x,), dt)
        return None

    # -- kernel layout ------------------------------------------------------------------
    def lower(self) -> LoopKernel:
        g, gr = self.g, self.group
        root = g.node(gr.root)
        ops = [g.node(n).op.name for n in self.members]
        flat = False
        if gr.rows is None:
            flat = all(e.view is None or e.view.is_reshape()
                       for n in gr.nodes for e in self.edges_of(g.node(n))
                       if g.node(e.src).op is not Op.CONST)
            if flat or root.shape == ():
                rows, rowlen = root.numel, None
            else:
                rowlen = root.shape[-1]
                rows = prod(root.shape[:-1])
        else:
            rows, rowlen = gr.rows, gr.rowlen
        self.b = b = KernelBuilder(self.name, rows)
        o = b.var_outer
        levels = self._levels()
        self.stash = self._stash(rows, rowlen, levels)
        for level in sorted(set(levels.values())):
            pass_nodes = [r for r in gr.reductions if levels[r] == level]
            accs = {r: b.define_acc(REDUCTION_ACC[g.node(r).op], g.node(r).dtype,
                                    _acc_init(g.node(r).op, g.node(r).dtype)) for r in pass_nodes}
            assert rowlen is not None  # a group with reductions is a row kernel
            var = self._begin_loop(rowlen, "r")
            for r in pass_nodes:
                node = g.node(r)
                edge = self.edges_of(node)[0]
                idx = self._reduce_index(node, var)
                val = self.read(edge, idx)
                if self.stash is not None and self.stash[1] == r:
                    # evaluated at this index on the way to ``val`` (a memo hit)
                    stashed = self.value(self.stash[0], idx)
                    b.store(self.buffer(self.stash[2]), idx.linear(), stashed)
                if g.node(edge.src).dtype != node.dtype:
                    val = b.emit(Op.CAST, (val,), node.dtype)
                b.acc_update(accs[r], val)
            self._end_loop()
            self.accs.update(accs)
        row_outputs = []
        for out in gr.outputs:
            node = g.node(out)
            if rowlen is None or (node.numel == rows and node.numel != rows * rowlen):
                self._store(out, Idx(b, node.shape, o))
            else:
                row_outputs.append(out)
        if row_outputs:
            assert rowlen is not None  # row outputs exist only in a row kernel (above)
            var = self._begin_loop(rowlen, "j")
            linear = b.emit(Op.ADD, (b.emit(Op.MUL, (o, b_const(b, rowlen)), INDEX), var), INDEX)
            self.row_linear = linear
            for out in row_outputs:
                shape = g.node(out).shape
                t = split_rows(shape, rows)
                multi = None if t is None else unravel(b, o, shape[:t]) + unravel(b, var, shape[t:])
                self._store(out, Idx(b, shape, linear, multi))
            self._end_loop()
        params = [BufferArg(name, g.node(n).dtype, g.node(n).numel, n in gr.outputs)
                  for n, name in self.buffers.items()]
        passes = len(set(levels.values())) + (1 if row_outputs else 0)
        work = rows * max(rowlen or 1, 1) * max(passes, 1)
        kernel = b.finish(params, ops, work)
        kernel.buffer_nodes = list(self.buffers)
        return kernel

    def _begin_loop(self, extent: int, prefix: str) -> str:
        self.memo.append({})
        return self.b.begin_loop(extent, prefix)

    def _end_loop(self) -> None:
        self.memo.pop()
        self.b.end_loop()

    def _store(self, node_id: int, idx: Idx) -> None:
        val = self.value(node_id, idx)
        self.b.store(self.buffer(node_id), idx.linear(), val)

    def _reduce_index(self, node, var) -> Idx:
        shape = self.g.node(node.inputs[0]).shape
        axes = set(node.attrs["axes"])
        keep = [d for d in range(len(shape)) if d not in axes]
        red = [d for d in range(len(shape)) if d in axes]
        outer = unravel(self.b, self.b.var_outer, [shape[d] for d in keep])
        inner = unravel(self.b, var, [shape[d] for d in red])
        multi: list[str | None] = [None] * len(shape)
        for d, m in zip(keep, outer):
            multi[d] = m
        for d, m in zip(red, inner):
            multi[d] = m
        return Idx(self.b, shape, multi=multi)

    def _stash(self, rows, rowlen, levels) -> tuple[int, int, int] | None:
        """(node, reduction, output): a costly row value worth computing once.

        NOTE (row stash): softmax reads exp(x - max) in its sum pass and again in its
        output pass; its backward reads it in the pass that sums g * y and again in the
        output pass.  When such a value (transcendental math over the whole row, reached
        from a last-axis reduction's input through elementwise ops without views, so it
        is evaluated at the reduction's own index) has the shape and dtype of a row
        output that is it (cross_entropy's saved exp) or reads it the same way, the
        reduction's pass stores it into that row and the output pass loads it.  Same
        thread, same row, earlier pass: the output's final store overwrites it
        afterwards.  Of several such values the one nearest the output is kept (it
        holds the most work).
        """
        g, gr = self.g, self.group
        if gr.rows is None or not rowlen:
            return None
        row_outputs = [o for o in gr.outputs if g.node(o).numel == rows * rowlen]
        for r in gr.reductions:
            node = g.node(r)
            edge = self.edges_of(node)[0]
            src = g.node(edge.src)
            if (edge.view is not None or src.id not in gr.nodes or src.op in REDUCE
                    or src.op in MOVEMENT or not src.shape
                    or tuple(node.attrs["axes"]) != (len(src.shape) - 1,)
                    or src.shape[-1] != rowlen):
                continue
            in_pass = self._plain_reads(src.id)
            for out in row_outputs:
                o = g.node(out)
                for cand in self._plain_reads(out):
                    c = g.node(cand)
                    if (cand in in_pass and c.op not in REDUCE and c.op not in MOVEMENT
                            and c.shape == src.shape == o.shape
                            and c.dtype == o.dtype and self._costly(cand, levels[r])):
                        return cand, r, out
        return None

    def _plain_reads(self, start: int, include_self: bool = True) -> list[int]:
        """In-group nodes ``start`` reads through elementwise edges without views, nearest
        first (``start`` itself first with ``include_self``)."""
        g, gr = self.g, self.group
        order, seen, frontier = [], {start}, [start]
        if include_self:
            order.append(start)
        while frontier:
            nxt = []
            for n in map(g.node, frontier):
                if n.op in REDUCE or n.op in MOVEMENT:
                    continue
                for e in self.edges_of(n):
                    if (e.view is None and e.src in gr.nodes and e.src not in seen
                            and g.node(e.src).op is not Op.CONST):
                        seen.add(e.src)
                        order.append(e.src)
                        nxt.append(e.src)
            frontier = nxt
        return order

    def _costly(self, node_id: int, level: int) -> bool:
        """True when ``node_id`` needs transcendental math computed in the row pass."""
        g, gr = self.g, self.group
        stack, seen = [node_id], set()
        while stack:
            n = g.node(stack.pop())
            if n.id in seen or n.id not in gr.nodes or n.op in REDUCE:
                continue
            seen.add(n.id)
            if n.op in COSTLY:
                return True
            stack += [e.src for e in self.edges_of(n)]
        return False

    def _levels(self) -> dict[int, int]:
        """Pass number of each reduction: 1 + the deepest in-group reduction it reads."""
        g, gr = self.g, self.group
        levels: dict[int, int] = {}
        depth: dict[int, int] = {}
        for n in map(g.node, self.members):
            deps = [depth.get(e.src, 0) for e in self.edges_of(n) if e.src in gr.nodes]
            d = max(deps, default=0)
            if n.op in REDUCE:
                d += 1
                levels[n.id] = d
            depth[n.id] = d
        return levels


def lower_group(graph: Graph, group: Group, name: str,
                edges: dict[int, list[Edge]] | None = None) -> LoopKernel:
    """Lower ``group`` to a LoopKernel named ``name``.  Its buffers are ``buf0..`` in order
    of first use; ``kernel.buffer_nodes`` lists the graph node each one holds.  Constant
    index offsets are hoisted into ``BufferArg.offset`` (NOTE (hoisted offsets)), so the
    kernel an unrolled loop makes at every step lowers to one text.  ``edges`` caches
    ``input_edges`` per node (``Fusion.edges``)."""
    with phase("lower"):
        return hoist_offsets(_Lowerer(graph, group, name, edges).lower())


# -- lowering repeated groups once ---------------------------------------------------------
# NOTE (group keys): an unrolled loop (an RNN over time steps, its backward) fuses into
# many groups that differ only in which buffers they read and where in them.  ``group_key``
# describes everything ``_Lowerer`` looks at, with node ids replaced by positions (member k,
# external buffer k) and the base offset of each external buffer's views factored out;
# ``LoweringCache`` lowers one group per key and gives the others its kernel with their
# own buffers bound and offsets moved by the difference of the bases, when
# NOTE (moved offsets) in codegen.offsets says that is the kernel lowering would make.

def group_key(graph: Graph, group: Group, edges: dict[int, list[Edge]]):
    """(key, nodes, bases): a hashable description of what lowering ``group`` depends on;
    the graph node at each position (members in graph order, then external buffers); and
    the base offset factored out of the views of each external buffer."""
    members = _members(graph, group)
    local = {n: k for k, n in enumerate(members)}
    nodes = list(members)
    parts: list[tuple] = []
    reads: list[tuple[int, int, Edge]] = []  # reads: (external position, edge) to rebase afterwards
    for n in members:
        node = graph.node(n)
        es = edges.get(n)
        if es is None:
            es = edges[n] = input_edges(graph, node)
        refs: list = []  # entries of several shapes, see the appends
        for e in es:
            k = local.get(e.src)
            if k is not None and k < len(members):
                refs.append(("n", k, None if e.view is None else e.view.views))
                continue
            src = graph.node(e.src)
            if src.op is Op.CONST:
                v = src.attrs["value"]
                refs.append(("c", type(v).__name__, repr(v), src.dtype.str,
                             None if e.view is None else e.view.views))
                continue
            if k is None:
                local[e.src] = len(nodes)
                nodes.append(e.src)
            reads.append((len(refs), len(parts), e))
            refs.append(None)   # filled in below, once the base is known
        attrs = () if node.op in MOVEMENT else repr(sorted(node.attrs.items()))
        parts.append((node.op, attrs, node.shape, node.dtype.str, refs))
    # base of a buffer: the lowest offset its views start at (masked views are kept whole:
    # their safe index WHERE(valid, i, 0) is never hoisted)
    bases: dict[int, int] = {}
    fixed = set()
    for _, _, e in reads:
        k = local[e.src]
        first = None if e.view is None else e.view.views[0]
        if first is not None and first.mask is not None:
            fixed.add(k)
        off = 0 if first is None else first.offset
        bases[k] = min(bases.get(k, off), off)
    for k in fixed:
        bases[k] = 0
    plain = set()   # external positions read without a view: their shape is the index's
    for r, p, e in reads:
        k = local[e.src]
        base = bases[k]
        if e.view is None:
            plain.add(k)
            parts[p][4][r] = ("x", k, -base, None)
        else:
            views = e.view.views
            if base:
                views = (replace(views[0], offset=views[0].offset - base),) + views[1:]
            parts[p][4][r] = ("x", k, 0, views)
    # NOTE (buffer sizes in group keys): a buffer read only through views enters the kernel
    # by the views' index math and its BufferArg.size (``_moved`` sets it) alone, so an RNN
    # cell lowers once for every sequence length although its input stack grows with it.
    ext = tuple((graph.node(n).shape if k in plain else None, graph.node(n).dtype.str)
                for k, n in enumerate(nodes) if k >= len(members))
    key = (tuple((op, attrs, shape, dt, tuple(refs)) for op, attrs, shape, dt, refs in parts),
           ext, group.rows, group.rowlen, tuple(local[r] for r in group.reductions),
           tuple(local[o] for o in group.outputs), local[group.root])
    return key, nodes, [bases.get(k, 0) for k in range(len(nodes))]


class LoweringCache:
    """``lower_group`` once per ``group_key`` (NOTE (group keys)).  With ``check`` every
    reused kernel is also lowered afresh and must print the same, with the same offsets
    and buffers (tests run this way).

    >>> from tracegrad.codegen.fuse import fuse
    >>> g = Graph(); x = g.add(Op.INPUT, (), (4, 8), "float32", index=0)
    >>> rows = [g.add(Op.EXP, (g.add(Op.SLICE, (x.id,), (1, 8), "float32",
    ...         index=(slice(t, t + 1), slice(None))).id,), (1, 8), "float32") for t in range(4)]
    >>> g.outputs = [r.id for r in rows]
    >>> from tracegrad.codegen.passes import simplify
    >>> g = simplify(g); f = fuse(g); cache = LoweringCache(check=True)
    >>> ks = [cache.lower(g, gr, f"k{i}", f.edges) for i, gr in enumerate(f.groups)]
    >>> cache.lowered, [k.buffers[0].offset for k in ks]
    (2, [0, 8, 16, 24])
    """

    def __init__(self, check: bool = False, max_keys: int = 4096):
        self.check = check
        self.max_keys = max_keys
        self.kernels: dict = {}   # key -> [(kernel, positions of its buffers, bases)]
        self.lowered = 0          # groups lowered (the others reused a kernel)

    def lower(self, graph: Graph, group: Group, name: str,
              edges: dict[int, list[Edge]]) -> LoopKernel:
        key, nodes, bases = group_key(graph, group, edges)
        if key not in self.kernels and len(self.kernels) >= self.max_keys:
            self.kernels.clear()   # a long-lived cache stays bounded
        hits = self.kernels.setdefault(key, [])
        sizes = [graph.node(n).numel for n in nodes]
        for hit in hits:
            kernel = _moved(hit, nodes, bases, sizes, name)
            if kernel is not None:
                if self.check:
                    _check_same(kernel, lower_group(graph, group, name, edges))
                return kernel
        kernel = lower_group(graph, group, name, edges)
        self.lowered += 1
        if len(hits) < 4:  # e.g. the first time step (base 0, nothing hoisted) and the others
            where = {n: k for k, n in enumerate(nodes)}
            hits.append((kernel, [where[n] for n in kernel.buffer_nodes], bases))
        return kernel


def _moved(hit, nodes: list[int], bases: list[int], sizes: list[int],
           name: str) -> LoopKernel | None:
    """The cached kernel for ``nodes`` at ``bases``, buffers of ``sizes`` elements; None
    when its body depends on the base of a buffer that moved (NOTE (moved offsets))."""
    kernel, positions, old_bases = hit
    buffers = []
    for arg, k in zip(kernel.buffers, positions):
        d = bases[k] - old_bases[k]
        if d and (arg.name not in kernel.movable or arg.offset + d <= 0):
            return None
        buffers.append(replace(arg, offset=arg.offset + d, size=sizes[k]))
    out = LoopKernel(name, buffers, kernel.outer, kernel.body, kernel.outer_var,
                     kernel.ops, kernel.work)
    out.buffer_nodes = [nodes[k] for k in positions]
    out.movable = kernel.movable
    return out


def _check_same(reused: LoopKernel, fresh: LoopKernel) -> None:
    assert str(reused) == str(fresh), f"reused kernel differs:\n{reused}\n-- fresh --\n{fresh}"
    assert reused.buffers == fresh.buffers, (reused.buffers, fresh.buffers)
    assert reused.buffer_nodes == fresh.buffer_nodes, (reused.buffer_nodes, fresh.buffer_nodes)
