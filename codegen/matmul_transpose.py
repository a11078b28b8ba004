"""A matmul read only through its transpose computes the transpose itself.

The weight gradient of ``x @ w.T`` (every ``nn.Linear``) is ``(x.T @ g).T``: the graph
holds a MATMUL whose every reader is a PERMUTE (the ``.grad`` written back, the update
reading it). Fusion then makes the transpose a copy kernel of its own (a strided
read of the whole gradient) and the update reads the gradient strided too. Since
``(a @ b).T == b.T @ a.T``, the MATMUL becomes ``MATMUL(b.T, a.T)``: its operands'
transposes are views the gemm reads with its transpose flags, no kernel copies
anything, and the readers see a contiguous result. (digits MLP step: 25 -> 23 kernels.)

Runs after ``passes.simplify`` (``schedule.plan``): views are folded, so each movement
node reads a non-movement base through ``attrs["view"]``.

>>> from tracegrad.codegen.ops import Op
>>> from tracegrad.codegen.passes import simplify
>>> g = Graph()
>>> x = g.add(Op.INPUT, (), (4, 3), "float32", index=0)
>>> w = g.add(Op.INPUT, (), (4, 5), "float32", index=1)
>>> xt = g.add(Op.PERMUTE, (x.id,), (3, 4), "float32", perm=(1, 0))
>>> m = g.add(Op.MATMUL, (xt.id, w.id), (3, 5), "float32")
>>> t = g.add(Op.PERMUTE, (m.id,), (5, 3), "float32", perm=(1, 0))
>>> g.outputs = [g.add(Op.EXP, (t.id,), (5, 3), "float32").id]
>>> out = transpose_matmul_outputs(simplify(g))
>>> [n.op.name for n in out.nodes if n.id in out.node(out.outputs[0]).inputs]
['MATMUL']
"""
from __future__ import annotations

import numpy as np

from .graph import Graph, GraphNode
from .ops import MOVEMENT, Op
from .passes import _ViewAttr, eliminate_dead_code
from .view import ShapeTracker

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _reads_transpose(reader: GraphNode, node: GraphNode) -> bool:
    """``reader`` is exactly the transpose of the 2-D ``node`` (a folded view)."""
    if reader.op not in MOVEMENT or reader.inputs != (node.id,):
        return False
    view = reader.attrs.get("view")
    if view is None or len(view.views) != 1:
        return False
    v = view.last
    rows, cols = node.shape
    return (v.mask is None and v.offset == 0 and v.shape == (cols, rows)
            and v.strides == (1, cols))


def _transpose(node: GraphNode, new_id: int, by_id: dict[int, GraphNode]
               ) -> tuple[GraphNode | None, int]:
    """A view node reading ``node`` transposed (composed with ``node``'s own view when it
    is one) and its id; no node when the transpose is ``node``'s base itself."""
    if node.op in MOVEMENT:
        base_id, st = node.inputs[0], node.attrs["view"]
    else:
        base_id, st = node.id, ShapeTracker.from_shape(node.shape)
    st = st.permute((1, 0))
    if st.is_identity(by_id[base_id].shape):
        return None, base_id
    shape = (node.shape[1], node.shape[0])
    return GraphNode(new_id, Op.PERMUTE, (base_id,), shape, node.dtype,
                     {"perm": (1, 0), "view": _ViewAttr(st.views)}), new_id


def transpose_matmul_outputs(graph: Graph) -> Graph:
    """Rewrite each float 2-D MATMUL whose readers all read its transpose (see module
    doc); a MATMUL that is a graph output, or read as it is, stays."""
    users: dict[int, list[GraphNode]] = {}
    for n in graph.nodes:
        for i in set(n.inputs):
            users.setdefault(i, []).append(n)
    by_id = {n.id: n for n in graph.nodes}
    outputs = set(graph.outputs)
    next_id = max((n.id for n in graph.nodes), default=-1) + 1
    added: dict[int, list[GraphNode]] = {}
    replace: dict[int, int] = {}
    for n in graph.nodes:
        if n.op is not Op.MATMUL or len(n.shape) != 2 or n.id in outputs:
            continue
        readers = users.get(n.id, [])
        if n.dtype not in _FLOATS or 1 in n.shape or not readers:
            continue
        a, b = (by_id[i] for i in n.inputs)
        if len(a.shape) != 2 or len(b.shape) != 2:
            continue
        if not all(_reads_transpose(r, n) for r in readers):
            continue
        new: list[GraphNode] = []
        refs = []
        for operand in (b, a):
            node, ref = _transpose(operand, next_id, by_id)
            next_id += 1
            if node is not None:
                new.append(node)
            refs.append(ref)
        matmul = GraphNode(next_id, Op.MATMUL, tuple(refs), (n.shape[1], n.shape[0]),
                           n.dtype, dict(n.attrs))
        next_id += 1
        new.append(matmul)
        added[n.id] = new
        for r in readers:
            replace[r.id] = matmul.id
    if not replace:
        return graph
    nodes: list[GraphNode] = []
    for n in graph.nodes:
        nodes.extend(added.get(n.id, ()))
        if n.id in replace:
            continue   # a transpose now computed by the new MATMUL
        if any(i in replace for i in n.inputs):
            n = GraphNode(n.id, n.op, tuple(replace.get(i, i) for i in n.inputs), n.shape,
                          n.dtype, n.attrs)
        nodes.append(n)
    # the old MATMUL and its transposes are read by nothing now
    return eliminate_dead_code(graph.rebuilt(nodes, [replace.get(i, i) for i in graph.outputs]))
