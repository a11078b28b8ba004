"""Graph passes run before fusion: view folding, constant folding, CSE and DCE.

Every pass returns a new ``Graph`` (the traced graph is never mutated) and keeps node
ids, so a node can be followed from the traced graph to the kernel that computes it.

>>> from tracegrad.codegen.ops import Op
>>> g = Graph(); x = g.add(Op.INPUT, (), (2, 3), "float32", index=0)
>>> t = g.add(Op.PERMUTE, (x.id,), (3, 2), "float32", perm=(1, 0))
>>> y = g.add(Op.RESHAPE, (t.id,), (6,), "float32", shape=(6,))
>>> g.outputs = [g.add(Op.EXP, (y.id,), (6,), "float32").id]
>>> print(simplify(g))
%0 = INPUT(index=0) : float32[2, 3]
%2 = RESHAPE(%0, shape=(6,), view=[3, 2]:[1, 3]+0 -> [6]:[1]+0) : float32[6]
%3 = EXP(%2) : float32[6]
return %3
"""
from __future__ import annotations

import copy

import numpy as np

from .graph import Graph, GraphNode
from .ops import ELEMENTWISE, MOVEMENT, Op
from .scalar_ops import eval_op
from .view import ShapeTracker

# Ops whose value is not a function of their inputs: never merged by CSE.
_IMPURE = frozenset({Op.INPUT, Op.RAND, Op.RANDN})


class _ViewAttr(ShapeTracker):
    """A ShapeTracker that prints compactly inside ``GraphNode.__str__``."""

    def __repr__(self) -> str:
        return str(self)


def apply_movement(st: ShapeTracker, node: GraphNode) -> ShapeTracker:
    """Apply the movement op ``node`` on top of view ``st``."""
    a = node.attrs
    if node.op is Op.RESHAPE:
        return st.reshape(a["shape"])
    if node.op is Op.PERMUTE:
        return st.permute(a["perm"])
    if node.op is Op.EXPAND:
        return st.expand(a["shape"])
    if node.op is Op.SLICE:
        return st.slice(a["index"])
    if node.op is Op.PAD:
        return st.pad(a["pads"], a.get("value", 0))
    if node.op is Op.WINDOWS:
        return st.windows(a["window"], a["stride"], a.get("dilation", (1,) * len(a["window"])))
    raise ValueError(f"not a movement op: {node.op}")


def eliminate_dead_code(graph: Graph) -> Graph:
    """Drop nodes no output depends on (INPUT nodes stay: they fix the argument list)."""
    live = set(graph.outputs)
    for n in reversed(graph.nodes):
        if n.id in live:
            live.update(n.inputs)
    return graph.rebuilt([n for n in graph.nodes if n.id in live or n.op is Op.INPUT],
                         graph.outputs)


def _rewire(graph: Graph, replace: dict[int, int], nodes: list[GraphNode]) -> Graph:
    out = []
    for n in nodes:
        if any(i in replace for i in n.inputs):
            n = copy.copy(n)
            n.inputs = tuple(replace.get(i, i) for i in n.inputs)
        out.append(n)
    return graph.rebuilt(out, [replace.get(i, i) for i in graph.outputs])


def fold_constants(graph: Graph) -> Graph:
    """Evaluate elementwise nodes whose inputs are all CONST into one 0-d CONST."""
    values: dict[int, object] = {}
    nodes = []
    for n in graph.nodes:
        if n.op is Op.CONST:
            values[n.id] = n.attrs["value"]
        elif (n.op in ELEMENTWISE and n.shape == () and n.inputs
              and all(i in values for i in n.inputs)):
            srcs = [np.asarray(values[i], dtype=graph.node(i).dtype) for i in n.inputs]
            result = eval_op(n.op, srcs, n.dtype)
            values[n.id] = np.asarray(result).astype(n.dtype).item()
            n = GraphNode(n.id, Op.CONST, (), (), n.dtype, {"value": values[n.id]})
        nodes.append(n)
    return graph.rebuilt(nodes, graph.outputs)


def eliminate_common_subexpressions(graph: Graph) -> Graph:
    """Merge nodes with the same op, inputs, attrs, shape and dtype."""
    seen: dict[tuple, int] = {}
    replace: dict[int, int] = {}
    nodes = []
    for n in graph.nodes:
        inputs = tuple(replace.get(i, i) for i in n.inputs)
        if n.op not in _IMPURE:
            if "view" in n.attrs:
                # a folded view is its base read through the view (the other attrs say how
                # it was made): a frozen ShapeTracker is its own key, no text needed
                attrs = n.attrs["view"]
            elif not n.attrs:
                attrs = ""
            else:
                attrs = repr(sorted(n.attrs.items()))
            if n.op is Op.CONST:  # 1 == 1.0 == True for dict keys; repr tells them apart
                attrs = repr(type(n.attrs["value"])) + attrs
            key = (n.op, inputs, attrs, n.shape, n.dtype.str)
            if key in seen:
                replace[n.id] = seen[key]
                continue
            seen[key] = n.id
        nodes.append(n)
    return _rewire(graph, replace, nodes)


def fold_views(graph: Graph) -> Graph:
    """Turn chains of movement ops into one view of a non-movement base node.

    Each movement node then reads its base directly with ``attrs["view"]`` (a
    ShapeTracker); views that change nothing are replaced by their base.
    """
    replace: dict[int, int] = {}
    nodes: list[GraphNode] = []
    by_id: dict[int, GraphNode] = {}
    for n in graph.nodes:
        if n.op in MOVEMENT:
            src = by_id[replace.get(n.inputs[0], n.inputs[0])]
            if src.op in MOVEMENT:
                base, st = src.inputs[0], src.attrs["view"]
            else:
                base, st = src.id, ShapeTracker.from_shape(src.shape)
            st = _ViewAttr(apply_movement(st, n).views)
            assert st.shape == n.shape, (str(n), st.shape)
            if st.is_identity(by_id[base].shape):
                replace[n.id] = base
                continue
            n = GraphNode(n.id, n.op, (base,), n.shape, n.dtype, {**n.attrs, "view": st})
        elif replace and any(i in replace for i in n.inputs):
            # unchanged nodes are shared with the input graph (passes never mutate nodes)
            n = GraphNode(n.id, n.op, tuple(replace.get(i, i) for i in n.inputs), n.shape,
                     n.dtype, n.attrs)
        nodes.append(n)
        by_id[n.id] = n
    return graph.rebuilt(nodes, [replace.get(i, i) for i in graph.outputs])


def simplify(graph: Graph) -> Graph:
    """All passes in order: views, constants, CSE, then DCE of what they left unused."""
    graph = fold_views(graph)
    graph = fold_constants(graph)
    graph = eliminate_common_subexpressions(graph)
    return eliminate_dead_code(graph)
