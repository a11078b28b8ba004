"""How an in-place write lands on a tensor: the checks PyTorch makes before it, the write
itself (into the same storage, or rebinding the value while tracing), the version
counter, and the history of the tensor and of the views that share its storage
(NOTE (views) in views.py). ``inplace`` (``add_``, ``fill_``, ...) and ``indexing``
(``x[i] = v``) both write through here.
"""
from __future__ import annotations

import dataclasses
import sys

import numpy as np

from .. import _tensor
from .. import _trace_state
from .._dispatch import apply, is_tracing, rebind_data
from .._primitives import functions as F
from .._primitives.linalg_index import PRIM_INDEX_PUT, TENSOR
from .._tensor import Tensor, _wrap, replay_view_ops, wake_views
from ..autograd.grad_mode import state as _grad_state
from ..autograd.node import Node
from . import math as M
from .shape import clone
from .views import history_alias, storage_positions


def check_inplace(x: Tensor, op: str, overlap: bool = True) -> None:
    """Refuse a write into ``x`` that PyTorch refuses (``overlap``: also one into an
    expanded dim, NOTE (overlapping writes))."""
    if _grad_state.enabled and x._no_grad_view:
        raise RuntimeError(
            f"{op}: a view was created in no_grad mode and is being modified inplace with grad "
            f"mode enabled (view of shape {tuple(x.shape)}). Given that this use case is "
            f"ambiguous and error-prone, it is forbidden. You can clarify your code by moving "
            f"both the view and the inplace either both inside the no_grad block (if you don't "
            f"want the inplace to be tracked) or both outside (if you want the inplace to be "
            f"tracked).")
    if _grad_state.enabled and x._requires_grad:
        if x.grad_fn is None:
            raise RuntimeError(
                f"{op}: a leaf Variable that requires grad (shape {tuple(x.shape)}) is being "
                f"used in an in-place operation; wrap it in `with tracegrad.no_grad():` or "
                f"use .data")
        base = x._base
        if base is not None and base._requires_grad and base.grad_fn is None:
            raise RuntimeError(
                f"{op}: a view of a leaf Variable that requires grad is being used in an "
                f"in-place operation. (view of shape {tuple(x.shape)} of a leaf of shape "
                f"{tuple(base.shape)})")
    if _grad_state.enabled:  # under no_grad PyTorch allows the write, and so do we
        _check_not_returned_as_is(x, op)
    if x._cuda_base is not None and x._cuda_base() is not None:
        raise RuntimeError(f"{op}: an in-place write into a view of a live CUDA tensor (view "
                           f"of shape {tuple(x.shape)}) is not supported: tracegrad's CUDA "
                           f"views are copies (NOTE (device views) in _cuda_tensor.py); write "
                           f"the result out of place, or into the base tensor")
    data = x._data
    if type(data) is np.ndarray:
        if overlap and op not in _OVERLAP_ALLOWED:
            check_no_overlap(data, op)
        if not data.flags.writeable:
            raise RuntimeError(f"{op}: the tensor's memory is read-only (shape "
                               f"{tuple(x.shape)}, e.g. made from a read-only NumPy array); "
                               f"clone() it before writing")


# NOTE (overlapping writes): PyTorch refuses a write into a tensor in which more than one
# element refers to one memory location when it can tell cheaply (a dim of size > 1 with
# stride 0: an expanded dim), except for fill_ and zero_, whose every element gets the
# same value (PyTorch 2.13: ``x.expand(3, 4).fill_(1)`` passes, ``.mul_(2)``, ``.copy_``
# and ``z[:, 0] = 1`` raise). With autograd PyTorch's fill_ passes too, but a backward
# through it then raises the same error, and so does ours (``_OVERLAPPING_WRITE``). A
# slice of an expanded tensor that holds each element once (``x.expand(3, 4)[0]``) is an
# ordinary view, and writes into it land in ``x``.
_OVERLAP_ALLOWED = frozenset({"fill_", "zero_"})


