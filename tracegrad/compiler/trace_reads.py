"""What a trace's results and its backward read: returned arguments and their views, the
inputs eager mode's backward would read, and the forward inputs the compiled backward
reads (each checked for in-place changes between the call and backward)."""
from __future__ import annotations

from .._tensor import Tensor
from ..codegen.ops import MOVEMENT
from .tracer import TraceValue


# NOTE (returned arguments): a function that returns an argument or captured tensor (a
# parameter, the .grad a training step leaves), or a view of one, returns that very
# tensor (or a view of it) eagerly: the caller's in-place change through it changes the
# argument, bumps the version counter the backward checks, and its gradient flows into
# the argument's history. A call therefore
# returns the argument itself, or replays the view ops the trace recorded on it (the
# trace at this very signature, so their sizes hold), instead of the program's copy.
def returned_argument(t, traced_leaves, tracer):
    """("arg", index, chain), ("captured", tensor, chain) or ("grad", leaf, chain) when
    ``t`` is an argument, a captured tensor or the ``.grad`` a step leaves on ``leaf``
    (chain None), or a view of one (its chain of view ops), else None."""
    root, chain = (t._view[0], t._view[1]) if t._view is not None else (t, None)
    for position, leaf in enumerate(traced_leaves):
        if leaf is root:
            return ("arg", position, chain)
    for leaf, _before, _cleared in tracer.grads_written():
        if leaf._grad is root:   # the .grad a training step leaves: the call sets it first
            return ("grad", leaf, chain)
    if not isinstance(root._data, TraceValue) and not tracer.is_born(root) \
            and tracer.source_of(root)[0] == "captured":
        return ("captured", root, chain)
    return None


def returned_views(outputs, taken) -> list:
    """``(k, "out", j, chain)`` for each result ``k`` (not in ``taken``) that is a view of
    result ``j`` (``return h, h[:, -1]``): eagerly the two share storage, so a call makes
    ``k`` from ``j`` by the view ops the trace recorded, as a returned argument's views
    (NOTE (returned arguments)), not as a copy that an in-place change of one leaves
    behind in the other."""
    position = {id(o): j for j, o in enumerate(outputs)}
    found = []
    for k, o in enumerate(outputs):
        if k in taken or o._view is None:
            continue
        j = position.get(id(o._view[0]))
        if j is not None and j != k and j not in taken:
            found.append((k, "out", j, o._view[1]))
    return found


def reads_for_backward(outputs, tracer, traced_leaves) -> set[int]:
    """The INPUT and result nodes whose values eager mode's backward would read (NOTE
    (inputs read by backward) in partition.py): those of the arguments, captured tensors
    and results whose version counter (shared by their views) some primitive of the
    traced forward saves for its derivative rule."""
    counters, seen = set(), set()
    stack = [o.grad_fn for o in outputs if o.grad_fn is not None]
    while stack:
        node = stack.pop()
        if id(node) in seen or node.inputs is None:
            continue
        seen.add(id(node))
        for i in node.prim.needs(node.needs_grad):
            x = node.inputs[i]
            if isinstance(x, Tensor):
                counters.add(id(x._version))
        if node.out_counter is not None:   # a rule that reads its own output (exp)
            counters.add(id(node.out_counter))
        stack.extend(fn for fn in node.edges if fn is not None)
    args = {("arg", k): t for k, t in enumerate(traced_leaves)}
    out = {o._data.node for o in outputs if id(o._version) in counters}
    for node, kind in zip(tracer.graph.inputs, tracer.input_kinds):
        t = args.get(kind) if kind[0] == "arg" else kind[1] if kind[0] == "captured" else None
        if isinstance(t, Tensor) and id(t._version) in counters:
            out.add(node)
    return out


def saved_reads(parts, graph, out_ids) -> tuple:
    """Positions of the forward inputs the backward program reads, directly or through a
    view, and (as ``-1 - k``) of the results ``k`` it reads: each is checked for in-place
    changes between the call and backward, as eager mode checks what its rules save (NOTE
    (inputs read by backward) in partition.py; a saved view is a copy, but eager mode
    would raise there too)."""
    position = {n: k for k, n in enumerate(parts.forward_inputs)}
    for k, n in enumerate(out_ids):
        if graph.node(n).op not in MOVEMENT:   # a result that is a view is a copy
            position.setdefault(n, -1 - k)
    reads = set()
    copied = {parts.saved[k] for k in parts.copied}
    for n in parts.saved:
        if n in copied:
            continue
        while graph.node(n).op in MOVEMENT:
            n = graph.node(n).inputs[0]
        if n in position:
            reads.add(position[n])
    return tuple(sorted(reads))
