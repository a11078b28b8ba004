"""In-place operations (``add_``, ``x[i] = v``, ``+=``, ...).

Without autograd they write through NumPy (so views see the change) and bump the
version counter (shared by a base and all its views). With autograd, the op is recorded
out of place on an alias of the old tensor, the result is written back into the same
storage, and the tensor takes the new ``grad_fn``: later backward passes see the new
value, and any node that saved the old value (through any alias) notices the bumped
version and refuses to compute a wrong gradient. A write into a view rewrites its base's
history too (NOTE (views) in views.py).
"""
from __future__ import annotations

import sys

import numpy as np

from .. import _tensor
from .._dispatch import apply, is_tracing, rebind_data
from .._primitives import PRIMITIVES as P
from .._primitives.linalg_index import PRIM_INDEX_PUT, TENSOR
from .._random import numpy_generator
from .._tensor import Tensor, _wrap, replay_view_ops, wake_views
from ..autograd.grad_mode import state as _grad_state
from ..autograd.node import Node
from ..codegen.ops import Op
from . import math as M
from .shape import clone, expand
from .views import history_alias, storage_positions


def check_inplace(x: Tensor, op: str) -> None:
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
    data = x._data
    if type(data) is np.ndarray and not data.flags.writeable:
        raise RuntimeError(f"{op}: unsupported operation: more than one element of the "
                           f"written-to tensor (shape {tuple(x.shape)}, an expanded view) "
                           f"refers to a single memory location. Please clone() the tensor "
                           f"before performing the operation.")


def commit_inplace(x: Tensor, compute) -> Tensor:
    """Run ``compute(old)`` out of place and make ``x`` hold the result (same storage)."""
    old = history_alias(x)
    refs = sys.getrefcount(old)
    result = compute(old)
    if result._requires_grad and result.grad_fn is None:
        result = clone(result)  # x must not become a leaf: copy_(w) gets w's history
    if tuple(result.shape) != tuple(x.shape):
        raise RuntimeError(f"in-place operation: output with shape {tuple(x.shape)} doesn't "
                           f"match the broadcast shape {tuple(result.shape)}")
    if is_tracing():
        rebind_data(x, result._data)  # tracing: rebinding is the functional form of the write
    else:
        if sys.getrefcount(old) > refs and _rule_reads(result.grad_fn, old):
            _keep_original(old)
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


def _rebase_through_view(view: Tensor, root: Tensor, result: Tensor) -> None:
    """The root's new history after ``view`` was overwritten with ``result``: the old root
    with the view's positions replaced (PyTorch's CopySlices). The node is built without
    running it: the storage already holds its value."""
    if result._data.dtype != root._data.dtype:
        result = M.cast(result, root._data.dtype)
    positions = tuple(_wrap(p) for p in storage_positions(view, root))
    old = history_alias(root)
    old._version = [old._version[0]]  # INDEX_PUT's rule never reads the old root's value
    node = Node(PRIM_INDEX_PUT, (old, result) + positions,
                {"spec": (TENSOR,) * len(positions), "accumulate": False}, root)
    was = root._requires_grad
    root.grad_fn = node
    root._requires_grad = True
    if not was and root._views is not None:
        wake_views(root)
    replayed = replay_view_ops(view._view[1], history_alias(root))  # its history: via the root
    view.grad_fn = replayed.grad_fn
    view._requires_grad = True


def _needs_graph(x: Tensor, *others) -> bool:
    if is_tracing():
        return True
    if not _grad_state.enabled:
        return False
    return x._requires_grad or any(isinstance(o, Tensor) and o._requires_grad for o in others)


def _ufunc_inplace(x: Tensor, ufunc, other, op: str) -> Tensor:
    check_inplace(x, op)
    if _needs_graph(x, other):
        fn = {np.add: M.add, np.subtract: M.sub, np.multiply: M.mul, np.true_divide: M.div}[ufunc]
        return commit_inplace(x, lambda old: fn(old, other))
    value = other._data if isinstance(other, Tensor) else other
    try:
        ufunc(x._data, value, out=x._data, casting="unsafe")
    except ValueError:
        raise RuntimeError(f"{op}: cannot broadcast an operand of shape "
                           f"{tuple(np.shape(value))} into a tensor of shape {tuple(x.shape)}") from None
    x._version[0] += 1
    return x