_OVERLAPPING_VIEW_OPS = frozenset({"expand", "_windows", "take_flat"})


def may_overlap(x: Tensor) -> bool:
    """Whether ``x`` is a view whose elements may share memory (an expand, unfold or
    as_strided in its chain of view ops)."""
    view = x._view
    return view is not None and any(
        getattr(op, "__name__", "") in _OVERLAPPING_VIEW_OPS for op, _ in view[1])


def overlaps(data: np.ndarray) -> bool:
    """Whether an expanded dim of ``data`` makes elements share memory."""
    return bool(data.size) and any(s == 0 and n > 1 for n, s in zip(data.shape, data.strides))


def check_no_overlap(data: np.ndarray, op: str) -> None:
    """Raise where an expanded dim of ``data`` makes elements share memory."""
    if overlaps(data):
        raise RuntimeError(f"{op}: unsupported operation: more than one element of the "
                           f"written-to tensor (shape {tuple(data.shape)}, strides "
                           f"{tuple(s // data.itemsize for s in data.strides)}: an expanded "
                           f"view) refers to a single memory location. Please clone() the "
                           f"tensor before performing the operation.")


def _check_not_returned_as_is(x: Tensor, op: str) -> None:
    """A module backward hook's identity returns its inputs as-is (NOTE (how) in
    nn/modules/backward_hooks.py); a write into one would bypass the hook, as PyTorch
    refuses."""
    for t in (x, x._base):
        node = None if t is None else t.grad_fn
        rule = None if node is None else node.prim
        if getattr(rule, "name", None) != "BackwardHookFunction":
            continue
        k = rule.index if hasattr(rule, "index") else node.ctx._direct_output
        raise RuntimeError(
            f"{op}: Output {k} of BackwardHookFunction is a view and is being modified "
            f"inplace. This view was created inside a custom Function (or because an input "
            f"was returned as-is) and the autograd logic to handle view+inplace would "
            f"override the custom backward associated with the custom Function, leading to "
            f"incorrect gradients. This behavior is forbidden. You can fix this by cloning "
            f"the output of the custom Function.")


def commit_inplace(x: Tensor, compute) -> Tensor:
    """Run ``compute(old)`` out of place and make ``x`` hold the result (same storage)."""
    if is_tracing() and x._view is not None and x._view[2] != x._version[0] \
            and type(x._data) is not np.ndarray:
        _catch_up_traced_view(x)
    old = history_alias(x)
    refs = sys.getrefcount(old)
    result = compute(old)
    if _grad_state.enabled and x._requires_grad and not result._requires_grad:
        # zero_/fill_/copy_ of a constant over a tensor in the graph: PyTorch keeps it in
        # the graph (ZeroBackward, FillBackward: a zero gradient), so its inputs get zero
        # gradients, not None (an optimizer's momentum and weight decay then still move
        # them). A where that always picks the result keeps that edge; old's value (maybe
        # NaN) never reaches the result. Before, x stopped requiring grad.
        result = M.where(False, old, result)
    if result._requires_grad and result.grad_fn is None:
        result = clone(result)  # x must not become a leaf: copy_(w) gets w's history
    if tuple(result.shape) != tuple(x.shape):
        raise RuntimeError(f"in-place operation: output with shape {tuple(x.shape)} doesn't "
                           f"match the broadcast shape {tuple(result.shape)}")
    if is_tracing():
        if result._data.dtype != x._data.dtype:
            # the write casts into x's dtype, as np.copyto below (before: the traced value
            # kept the result's dtype, so int x.add_(0.5) read on as 1.5, not 1)
            result = M.cast(result, x._data.dtype)
        if x._view is not None and _trace_state.state.tracer.may_write_view_of(x):
            written = _write_through_traced_view(x, result)
            if written is not None:
                return written
        rebind_data(x, result._data)  # tracing: rebinding is the functional form of the write
    else:
        if sys.getrefcount(old) > refs and _rule_reads(result.grad_fn, old):
            _keep_original(old)
        if may_overlap(x):
            # an element held twice, left alone by the op in one place and written in
            # the other, must keep the written value: only what changed is written back
            # (``u[idx] = 0`` on ``h.unfold(0, 3, 2)`` put a shared element's old value
            # back over the new, where PyTorch writes only the selection)
            new = np.asarray(result._data).astype(x._data.dtype, copy=False)
            changed = new != x._data
            if new.dtype.kind == "f":
                changed |= np.signbit(new) != np.signbit(x._data)   # (-0.0 == 0.0)
            np.copyto(x._data, new, where=changed)
        else:
            np.copyto(x._data, result._data, casting="unsafe")
        if result.grad_fn is not None and result.grad_fn.out_data is result._data:
            result.grad_fn.out_data = x._data
            result.grad_fn.out_counter = x._version
            result.grad_fn.out_version = x._version[0] + 1
    x._version[0] += 1
    if result._requires_grad or x._requires_grad:
        _tensor.histories_rewritten = True  # NOTE (views) in views.py: views may be behind
    view = x._view
    if view is None:
        # NOTE: views of x now have an older version: they catch up when next used
        was = x._requires_grad
        x.grad_fn = result.grad_fn
        x._requires_grad = result._requires_grad
        if result._requires_grad and not was and x._views is not None:
            wake_views(x)
    else:
        root = view[0]
        if result._requires_grad or root._requires_grad:
            _rebase_through_view(x, root, result)
        x._view = (root, view[1], x._version[0])
    return x


