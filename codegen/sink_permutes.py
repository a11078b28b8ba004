"""Compute elementwise ops in the memory order of their operands (permute sinking).

NOTE (sink permutes): a convolution computes its output as a ``(N*H*W, C)`` matmul and
hands it on as the ``(N, C, H, W)`` permute of that buffer.  An elementwise op over the
permuted value (the ReLU, its mask, the ReLU's backward ``where``) is lowered in its own
shape, so its kernel walked the matmul result with a stride of C elements and wrote an
NCHW buffer, which the next matmul (the weight gradient) then copied back to
``(N*H*W, C)``.  Rewritten as ``op(x)`` in ``x``'s order followed by the permute
(``op(permute(x, p)) == permute(op(x), p)`` for elementwise ops), the kernel runs over
contiguous memory and a consumer that permutes back reads the result as it lies.

The rewrite runs on the traced graph (movement ops still explicit) and is taken for an
elementwise node when the permutes it removes from its operands and consumers outnumber
the ones it adds: operands read through ``permute(., p)`` and consumers that apply the
inverse permute count for (unless the permuted operand is itself a result the caller
receives, which keeps its permute); operands that are computed values of the same shape (which
it would read transposed) and consumers that are neither movement nor elementwise ops
(a matmul would need a copy) count against.  Scalar operands do not count; an operand of
another shape (broadcast) or a result the caller receives leaves the node as it is.
"""
from __future__ import annotations

import numpy as np

from .graph import Graph, GraphNode
from .ops import ELEMENTWISE, MOVEMENT, Op


def _inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argsort(perm))


def sink_permutes(graph: Graph) -> Graph:
    """``graph`` with elementwise nodes moved below the permutes of their operands where
    that removes permutes (NOTE (sink permutes)); ``graph`` itself when none moves."""
    consumers = graph.consumers()
    outputs = set(graph.outputs)
    by_id: dict[int, GraphNode] = {}
    nodes: list[GraphNode] = []
    next_id = max((n.id for n in graph.nodes), default=-1) + 1
    moved = False

    def add(node: GraphNode) -> None:
        nodes.append(node)
        by_id[node.id] = node

    for n in graph.nodes:
        perm = _sinkable(n, by_id, consumers, outputs, graph)
        if perm is None:
            add(n)
            continue
        inv = _inverse(perm)
        inputs = []
        for i in n.inputs:
            src = by_id[i]
            if src.shape == ():
                inputs.append(i)
            elif src.op is Op.PERMUTE and tuple(src.attrs["perm"]) == perm:
                inputs.append(src.inputs[0])
            else:   # a value in n's order: read it in the sunk order
                shape = tuple(src.shape[k] for k in inv)
                add(GraphNode(next_id, Op.PERMUTE, (i,), shape, src.dtype, {"perm": inv}))
                inputs.append(next_id)
                next_id += 1
        shape = tuple(n.shape[k] for k in inv)
        add(GraphNode(next_id, n.op, tuple(inputs), shape, n.dtype, n.attrs))
        add(GraphNode(n.id, Op.PERMUTE, (next_id,), n.shape, n.dtype, {"perm": perm}))
        next_id += 1
        moved = True
    return graph.rebuilt(nodes, graph.outputs) if moved else graph


def _sinkable(n: GraphNode, by_id: dict[int, GraphNode], consumers: dict[int, list[int]],
              outputs: set[int], graph: Graph) -> tuple[int, ...] | None:
    """The permutation to move ``n`` below, or None (NOTE (sink permutes))."""
    if n.op not in ELEMENTWISE or n.id in outputs or len(n.shape) < 2:
        return None
    perm = None
    gain = 0
    for i in n.inputs:
        src = by_id[i]
        if src.shape == ():
            continue
        if src.shape != n.shape:
            return None
        if src.op is Op.PERMUTE and src.id not in outputs:   # an output stays permuted
            p = tuple(src.attrs["perm"])
            if perm is None:
                perm = p
            if p == perm:
                gain += 1
                continue
        if src.op not in MOVEMENT:
            gain -= 1
    if perm is None:
        return None
    inv = _inverse(perm)
    for c in consumers.get(n.id, ()):
        user = graph.node(c)
        if user.op is Op.PERMUTE and tuple(user.attrs["perm"]) == inv:
            gain += 1
        elif user.op not in MOVEMENT and user.op not in ELEMENTWISE:
            gain -= 1
    return perm if gain > 0 else None