def add_(x: Tensor, other, *args, alpha=1) -> Tensor:
    if args:  # PyTorch 0.3: add_(value, other) means x += value * other
        alpha, other = other, args[0]
    if alpha != 1:
        other = M.mul(other, alpha) if isinstance(other, Tensor) else other * alpha
    return _ufunc_inplace(x, np.add, other, "add_")


def sub_(x: Tensor, other, *args, alpha=1) -> Tensor:
    if args:
        alpha, other = other, args[0]
    if alpha != 1:
        other = M.mul(other, alpha) if isinstance(other, Tensor) else other * alpha
    return _ufunc_inplace(x, np.subtract, other, "sub_")


def mul_(x: Tensor, other) -> Tensor:
    return _ufunc_inplace(x, np.multiply, other, "mul_")


def div_(x: Tensor, other) -> Tensor:
    if x._data.dtype.kind != "f":
        raise RuntimeError(f"div_: result type Float can't be cast to the desired output type "
                           f"{x.dtype}")
    return _ufunc_inplace(x, np.true_divide, other, "div_")


def _generic_inplace(name: str, fn):
    def method(x: Tensor, *args, **kwargs) -> Tensor:
        check_inplace(x, name)
        return commit_inplace(x, lambda old: fn(old, *args, **kwargs))
    method.__name__ = name
    return method


def _set_values(x: Tensor, values: np.ndarray, op: str) -> Tensor:
    """Overwrite x with fresh values that have no history (fill_, zero_, uniform_...)."""
    check_inplace(x, op)
    if _needs_graph(x):
        const = _wrap(np.broadcast_to(np.asarray(values, dtype=x._data.dtype), x._data.shape))
        # The new value does not depend on the old one: no gradient flows back through it.
        return commit_inplace(x, lambda old: clone(const))
    x._data[...] = values
    x._version[0] += 1
    return x


def zero_(x: Tensor) -> Tensor:
    return _set_values(x, 0, "zero_")


def fill_(x: Tensor, value) -> Tensor:
    if isinstance(value, Tensor):
        value = value.item()
    return _set_values(x, value, "fill_")


def copy_(x: Tensor, src, non_blocking: bool = False) -> Tensor:
    check_inplace(x, "copy_")
    if not isinstance(src, Tensor):
        src = M.as_tensor_operand(src, "copy_")
    if _needs_graph(x, src):
        return commit_inplace(x, lambda old: M.cast(expand(src, tuple(x.shape)), x._data.dtype))
    try:
        np.copyto(x._data, np.asarray(src._data), casting="unsafe")
    except ValueError:
        raise RuntimeError(f"copy_: source of shape {tuple(src.shape)} cannot be broadcast to "
                           f"the destination shape {tuple(x.shape)}") from None
    x._version[0] += 1
    return x


def _traced_random(x: Tensor, generator, op: Op, scale: float, shift: float, name: str):
    """Under a compile trace, overwrite ``x`` with ``RAND``/``RANDN * scale + shift`` so the
    compiled code draws fresh numbers at every call (an eager draw here would be baked in
    as a constant). Returns None where the eager draw is right: no trace, a given
    ``generator`` (compiled code reads only the process-wide one) or a non-float ``x``."""
    if not is_tracing() or generator is not None or x._data.dtype.kind != "f":
        return None
    check_inplace(x, name)
    noise = apply(P[op], (), {"shape": tuple(x.shape), "dtype": x._data.dtype})
    # The new value does not depend on the old one: no gradient flows back through it.
    return commit_inplace(x, lambda old: M.add(M.mul(noise, scale), shift))


