"""In-place operations (``add_``, ``x[i] = v``, ``+=``, ...).

Without autograd they write through NumPy (so views see the change) and bump the
version counter (shared by a base and all its views). With autograd, the op is recorded
out of place on an alias of the old tensor, the result is written back into the same
storage, and the tensor takes the new ``grad_fn``: later backward passes see the new
value, and any node that saved the old value (through any alias) notices the bumped
version and refuses to compute a wrong gradient. A write into a view rewrites its base's
history too (NOTE (views) in views.py). The write itself is ``writes.commit_inplace``.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import _dtype
from .._dispatch import apply, is_tracing, made_from_sizes
from .._primitives import PRIMITIVES as P
from .._random import numpy_generator
from .._tensor import Tensor, _wrap
from ..autograd.grad_mode import state as _grad_state
from ..codegen.ops import Op
from . import division as D
from . import math as M
from .creation import tensor
from .dtype_names import scalar_type_name
from .indexing import index_add, index_put, masked_fill, scatter, scatter_add
from .shape import clone, expand
from .writes import check_inplace, commit_inplace  # noqa: F401  (nn imports them from here)
from .writes import overlaps


def _needs_graph(x: Tensor, *others) -> bool:
    if is_tracing():
        return True
    if not _grad_state.enabled:
        return False
    return x._requires_grad or any(isinstance(o, Tensor) and o._requires_grad for o in others)


def refuse_uncastable(op: str, result_dtype: np.dtype, x: Tensor) -> None:
    """PyTorch's check before an in-place write: a result x's dtype cannot hold (a float
    into an integer tensor, anything but bool into a bool one) raises instead of being
    truncated (``int_tensor *= 2.5`` used to give ``[10, 12]`` for ``[4, 5]``)."""
    if not _dtype.can_cast(np.dtype(result_dtype), x._data.dtype):
        raise RuntimeError(f"{op}: result type {scalar_type_name(result_dtype)} can't be cast "
                           f"to the desired output type {scalar_type_name(x._data.dtype)} "
                           f"(writing in place into a tensor of shape {tuple(x.shape)})")


def result_checked(op: str, fn):
    """``fn`` (the out-of-place op), refusing a result ``old``'s dtype cannot hold."""
    def checked(old: Tensor, *args, **kwargs) -> Tensor:
        out = fn(old, *args, **kwargs)
        refuse_uncastable(op, out._data.dtype, old)
        return out
    return checked


def _binary_result_dtype(x: Tensor, other) -> np.dtype:
    """The dtype ``x <op> other`` promotes to (M.promote's rule, without computing it)."""
    if isinstance(other, Tensor):
        return _dtype.result_type(x._data.dtype, x._data.ndim, other._data.dtype,
                                  other._data.ndim)
    return _dtype.scalar_result_type(x._data.dtype, M._scalar(other))


def _refuse_uncastable_with(op: str, x: Tensor, other) -> None:
    """``refuse_uncastable`` of ``x <op> other``; a float ``x`` holds every result (no
    promotion needed: ``_dtype.can_cast``), the common case of optimizer updates."""
    if x._data.dtype.kind != "f":
        refuse_uncastable(op, _binary_result_dtype(x, other), x)


def _ufunc_inplace(x: Tensor, ufunc, other, op: str) -> Tensor:
    check_inplace(x, op)
    _refuse_uncastable_with(op, x, other)
    if _needs_graph(x, other):
        fn = {np.add: M.add, np.subtract: M.sub, np.multiply: M.mul, np.true_divide: D.div}[ufunc]
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
    return _ufunc_inplace(x, np.add, M.times_alpha(x, other, alpha, "add_"), "add_")


def sub_(x: Tensor, other, *args, alpha=1) -> Tensor:
    if args:
        alpha, other = other, args[0]
    M.check_no_bool_sub(x, other)
    return _ufunc_inplace(x, np.subtract, M.times_alpha(x, other, alpha, "sub_"), "sub_")


def mul_(x: Tensor, other) -> Tensor:
    return _ufunc_inplace(x, np.multiply, other, "mul_")