# NOTE (original self): ``y.mul_(w)`` with ``w`` requiring grad records MUL on an alias of
# ``y``'s old value, and w's gradient reads that value after the write has replaced it.
# PyTorch saves a copy of the original self for such rules; so do we, only when a rule
# recorded by ``compute`` holds the alias (its refcount grew) and reads it.
_READER_SEARCH = 32  # nodes searched for a reader before copying anyway (safe side)


def _rule_reads(node, alias: Tensor) -> bool:
    stop = alias.grad_fn
    todo, seen = [node], 0
    while todo:
        node = todo.pop()
        if node is None or node is stop or not hasattr(node, "edges"):
            continue
        seen += 1
        if seen > _READER_SEARCH:
            return True
        prim = getattr(node, "prim", None)
        reads = prim.needs(node.needs_grad) if prim is not None else range(len(node.inputs))
        if any(node.inputs[i] is alias for i in reads):
            return True
        todo.extend(node.edges)
    return False


def _keep_original(alias: Tensor) -> None:
    """Give ``alias`` (held by the recorded rules) a copy of the value about to be
    overwritten, with a version counter of its own."""
    alias._data = alias._data.copy()
    alias._version = [alias._version[0]]


# NOTE (view writes in a trace): ``h[:, :3] += v``, ``h.view(-1).mul_(2)`` on a tensor the
# trace computed: eagerly the write lands in the root's storage; a trace has no storage, so
# the root becomes "the old root with the view's positions replaced" (INDEX_PUT, as
# _rebase_through_view records for autograd) and the view holds the written values. The
# view stays a view at the root's new version; any other view of the root is then behind
# and the tracer refuses to read it (the call runs eagerly), as before.
def _catch_up_traced_view(view: Tensor) -> None:
    """``view``'s root was written (through another alias) since ``view``'s value was
    traced: eagerly the view shows that write, so its traced value is the view ops
    replayed on the root's current one. Found by fuzzing two writes: ``v = h[3:]``,
    ``h.add_(w)``, ``v.mul_(-3)`` compiled multiplied the value from before the add."""
    root, chain, _ = view._view
    view._data = replay_view_ops(chain, history_alias(root))._data


