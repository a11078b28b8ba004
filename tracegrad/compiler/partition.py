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
from ..codegen.ops import ELEMENTWISE, MOVEMENT, Op


@dataclass
class Split:
    forward: Graph
    backward: Graph | None
    forward_inputs: list[int]   # joint INPUT node ids, in forward-graph argument order
    n_outputs: int              # forward results before the saved values
    saved: list[int]            # joint node ids the forward returns after the outputs
    grad_inputs: list[int]      # joint INPUT ids of the incoming gradients
    forward_ids: dict | None = None   # joint node id -> forward graph node id
    copied: tuple = ()          # positions in ``saved`` of the values a call copies


def _ancestors(graph: Graph, roots) -> set[int]:
    node = graph.node
    seen, stack = set(), [r for r in roots if r is not None]
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(node(n).inputs)
    return seen


def _copy(graph: Graph, ids, new: Graph, remap: dict) -> None:
    for node in graph.nodes:
        if node.id in ids and node.id not in remap:
            copied = new.add(node.op, tuple([remap[i] for i in node.inputs]), node.shape,
                             node.dtype, **node.attrs)
            remap[node.id] = copied.id


def _add_input(new: Graph, node, remap: dict) -> None:
    remap[node.id] = new.add(Op.INPUT, (), node.shape, node.dtype, index=len(new.inputs)).id


# NOTE (recompute in backward): a large value the backward reads that the forward computes
# by elementwise ops from inputs and from much smaller values (softmax's exp(x - max) from
# x and the per-row max; cross entropy's one-hot from the targets) is recomputed in the
# backward from those instead of being saved: the forward then writes no (N, C) temp and
# both directions stay one row kernel each (PyTorch's partitioner recomputes pointwise ops
# the same way).  A value that is a forward result anyway, or that needs a reduction,
# matmul, random draw or other extern of its own size, is saved as before.
_RECOMPUTE_LIMIT = 24   # nodes recomputed per saved value, at most


def _recompute_cheap(joint: Graph, boundary: set[int], results: set[int],
                     bwd_nodes: set[int], readable: set[int]) -> set[int]:
    """The values to save: ``boundary`` with cheap large values replaced by what they are
    computed from; the nodes to recompute join ``bwd_nodes``."""
    saved: set[int] = set()
    for s in boundary:
        plan = (_recompute_plan(joint, s, results, readable)
                if joint.node(s).op in ELEMENTWISE else None)
        if plan is None:
            saved.add(s)
        else:
            bwd_nodes |= plan[0]
            saved |= plan[1]
    return saved


def _recompute_plan(joint: Graph, s: int, results: set[int], readable: set[int]):
    """(nodes to recompute, values to save instead) for saved value ``s``, or None."""
    if s in results:
        return None
    size = joint.node(s).numel
    body: set[int] = set()
    leaves: set[int] = set()
    stack = [s]
    while stack:
        n = joint.node(stack.pop())
        if n.id in body or n.id in leaves:
            continue
        if n.op is Op.CONST or n.op in MOVEMENT:
            body.add(n.id)   # free: a view is index math
            stack.extend(n.inputs)
        elif n.op is Op.INPUT or n.id in results:
            if n.id not in readable and 2 * n.numel > size:
                return None   # NOTE (inputs read by backward)
            leaves.add(n.id)
        elif 2 * n.numel <= size:
            leaves.add(n.id)
        elif n.op in ELEMENTWISE and len(body) < _RECOMPUTE_LIMIT:
            body.add(n.id)
            stack.extend(n.inputs)
        else:
            return None
    # what is saved instead must be smaller (the arguments and results the backward may
    # read as they are cost nothing to save; the others are copied)
    extra = sum(joint.node(n).numel for n in leaves if n not in readable)
    return (body, leaves) if extra < size else None


# NOTE (inputs read by backward): a saved INPUT is the caller's own array, and a saved
# result the array of a tensor the caller holds: the backward reads them as they are when
# it runs. Eager mode's derivative rules save values as they were at the call, and raise
# only when a tensor they read (``readable``: an argument, captured tensor or result
# itself, or a view of one) was changed in place since; softmax saves exp(x - max), so
# ``x.add_(1)`` between its forward and backward is legal there, while ``exp(x).mul_(2)``
# raises. So a call checks each readable saved value against in-place changes (entry.py
# _saved_reads), and copies the others (``Split.copied``) as they are at the call; a
# recompute may use such a copy only where it is small (cross entropy's class targets),
# else the recomputed value is saved instead (recomputing exp(x - max) from x would need a
# copy of x: no cheaper than saving exp(x - max)).
def split(joint: Graph, outputs: list[int], grads: list[int | None],
          grad_inputs: list[int], readable: set[int] = frozenset()) -> Split:
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
        saved = sorted(_recompute_cheap(joint, boundary, set(outputs), bwd_nodes,
                                        readable))

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
    live = set(outputs) | set(inputs)
    copied = tuple(k for k, n in enumerate(saved) if n in live and n not in readable)
    return Split(forward, backward, inputs, len(outputs), saved, list(grad_inputs), remap,
                 copied)