def div_(x: Tensor, other, *, rounding_mode=None) -> Tensor:
    if rounding_mode is not None:   # (floor, trunc: an integer x stays integral, PyTorch's)
        check_inplace(x, "div_")
        return commit_inplace(x, lambda old: D.div(old, other, rounding_mode=rounding_mode))
    if x._data.dtype.kind != "f":  # true division of integers gives the default float
        refuse_uncastable("div_", _dtype.get_default_dtype().np, x)
    return _ufunc_inplace(x, np.true_divide, other, "div_")


def _generic_inplace(name: str, fn):
    def method(x: Tensor, *args, **kwargs) -> Tensor:
        check_inplace(x, name)
        return commit_inplace(x, lambda old: fn(old, *args, **kwargs))
    method.__name__ = name
    return method


def elementwise_inplace(name: str, fn):
    """An arithmetic op written back in place: its result must fit x's dtype."""
    return _generic_inplace(name, result_checked(name, fn))


def _set_values(x: Tensor, values: np.ndarray, op: str) -> Tensor:
    """Overwrite x with fresh values that have no history (fill_, zero_, uniform_...)."""
    check_inplace(x, op)
    if _needs_graph(x):
        # (its shape may hold a compile guard trace's symbolic sizes: NOTE (tensors made
        # from a size) in compiler/made_sizes.py)
        const = made_from_sizes(x._data.shape, _broadcast_values, x._data.shape, values,
                                x._data.dtype)
        # The new value does not depend on the old one: no gradient flows back through it.
        return commit_inplace(x, lambda old: clone(const))
    x._data[...] = values
    x._version[0] += 1
    return x


def _broadcast_values(shape: tuple, values, dtype) -> Tensor:
    return _wrap(np.broadcast_to(np.asarray(values, dtype=dtype), shape))


def zero_(x: Tensor) -> Tensor:
    return _set_values(x, 0, "zero_")


def fill_(x: Tensor, value) -> Tensor:
    if isinstance(value, Tensor):
        if value._data.ndim != 0:
            raise RuntimeError(f"fill_: only supports a 0-dimension value tensor, got one with "
                               f"{value._data.ndim} dimensions (shape {tuple(value.shape)})")
        # a copy, as PyTorch's FillBackward: value's gradient is the sum of x's (item()
        # dropped it, and stopped a compile trace)
        return copy_(x, value)
    return _set_values(x, value, "fill_")


def _copied(x: Tensor, src: Tensor) -> Tensor:
    value = M.cast(expand(src, tuple(x.shape)), x._data.dtype)
    if value is src and is_tracing() and _holds_data(src):
        # NOTE: a source of x's shape and dtype comes back as itself; rebinding x to a
        # tensor from outside the trace would make x share its storage for good and
        # record no write for the compiled code to repeat. ``* 1`` is a traced value
        # (exact: NaN, inf and -0.0 stay as they are).
        value = M.cast(M.mul(src, 1), x._data.dtype)
    return value


def _copied_over(old: Tensor, x: Tensor, src: Tensor) -> Tensor:
    """``src`` as ``x``'s new value; where ``x`` was in the graph, it keeps its edge and
    gets a zero gradient, not None (PyTorch's CopyBackwards: found by fuzz6, ``h.copy_(w)``
    with both requiring grad left ``h``'s inputs without a gradient)."""
    value = _copied(x, src)
    if old._requires_grad and _grad_state.enabled and value._requires_grad:
        value = M.where(False, old, value)
    return value


def _holds_data(t: Tensor) -> bool:
    """``t`` is a concrete tensor (NumPy or device storage), not a traced value."""
    return isinstance(t._data, np.ndarray) or getattr(t._data, "on_device", False)


def copy_(x: Tensor, src, non_blocking: bool = False) -> Tensor:
    check_inplace(x, "copy_")
    if not isinstance(src, Tensor):
        src = M.as_tensor_operand(src, "copy_")
    if _needs_graph(x, src):
        return commit_inplace(x, lambda old: _copied_over(old, x, src))
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
    for bound in (min, max):
        if bound is not None:
            _refuse_uncastable_with("clamp_", x, bound)
    if not _needs_graph(x, min, max) and not isinstance(min, Tensor) and not isinstance(max, Tensor):
        np.clip(x._data, min, max, out=x._data)
        x._version[0] += 1
        return x
    return commit_inplace(x, lambda old: M.clamp(old, min, max))