def _write_through_traced_view(view: Tensor, result: Tensor) -> Tensor | None:
    """The write, or None where the view holds an element more than once (NOTE
    (overlapping writes)): the trace refuses it, and the eager call writes or raises."""
    root, chain, _ = view._view
    with _trace_state.untraced_values():   # the positions are NumPy's, not graph values
        positions = storage_positions(view, root)
    flat = np.ravel_multi_index(positions, root._data.shape) if positions else np.zeros(1)
    if np.unique(flat).size != flat.size:
        return None
    new_root = apply(PRIM_INDEX_PUT, (history_alias(root), result)
                     + tuple(_wrap(np.ascontiguousarray(p)) for p in positions),
                     {"spec": (TENSOR,) * len(positions), "accumulate": False})
    _trace_state.state.tracer.note_view_write(view)
    view._data = result._data
    rebind_data(root, new_root._data)
    if _grad_state.enabled:   # under no_grad a parameter's row zeroed stays a leaf
        root.grad_fn, root._requires_grad = new_root.grad_fn, new_root._requires_grad
        view.grad_fn, view._requires_grad = result.grad_fn, result._requires_grad
    view._version[0] += 1   # shared with the root: its other views are now behind
    view._view = (root, chain, view._version[0])
    return view


def _refuse_overlapping_backward(g, node):
    raise RuntimeError("backward through an in-place write into an expanded view (shape "
                       f"{tuple(node.inputs[1].shape)}): unsupported operation: more than one "
                       "element of the written-to tensor refers to a single memory location. "
                       "Please clone() the tensor before performing the operation.")


# the root's history after a fill_ into an expanded view: NOTE (overlapping writes)
_OVERLAPPING_WRITE = dataclasses.replace(PRIM_INDEX_PUT, name="index_put_overlapping",
                                         vjp=_refuse_overlapping_backward)


def _each_position_once(result: Tensor, positions: tuple, shape: tuple) -> tuple:
    """``result`` and the root ``positions`` it is written to, each position once (its
    last element in C order, as the write-back into storage left it): an unfold's shared
    elements counted their gradient once per window (``u.masked_fill_`` on
    ``h.unfold(0, 3, 2)`` gave h's shared elements twice PyTorch's gradient)."""
    flat = np.ravel_multi_index(positions, shape).reshape(-1)
    last = flat.size - 1 - np.unique(flat[::-1], return_index=True)[1]
    if last.size == flat.size:
        return result, positions
    keep = np.sort(last)
    values = F.index(F.reshape(result, (flat.size,)), (_wrap(keep),), (TENSOR,))
    return values, tuple(p.reshape(-1)[keep] for p in positions)


def _rebase_through_view(view: Tensor, root: Tensor, result: Tensor) -> None:
    """The root's new history after ``view`` was overwritten with ``result``: the old root
    with the view's positions replaced (PyTorch's CopySlices). The node is built without
    running it: the storage already holds its value."""
    if result._data.dtype != root._data.dtype:
        result = M.cast(result, root._data.dtype)
    positions = storage_positions(view, root)
    data = view._data
    if positions and may_overlap(view) and not (type(data) is np.ndarray and overlaps(data)):
        result, positions = _each_position_once(result, positions, tuple(root._data.shape))
    positions = tuple(_wrap(p) for p in positions)
    old = history_alias(root)
    old._version = [old._version[0]]  # INDEX_PUT's rule never reads the old root's value
    prim = _OVERLAPPING_WRITE if type(data) is np.ndarray and overlaps(data) else PRIM_INDEX_PUT
    node = Node(prim, (old, result) + positions,
                {"spec": (TENSOR,) * len(positions), "accumulate": False}, root)
    was = root._requires_grad
    root.grad_fn = node
    root._requires_grad = True
    if not was and root._views is not None:
        wake_views(root)
    replayed = replay_view_ops(view._view[1], history_alias(root))  # its history: via the root
    view.grad_fn = replayed.grad_fn
    view._requires_grad = True
