"""The backward engine: walks ``grad_fn`` nodes in reverse topological order, calling
each primitive's derivative rule (tensor code, so ``create_graph=True`` records a graph
of the backward pass for higher-order gradients)."""
from __future__ import annotations

import numpy as np

from .. import _trace_state, _untraced
from .._errors import TraceError
from .._primitives import functions as F
from .._tensor import Tensor, _wrap, sync_view_history
from .grad_mode import state as _grad_state


def _topological_order(roots):
    """Nodes reachable from ``roots``, each after every node that feeds it a gradient.

    NOTE (ready order): a node comes as soon as all its consumers are done (Kahn's
    algorithm, depth first), and among nodes made ready together, those whose inputs are
    all leaves come first. So a parameter's gradient is final early in the backward (a
    linear layer's ``weight.t()`` node runs right after its matmul, not at the very end),
    which lets DistributedDataParallel overlap its all-reduce with the rest."""
    consumers: dict = {}  # id(node) -> how many edges reach it from other nodes
    children: dict = {}  # id(node) -> the nodes its gradient flows into
    stack = [node for node in roots if node is not None]
    while stack:
        node = stack.pop()
        if id(node) in children:
            continue
        if node.inputs is None:
            raise RuntimeError(
                f"Trying to backward through the graph a second time (through {node.name()}): "
                f"its saved tensors were freed by the first backward. Pass retain_graph=True "
                f"to the first backward() if you need to backward twice.")
        fns = []
        for fn in node.edges:
            if fn is not None:
                fns.append(fn)
                key = id(fn)
                consumers[key] = consumers.get(key, 0) + 1
                if key not in children:
                    stack.append(fn)
        children[id(node)] = fns
    order = []
    ready = [node for node in dict.fromkeys(r for r in roots if r is not None)
             if id(node) not in consumers]
    while ready:
        node = ready.pop()
        order.append(node)
        terminal = []
        for fn in children[id(node)]:
            key = id(fn)
            left = consumers[key] - 1
            consumers[key] = left
            if left == 0:
                if children[key]:
                    ready.append(fn)
                else:
                    terminal.append(fn)
        ready.extend(terminal)  # popped first
    return order


def _check_versions(node) -> None:
    reads = node.prim.needs(node.needs_grad)
    for i in reads:
        x = node.inputs[i]
        version = getattr(x, "_version", None)
        if version is not None and version[0] != node.versions[i]:
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by "
                f"an inplace operation: input {i} of {node.name()} (shape {tuple(x.shape)}, "
                f"{x.dtype}) is at version {version[0]}; expected version {node.versions[i]} "
                f"instead")


def _accumulate(store: dict, key, grad) -> None:
    prev = store.get(key)
    if prev is None:
        store[key] = grad
    elif isinstance(prev, Tensor):
        store[key] = F.add(prev, grad)
    else:  # a compiled call's GradBundle merges itself (compiler/autograd_bridge.py)
        store[key] = prev + grad


def run_backward(roots, grad_roots, retain_graph: bool, create_graph: bool,
                 capture: list | None = None, accumulate_into_leaves: bool = True):
    """The engine. ``capture``: tensors whose gradients to return instead of (or as well
    as) accumulating into leaves (``autograd.grad``)."""
    # NOTE (untraced stretches) in tracegrad/_untraced.py: the engine reads nothing of the
    # user's; a hook and a custom Function's backward turn the recorder back on
    token = _untraced.pause()
    try:
        return _run_backward(roots, grad_roots, retain_graph, create_graph, capture,
                             accumulate_into_leaves)
    finally:
        _untraced.resume(token)


