"""Split a joint forward+backward trace into a forward graph and a backward graph.

The joint graph holds the forward pass and, after it, the backward pass that the
autograd engine traced from the forward values (DESIGN.md: no second set of gradient
formulas). The forward graph computes the outputs and the *saved* values: exactly the
forward values the backward graph reads. Everything the backward needs that the forward
did not compute anyway is recomputed in the backward graph from saved values.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..codegen.graph import Graph
from ..codegen.ops import Op


@dataclass
class Split:
    forward: Graph
    backward: Graph | None
    forward_inputs: list[int]   # joint INPUT node ids, in forward-graph argument order
    n_outputs: int              # forward results before the saved values
    saved: list[int]            # joint node ids the forward returns after the outputs
    grad_inputs: list[int]      # joint INPUT ids of the incoming gradients
    forward_ids: dict | None = None   # joint node id -> forward graph node id


def _ancestors(graph: Graph, roots) -> set[int]:
    seen, stack = set(), [r for r in roots if r is not None]
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(graph.node(n).inputs)
    return seen


def _copy(graph: Graph, ids, new: Graph, remap: dict) -> None:
    for node in graph.nodes:
        if node.id in ids and node.id not in remap:
            copied = new.add(node.op, tuple(remap[i] for i in node.inputs), node.shape,
                             node.dtype, **node.attrs)
            remap[node.id] = copied.id


def _add_input(new: Graph, node, remap: dict) -> None:
    remap[node.id] = new.add(Op.INPUT, (), node.shape, node.dtype, index=len(new.inputs)).id


def split(joint: Graph, outputs: list[int], grads: list[int | None],
          grad_inputs: list[int]) -> Split:
    grad_set = set(grad_inputs)
    fwd_nodes = _ancestors(joint, outputs)
    inputs = [n for n in joint.inputs if n not in grad_set]

    bwd_nodes: set[int] = set()
    saved: list[int] = []
    if grad_inputs:
        needed = _ancestors(joint, grads)
        bwd_nodes = {n for n in needed if n not in fwd_nodes
                     and joint.node(n).op is not Op.INPUT}
        boundary = set()
        for n in bwd_nodes:
            for i in joint.node(n).inputs:
                if i not in bwd_nodes and i not in grad_set:
                    boundary.add(i)
        boundary |= {g for g in grads if g is not None and g not in bwd_nodes
                     and g not in grad_set}
        saved = sorted(boundary)

    forward = Graph()
    remap: dict = {}
    for n in inputs:
        _add_input(forward, joint.node(n), remap)
    _copy(joint, fwd_nodes | set(saved), forward, remap)
    forward.outputs = [remap[n] for n in outputs] + [remap[n] for n in saved]
    if not grad_inputs:
        return Split(forward, None, inputs, len(outputs), [], [], remap)

    backward = Graph()
    bremap: dict = {}
    for n in saved:
        _add_input(backward, joint.node(n), bremap)
    for n in grad_inputs:
        _add_input(backward, joint.node(n), bremap)
    _copy(joint, bwd_nodes, backward, bremap)
    backward.outputs = [bremap[g] for g in grads if g is not None]
    return Split(forward, backward, inputs, len(outputs), saved, list(grad_inputs), remap)
