"""The traced graph handed from ``tracegrad`` to codegen.

A ``Graph`` is a list of ``GraphNode`` in topological order (the order they were traced).
Each node names its inputs by node id and carries its output's concrete ``shape`` and
NumPy ``dtype``; ``attrs`` holds the primitive's parameters (see ``codegen.ops``).
``inputs`` lists the ids of the INPUT nodes in argument order; ``outputs`` the ids of the
nodes whose values the caller wants back.

GraphNode ids are stable names, not list positions: passes drop and rebuild nodes, so always
look a node up with ``Graph.node(id)``.  After ``codegen.passes.fold_views`` a movement
node reads its *base* (a non-movement node) directly and carries ``attrs["view"]``, a
``codegen.view.ShapeTracker`` mapping its own index to the base's index.

networkx views (``to_networkx``) are for analysis passes; the hot path never builds one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from .ops import Op


def shape_numel(shape) -> int:
    """Elements of ``shape``. ``math.prod`` of plain ints: ``np.prod`` cost ~2-3 us a call
    and the planner and tracer ask ~9000 times in an LSTM's cold compile; anything else
    (NumPy integers, a symbolic size) goes through NumPy as before."""
    if all(type(d) is int for d in shape):
        return math.prod(shape)
    return int(np.prod(shape, dtype=np.int64))


@dataclass
class GraphNode:
    id: int
    op: Op
    inputs: tuple[int, ...]
    shape: tuple[int, ...]
    dtype: np.dtype
    attrs: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [f"%{i}" for i in self.inputs] + [f"{k}={v!r}" for k, v in self.attrs.items()]
        return f"%{self.id} = {self.op.name}({', '.join(parts)}) : {self.dtype.name}{list(self.shape)}"

    @property
    def numel(self) -> int:
        return shape_numel(self.shape)


@dataclass
class Graph:
    nodes: list[GraphNode] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    _by_id: dict[int, GraphNode] = field(default_factory=dict, repr=False, compare=False)
    _next_id: int = field(default=0, repr=False, compare=False)

    def add(self, op: Op, inputs: tuple[int, ...], shape: tuple[int, ...], dtype, /,
            **attrs) -> GraphNode:
        """Append a new node (ids keep growing even after passes removed nodes).

        >>> g = Graph(); x = g.add(Op.INPUT, (), (2,), "float32", index=0)
        >>> str(g.add(Op.EXP, (x.id,), (2,), "float32"))
        '%1 = EXP(%0) : float32[2]'
        """
        if self._next_id < len(self.nodes):  # nodes appended to the list directly
            self._next_id = max((n.id for n in self.nodes), default=-1) + 1
        # the tracer and the partitioner add ~10^4 nodes per compile, mostly with tuples
        # and dtypes already: converted only when they are not
        node = GraphNode(self._next_id, op,
                         inputs if type(inputs) is tuple else tuple(inputs),
                         shape if type(shape) is tuple else tuple(shape),
                         dtype if isinstance(dtype, np.dtype) else np.dtype(dtype), attrs)
        return self.append(node)

    def append(self, node: GraphNode) -> GraphNode:
        """Append an existing node keeping its id (used by passes that rebuild graphs)."""
        self.nodes.append(node)
        self._by_id[node.id] = node
        if node.id >= self._next_id:
            self._next_id = node.id + 1
        if node.op is Op.INPUT:
            self.inputs.append(node.id)
        return node

    def node(self, node_id: int) -> GraphNode:
        """The node with id ``node_id`` (ids need not equal list positions)."""
        found = self._by_id.get(node_id)
        if found is None or found.id != node_id:
            self._by_id = {n.id: n for n in self.nodes}
            found = self._by_id[node_id]
        return found

    def consumers(self) -> dict[int, list[int]]:
        """Map node id -> ids of the nodes that read it (in graph order, repeats kept)."""
        users: dict[int, list[int]] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for i in n.inputs:
                users[i].append(n.id)
        return users

    def rebuilt(self, nodes: Iterable[GraphNode], outputs: list[int]) -> "Graph":
        """A new graph from ``nodes`` (topological order), keeping INPUT order by ``index``."""
        g = Graph()
        for n in nodes:
            g.nodes.append(n)
            g._by_id[n.id] = n
        g._next_id = max(self._next_id, max((n.id for n in g.nodes), default=-1) + 1)
        g.inputs = [n.id for n in sorted((n for n in g.nodes if n.op is Op.INPUT),
                                         key=lambda n: n.attrs.get("index", 0))]
        g.outputs = list(outputs)
        return g

    def __str__(self) -> str:
        lines = [str(n) for n in self.nodes]
        lines.append("return " + ", ".join(f"%{i}" for i in self.outputs))
        return "\n".join(lines)

    def to_networkx(self):
        import networkx as nx
        g = nx.DiGraph()
        for n in self.nodes:
            g.add_node(n.id, node=n)
            for i in n.inputs:
                g.add_edge(i, n.id)
        return g