def _run_backward(roots, grad_roots, retain_graph: bool, create_graph: bool,
                  capture: list | None, accumulate_into_leaves: bool):

    for t in (*roots, *(capture or ())):
        if t._view is not None:
            sync_view_history(t)  # NOTE (views) in _ops/views.py
    tracer = _trace_state.state.tracer if _trace_state.active_traces else None
    if tracer is not None:
        tracer.mark_phase("backward")   # for reports (NOTE (training step capture))
        # autograd.grad(loss, params) without retain_graph frees the graph, as eagerly:
        # the function's results are then no start of a backward through it
        tracer.graph_freed = tracer.graph_freed or not retain_graph
    node_grads: dict = {}
    leaf_grads: dict = {}
    leaves: dict = {}
    captured_nodes = {}
    if capture is not None:
        for i, t in enumerate(capture):
            if t.grad_fn is not None:
                captured_nodes.setdefault(id(t.grad_fn), []).append(i)
    results = [None] * (len(capture) if capture is not None else 0)

    for root, g in zip(roots, grad_roots):
        if root.grad_fn is not None:
            _accumulate(node_grads, id(root.grad_fn), g)
        elif root._requires_grad:
            _accumulate(leaf_grads, id(root), g)
            leaves[id(root)] = root

    prev_mode = _grad_state.enabled
    _grad_state.enabled = create_graph
    try:
        order = _topological_order([r.grad_fn for r in roots])
        pending = _post_hook_pending(order) if accumulate_into_leaves else None
        if pending and _trace_state.active_traces:
            # NOTE: a post-accumulate-grad hook is Python run at every backward (DDP's
            # all-reduce, a logger); a compiled program would have run it once, at the trace
            raise TraceError("a parameter has a post-accumulate-grad hook "
                             "(register_post_accumulate_grad_hook), which must run at every "
                             "backward; a compile trace cannot repeat it")
        stored: set = set()
        for node in order:
            g = node_grads.pop(id(node), None)
            if g is None:
                continue
            if node.hooks:
                for hook in node.hooks:
                    g = _hooked(hook, g)
            if node.retained:
                for ref in node.retained:
                    t = ref()
                    if t is not None and t.grad_fn is node:
                        t.grad = g if create_graph else g.detach()
            for i in captured_nodes.get(id(node), ()):
                results[i] = g
            _check_versions(node)
            grads = node.prim.vjp(g, node)
            for x, fn, gx, needed in zip(node.inputs, node.edges, grads, node.needs_grad):
                if gx is None or not needed:
                    continue
                if fn is not None:
                    _accumulate(node_grads, id(fn), gx)
                else:
                    _accumulate(leaf_grads, id(x), gx)
                    leaves[id(x)] = x
            if pending:
                _store_finished_leaves(node, pending, leaves, leaf_grads, create_graph, stored)
            if not retain_graph:
                node.inputs = None
                node.edges = ()
                node.out_data = None
    finally:
        _grad_state.enabled = prev_mode

    if capture is not None:
        for i, t in enumerate(capture):
            if t.grad_fn is None:
                results[i] = leaf_grads.get(id(t))
    if accumulate_into_leaves:
        _store_leaf_grads(leaves, leaf_grads, create_graph, stored)
    return results


def _post_hook_pending(order) -> dict:
    """For each leaf with post-accumulate-grad hooks: how many gradient contributions
    the nodes in ``order`` will send it. Its gradient is final when that count is 0."""
    pending: dict = {}
    for node in order:
        for x, fn, needed in zip(node.inputs, node.edges, node.needs_grad):
            if needed and fn is None and x._post_accumulate_grad_hooks:
                pending[id(x)] = pending.get(id(x), 0) + 1
    return pending


def _store_finished_leaves(node, pending, leaves, leaf_grads, create_graph, stored) -> None:
    """Stores (and runs the post-accumulate-grad hooks of) each leaf input of ``node``
    that will get no more gradient, while the rest of the backward still runs: this is
    what lets DistributedDataParallel start an all-reduce during backward."""
    for x, needed in zip(node.inputs, node.needs_grad):
        key = id(x)
        if not needed or key not in pending:
            continue
        pending[key] -= 1
        if pending[key] == 0 and key in leaf_grads:
            # NOTE: the engine may still pass this gradient array to other nodes, and a
            # post hook may change .grad in place, so the stored gradient is a copy.
            g, leaf = leaf_grads.pop(key), leaves.pop(key)
            if leaf.grad is None:
                g = g.clone() if create_graph else _copy_tensor(g)
            _store_leaf_grads({key: leaf}, {key: g}, create_graph, stored)


def _hooked(hook, g: Tensor) -> Tensor:
    """The gradient after a tensor hook (``register_hook``), which may return a new one."""
    new = _untraced.user_call(hook, g)
    if new is None and _trace_state.active_traces:
        # NOTE: a hook returning nothing runs for what else it does (logging, keeping the
        # gradient), which a compiled program would do once, at the trace; one returning
        # a gradient (g * 2, g.clamp(-1, 1)) traces like any tensor code
        raise TraceError("a tensor hook (register_hook) returned None: it runs for its "
                         "side effects, which a compile trace cannot repeat at every call")
    return g if new is None else new