def uniform_(x: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """Fill ``x`` with numbers drawn uniformly from ``[a, b)``.

    >>> import tracegrad as torch
    >>> bool(((t := torch.empty(3).uniform_(2, 3)) >= 2).all() and (t < 3).all())
    True
    """
    traced = _traced_random(x, generator, Op.RAND, b - a, a, "uniform_")
    if traced is not None:
        return traced
    vals = numpy_generator(generator).uniform(a, b, size=x._data.shape)
    return _set_values(x, vals, "uniform_")


def normal_(x: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """Fill ``x`` with numbers drawn from the normal distribution N(mean, std**2).

    >>> import tracegrad as torch
    >>> torch.empty(2, 3).normal_(0, 1).shape
    torch.Size([2, 3])
    """
    traced = _traced_random(x, generator, Op.RANDN, std, mean, "normal_")
    if traced is not None:
        return traced
    vals = numpy_generator(generator).normal(mean, std, size=x._data.shape)
    return _set_values(x, vals, "normal_")


def bernoulli_(x: Tensor, p=0.5, generator=None) -> Tensor:
    vals = numpy_generator(generator).random(size=x._data.shape) < p
    return _set_values(x, vals, "bernoulli_")


def random_(x: Tensor, low=0, high=None, generator=None) -> Tensor:
    if high is None:
        low, high = 0, low if low else 2**24
    return _set_values(x, numpy_generator(generator).integers(low, high, x._data.shape), "random_")


def exponential_(x: Tensor, lambd=1.0, generator=None) -> Tensor:
    return _set_values(x, numpy_generator(generator).exponential(1 / lambd, x._data.shape),
                       "exponential_")


def clamp_(x: Tensor, min=None, max=None) -> Tensor:
    check_inplace(x, "clamp_")
    if not _needs_graph(x, min, max) and not isinstance(min, Tensor) and not isinstance(max, Tensor):
        np.clip(x._data, min, max, out=x._data)
        x._version[0] += 1
        return x
    return commit_inplace(x, lambda old: M.clamp(old, min, max))


INPLACE_METHODS = {
    "add_": add_, "sub_": sub_, "mul_": mul_, "div_": div_, "zero_": zero_, "fill_": fill_,
    "copy_": copy_, "uniform_": uniform_, "normal_": normal_, "bernoulli_": bernoulli_,
    "random_": random_, "exponential_": exponential_, "clamp_": clamp_, "clip_": clamp_,
    "pow_": _generic_inplace("pow_", M.pow), "neg_": _generic_inplace("neg_", M.neg),
    "exp_": _generic_inplace("exp_", M.exp), "log_": _generic_inplace("log_", M.log),
    "sqrt_": _generic_inplace("sqrt_", M.sqrt), "abs_": _generic_inplace("abs_", M.abs),
    "sigmoid_": _generic_inplace("sigmoid_", M.sigmoid),
    "tanh_": _generic_inplace("tanh_", M.tanh), "relu_": _generic_inplace("relu_", M.relu),
    "floor_": _generic_inplace("floor_", M.floor), "ceil_": _generic_inplace("ceil_", M.ceil),
    "round_": _generic_inplace("round_", M.round),
    "reciprocal_": _generic_inplace("reciprocal_", M.reciprocal),
    "sign_": _generic_inplace("sign_", M.sign),
    "lerp_": _generic_inplace("lerp_", M.lerp),
    "true_divide_": div_,
}


def _addcmul(x, t1, t2, *args, value=1):
    if args:  # legacy addcmul(value, t1, t2)
        value, t1, t2 = t1, t2, args[0]
    return M.add(x, M.mul(M.mul(t1, t2), value))


def _addcdiv(x, t1, t2, *args, value=1):
    if args:
        value, t1, t2 = t1, t2, args[0]
    return M.add(x, M.mul(M.div(t1, t2), value))


INPLACE_METHODS["addcmul_"] = _generic_inplace("addcmul_", _addcmul)
INPLACE_METHODS["addcdiv_"] = _generic_inplace("addcdiv_", _addcdiv)
OUT_OF_PLACE_EXTRA = {"addcmul": _addcmul, "addcdiv": _addcdiv}


def _masked_fill_(x, mask, value):
    from .indexing import masked_fill
    return masked_fill(x, mask, value)


def _index_fill(x, dim, index, value):
    from .creation import tensor
    from .indexing import index_put
    key = (slice(None),) * (dim % max(x.ndim, 1)) + (index,)
    vals = value if isinstance(value, Tensor) else tensor(value, dtype=x.dtype)
    return index_put(x, key, vals)


INPLACE_METHODS["masked_fill_"] = _generic_inplace("masked_fill_", _masked_fill_)
INPLACE_METHODS["index_fill_"] = _generic_inplace("index_fill_", _index_fill)


def _scatter_(x, dim, index, src=None, value=None, reduce=None):
    from .indexing import scatter
    return scatter(x, dim, index, src, value, reduce)


def _scatter_add_(x, dim, index, src):
    from .indexing import scatter_add
    return scatter_add(x, dim, index, src)


def _index_add_(x, dim, index, source, alpha=1):
    from .indexing import index_add
    return index_add(x, dim, index, source, alpha)


INPLACE_METHODS["scatter_"] = _generic_inplace("scatter_", _scatter_)
INPLACE_METHODS["scatter_add_"] = _generic_inplace("scatter_add_", _scatter_add_)
INPLACE_METHODS["index_add_"] = _generic_inplace("index_add_", _index_add_)