INPLACE_METHODS = {
    "add_": add_, "sub_": sub_, "mul_": mul_, "div_": div_, "zero_": zero_, "fill_": fill_,
    "copy_": copy_, "uniform_": uniform_, "normal_": normal_, "bernoulli_": bernoulli_,
    "random_": random_, "exponential_": exponential_, "clamp_": clamp_, "clip_": clamp_,
    "pow_": elementwise_inplace("pow_", M.pow),
    "neg_": elementwise_inplace("neg_", M.neg),
    "exp_": elementwise_inplace("exp_", M.exp),
    "log_": elementwise_inplace("log_", M.log),
    "sqrt_": elementwise_inplace("sqrt_", M.sqrt),
    "abs_": elementwise_inplace("abs_", M.abs),
    "sigmoid_": elementwise_inplace("sigmoid_", M.sigmoid),
    "tanh_": elementwise_inplace("tanh_", M.tanh),
    "relu_": elementwise_inplace("relu_", M.relu),
    "floor_": elementwise_inplace("floor_", M.floor),
    "ceil_": elementwise_inplace("ceil_", M.ceil),
    "round_": elementwise_inplace("round_", M.round),
    "reciprocal_": elementwise_inplace("reciprocal_", M.reciprocal),
    "sign_": elementwise_inplace("sign_", M.sign),
    "lerp_": elementwise_inplace("lerp_", M.lerp),
    "true_divide_": div_,
}


def _addcmul(x, t1, t2, *args, value=1):
    if args:  # legacy addcmul(value, t1, t2)
        value, t1, t2 = t1, t2, args[0]
    return M.add(x, M.mul(M.mul(t1, t2), value))


def _addcdiv(x, t1, t2, *args, value=1):
    if args:
        value, t1, t2 = t1, t2, args[0]
    return M.add(x, M.mul(D.div(t1, t2), value))


INPLACE_METHODS["addcmul_"] = elementwise_inplace("addcmul_", _addcmul)
INPLACE_METHODS["addcdiv_"] = elementwise_inplace("addcdiv_", _addcdiv)
OUT_OF_PLACE_EXTRA = {"addcmul": _addcmul, "addcdiv": _addcdiv}


def masked_fill_(x: Tensor, mask, value) -> Tensor:
    # PyTorch 2.13 still writes into an expanded tensor here, with a deprecation warning:
    # every masked element gets the same value, so a memory location shared by several
    # elements gets it where any of them is masked; commit_inplace writes back only the
    # changed elements of an overlapping view, which is exactly that (NOTE (overlapping
    # writes) in writes.py)
    expanded = type(x._data) is np.ndarray and overlaps(x._data)
    if expanded:
        warnings.warn("Use of masked_fill_ on expanded tensors is deprecated. Please clone() "
                      "the tensor before performing this operation. This also applies to "
                      "advanced indexing e.g. tensor[mask] = scalar", UserWarning, stacklevel=2)
    check_inplace(x, "masked_fill_", overlap=not expanded)
    return commit_inplace(x, lambda old: masked_fill(old, mask, value))


def _index_fill(x, dim, index, value):
    key = (slice(None),) * (dim % max(x.ndim, 1)) + (index,)
    vals = value if isinstance(value, Tensor) else tensor(value, dtype=x.dtype)
    return index_put(x, key, vals)


INPLACE_METHODS["masked_fill_"] = masked_fill_
INPLACE_METHODS["index_fill_"] = _generic_inplace("index_fill_", _index_fill)


def _scatter_(x, dim, index, src=None, value=None, reduce=None):
    return scatter(x, dim, index, src, value, reduce)


def _scatter_add_(x, dim, index, src):
    return scatter_add(x, dim, index, src)


def _index_add_(x, dim, index, source, alpha=1):
    return index_add(x, dim, index, source, alpha)


INPLACE_METHODS["scatter_"] = _generic_inplace("scatter_", _scatter_)
INPLACE_METHODS["scatter_add_"] = _generic_inplace("scatter_add_", _scatter_add_)
INPLACE_METHODS["index_add_"] = _generic_inplace("index_add_", _index_add_)
INPLACE_METHODS["index_put_"] = _generic_inplace("index_put_", index_put)