def _store_leaf_grads(leaves: dict, leaf_grads: dict, create_graph: bool,
                      stored: set | None = None) -> None:
    stored = set() if stored is None else stored
    for key, leaf in leaves.items():
        g = leaf_grads[key]
        if leaf._hooks:
            for hook in leaf._hooks:
                g = _hooked(hook, g)
        if not create_graph:
            g = g.detach()
        tracer = _trace_state.state.tracer if _trace_state.active_traces else None
        if tracer is not None:
            # NOTE (grads in a trace): .grad gets a traced value; the tracer restores the
            # field when the trace ends and the compiled step writes the value back at every
            # call (aliases of one gradient get their own copies there, not here).
            tracer.store_grad(leaf, g)
        elif leaf.grad is None:
            data = g._data
            # A gradient that aliases another tensor (passed through add, broadcast by
            # expand, or already stored on another leaf) gets its own storage, so that
            # grad.zero_() or += on one leaf never changes another.
            if getattr(data, "on_device", False):  # a CUDA gradient may alias: always copy
                g = g.clone() if create_graph else g.detach().clone()
            elif id(data) in stored or not data.flags.writeable or data.base is not None:
                g = g.clone() if create_graph else _copy_tensor(g)
            stored.add(id(g._data))
            leaf.grad = g
        elif create_graph:
            leaf.grad = F.add(leaf.grad, g)
        elif getattr(leaf.grad._data, "on_device", False):  # CUDA: rebinds (NOTE (device views))
            leaf.grad._data = (leaf.grad.detach() + g)._data
            leaf.grad._version[0] += 1
        else:
            leaf.grad._data += g._data
            leaf.grad._version[0] += 1
        if leaf._post_accumulate_grad_hooks:
            for hook in leaf._post_accumulate_grad_hooks:
                _untraced.user_call(hook, leaf)


def _copy_tensor(t):
    return _wrap(np.array(t._data, copy=True))


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """``tracegrad.autograd.backward``: the engine behind ``Tensor.backward``."""
    tensors = tuple(tensors) if isinstance(tensors, (tuple, list)) else (tensors,)
    grads = _root_grads(tensors, grad_tensors, "backward")
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        inputs = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
        results = run_backward(tensors, grads, retain_graph, create_graph, capture=inputs,
                               accumulate_into_leaves=False)
        for t, g in zip(inputs, results):
            if g is not None:
                _store_leaf_grads({id(t): t}, {id(t): g}, create_graph)
        return
    run_backward(tensors, grads, retain_graph, create_graph)


def tensor_backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """``Tensor.backward``: accumulate d(self)/d(leaf) into every leaf's ``.grad``."""
    token = _untraced.pause()   # NOTE (untraced stretches)
    try:
        backward((self,), None if gradient is None else (gradient,), retain_graph,
                 create_graph, inputs=inputs)
    finally:
        _untraced.resume(token)


def _root_grads(tensors, grad_tensors, what: str):
    if grad_tensors is None:
        grad_tensors = (None,) * len(tensors)
    elif isinstance(grad_tensors, Tensor):
        grad_tensors = (grad_tensors,)
    out = []
    for t, g in zip(tensors, grad_tensors):
        if not t._requires_grad:
            raise RuntimeError(
                f"{what}: element 0 of tensors does not require grad and does not have a "
                f"grad_fn (shape {tuple(t.shape)}); did you compute it under no_grad, or "
                f"forget requires_grad=True on an input?")
        if g is None:
            if t.numel() != 1:
                raise RuntimeError(
                    f"{what}: grad can be implicitly created only for scalar outputs; got an "
                    f"output of shape {tuple(t.shape)}: pass gradient= with that shape")
            g = F.full(tuple(t.shape), 1, t._data.dtype, like=t)
        elif not isinstance(g, Tensor):
            g = _wrap(np.array(g, dtype=t._data.dtype))
        if tuple(g.shape) != tuple(t.shape):
            raise RuntimeError(f"{what}: gradient has shape {tuple(g.shape)} but the output "
                               f"has shape {tuple(t.shape)}")
        out.append(g)
    return out


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=False, materialize_grads=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated)."""
    outputs = tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    for i, t in enumerate(inputs):
        if not t._requires_grad:
            raise RuntimeError(f"autograd.grad: input {i} (shape {tuple(t.shape)}) does not "
                               f"require grad")
    grads = _root_grads(outputs, grad_outputs, "autograd.grad")
    if retain_graph is None:
        retain_graph = create_graph
    results = run_backward(outputs, grads, retain_graph, create_graph, capture=inputs,
                           accumulate_into_leaves=False)
    for i, (t, g) in enumerate(zip(inputs, results)):
        if g is None:
            if materialize_grads:
                results[i] = F.zeros_like(t)
            elif not allow_unused:
                raise RuntimeError(
                    f"autograd.grad: input {i} (shape {tuple(t.shape)}) was not used to "
                    f"compute the outputs; pass allow_unused=True if that is intended")
        elif not create_graph:
            results[i] = g.detach()
    return tuple(results)
