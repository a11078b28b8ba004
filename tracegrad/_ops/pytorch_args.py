"""PyTorch's arguments on tracegrad's public functions and Tensor methods.

``adapt(fn, "torch.add")`` wraps a public function so that

- PyTorch's keyword names reach it (``torch.matmul(input=a, other=b)`` calls
  ``matmul(a, b)``): the names come from ``pytorch_signatures`` (read from PyTorch's own
  docstrings), matched by position to the function's parameters;
- ``out=`` works wherever PyTorch has it: the result is written into ``out`` with
  PyTorch's rules (``write_out``);
- a call that does not fit raises ``UnsupportedArgumentError`` naming the function, the
  argument and whether PyTorch accepts it (a missing feature) or not (a typo), never a
  bare "unexpected keyword argument".

A function whose parameters already cover PyTorch's is left unwrapped (Python's error for
a typo is clear). A wrapper costs one Python call (~0.1-0.4 us measured here) without
keywords and ~1 us with them (forwarding ``**kwargs``); the error path runs only on an
error.
"""
from __future__ import annotations

import functools
import inspect
import warnings

import numpy as np

from .._dtype import can_cast
from .._tensor import Tensor
from ..autograd.grad_mode import state as _grad_state
from .dtype_names import scalar_type_name
from .._numpy_aliases import alias_renames, torch_name_for_alias, with_own_names
from .pytorch_signatures import SIGNATURES


# Hot Tensor methods (and functions) that stay unwrapped although they lack some of NumPy's names PyTorch
# accepts (NOTE (numpy aliases cost nothing) in _numpy_aliases.py): a wrapper's frame is
# 5-10% of ``x.unsqueeze(0)``. squeeze/unsqueeze/chunk/unbind (and max/min, reductions)
# take ``axis`` themselves; the others, and max/min's ``x2`` (NumPy's name for ``other``),
# are refused with Python's own TypeError: even a keyword-only ``axis`` made ``x.size(1)``
# (~0.25 us) ~15% slower.
KEPT_UNWRAPPED_FOR_SPEED = frozenset(
    "Tensor." + name for name in ("size", "stride", "squeeze", "unsqueeze", "chunk", "unbind",
                                  "select", "gather", "index_select", "add_", "sub_",
                                  "view_as", "expand_as", "reshape_as", "max", "min")
) | {"torch.reshape", "torch.permute"}


class UnsupportedArgumentError(TypeError, NotImplementedError):
    """A PyTorch argument tracegrad does not support yet, or an argument PyTorch does not
    accept either. A TypeError, as Python's own error for a bad argument."""


def _torch_names(key: str) -> tuple[list[str], set[str]]:
    """The positional names of the longest overload, and every name any overload takes."""
    sigs = SIGNATURES.get(key, ())
    positional = max((list(p) for p, _ in sigs), key=len, default=[])
    every = {n for p, k in sigs for n in p + k}
    return positional, every


def _own_positional(fn, is_method: bool) -> tuple[list[str], set[str], bool]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return [], set(), True, False
    if is_method and params:
        params = params[1:]
    positional = [p.name for p in params
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = {p.name for p in params if p.kind is not p.VAR_POSITIONAL}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
    takes_rest = any(p.kind is p.VAR_POSITIONAL for p in params)
    return positional, names, takes_any, takes_rest


def _describe(key: str) -> str:
    sigs = SIGNATURES.get(key)
    if not sigs:
        return ""
    pos, kw = max(sigs, key=lambda s: len(s[0]) + len(s[1]))
    inside = ", ".join(pos) + (", *, " + ", ".join(kw) if kw else "")
    return f"{key}({inside})"


def _argument_error(key: str, fn, args, kwargs, own_names, torch_names, error) -> Exception:
    shown = f"tracegrad.{key.split('.', 1)[1]}" if key.startswith("torch.") else key
    unknown = [k for k in kwargs if k not in own_names]
    for name in unknown:
        if name in torch_names:
            return UnsupportedArgumentError(
                f"{shown}(): tracegrad does not support the argument '{name}' yet (PyTorch's "
                f"{_describe(key)} accepts it)")
        numpy_for = torch_name_for_alias(name, torch_names)
        if numpy_for is not None:
            return UnsupportedArgumentError(
                f"{shown}(): tracegrad does not support the argument '{name}' yet (PyTorch's "
                f"{_describe(key)} accepts it as NumPy's name for '{numpy_for}')")
        return UnsupportedArgumentError(
            f"{shown}(): got an unexpected keyword argument '{name}'; PyTorch's "
            f"{_describe(key) or key} does not accept it either")
    return UnsupportedArgumentError(f"{shown}(): {error} (PyTorch's signature: "
                                    f"{_describe(key) or 'not known'})")


def _binds(fn, args, kwargs) -> bool:
    try:
        inspect.signature(fn).bind(*args, **kwargs)
        return True
    except TypeError:
        return False
    except ValueError:
        return True


def adapt(fn, key: str, is_method: bool = False):
    """``fn`` behind PyTorch's argument names and ``out=`` for ``key`` ("torch.add",
    "Tensor.add"); ``fn`` itself where there is nothing to adapt."""
    torch_positional, torch_names = _torch_names(key)
    own_positional, own_names, takes_any, takes_rest = _own_positional(fn, is_method)
    if takes_any:
        return fn  # a **kwargs function checks its own arguments
    offset = 1 if is_method else 0
    if takes_rest:
        # ``view(*shape)``, ``zeros(*size)``: PyTorch's positional parameters arrive
        # positionally; count them as covered (keyword use of them stays unsupported)
        own_names = own_names | {n for p, _ in SIGNATURES.get(key, ()) for n in p}
        rename = {}
    else:
        rename = {t: o for t, o in zip(torch_positional, own_positional)
                  if t != o and t not in own_names}
    handles_out = "out" in torch_names and "out" not in own_names and not is_method
    lacking = torch_names - own_names - set(rename) - ({"out"} if handles_out else set())
    numpy_renames = alias_renames(torch_names, own_names, rename)
    if not rename and not handles_out and not lacking and (
            not numpy_renames or key in KEPT_UNWRAPPED_FOR_SPEED):
        # Nothing of PyTorch's is missing: Python's own error for a typo is clear, and the
        # function keeps its speed (a wrapper costs 0.1-1 us a call)
        return fn

    def refuse(args, kwargs, error):
        if _binds(fn, args, kwargs):
            raise error
        raise _argument_error(key, fn, args[offset:], kwargs, own_names, torch_names,
                              error) from None

    renamed = frozenset(rename)
    # NumPy's names PyTorch accepts (NOTE (numpy aliases cost nothing) in numpy_aliases.py):
    # looked for only once a call with keywords has failed
    shown_name = key.split(".", 1)[1]

    def retry_with_own_names(args, kwargs, out, error):
        own_kwargs = with_own_names(shown_name, kwargs, numpy_renames)
        if own_kwargs is None:
            refuse(args, kwargs, error)
        if out is not None:
            own_kwargs["out"] = out
        return public(*args, **own_kwargs)

    @functools.wraps(fn)
    def public(*args, **kwargs):
        if not kwargs:  # the common call: one extra frame, nothing else
            try:
                return fn(*args)
            except TypeError as e:
                refuse(args, kwargs, e)
        if renamed and not renamed.isdisjoint(kwargs):
            for name in renamed.intersection(kwargs):
                kwargs[rename[name]] = kwargs.pop(name)
        out = kwargs.pop("out", None) if handles_out else None
        try:
            result = fn(*args, **kwargs)
        except TypeError as e:
            return retry_with_own_names(args, kwargs, out, e)
        if out is not None:
            return write_out(key.split(".", 1)[1], out, result)
        return result

    public.__wrapped_pytorch__ = fn
    return public


def write_out(name: str, out, result):
    """Write ``result`` into ``out`` as PyTorch's ``out=`` does: cast to ``out``'s dtype
    where PyTorch allows it, resize an ``out`` of another shape (with PyTorch's warning if
    it held elements), refuse under autograd."""
    if not isinstance(result, Tensor):
        raise UnsupportedArgumentError(f"{name}(): tracegrad supports out= only for functions "
                                       f"that return one tensor")
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if _grad_state.enabled and (result._requires_grad or out._requires_grad):
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic "
                           f"differentiation, but one of the arguments requires grad.")
    src, dst = result._data.dtype, out._data.dtype
    if not can_cast(src, dst):
        raise RuntimeError(f"result type {scalar_type_name(src)} can't be cast to the desired "
                           f"output type {scalar_type_name(dst)}")
    if type(out._data) is not np.ndarray or type(result._data) is not np.ndarray:
        if tuple(out.shape) == tuple(result.shape):
            # a trace (compile): an in-place copy the trace records, where np.copyto of a
            # traced value raised TypeError and the whole function ran eagerly
            return out.copy_(result)
    if tuple(out.shape) != tuple(result.shape):
        if out.numel():
            warnings.warn(f"An output with one or more elements was resized since it had shape "
                          f"{list(out.shape)}, which does not match the required output shape "
                          f"{list(result.shape)}. This behavior is deprecated, and in a future "
                          f"PyTorch release outputs will not be resized unless they have zero "
                          f"elements. You can explicitly reuse an out tensor t by resizing it, "
                          f"inplace, to zero elements with t.resize_(0).", UserWarning,
                          stacklevel=3)
        out._data = np.empty(result._data.shape, dst)  # a resize: new storage
    np.copyto(out._data, result._data, casting="unsafe")
    out._version[0] += 1
    return out


def adapt_namespace(namespace: dict, names) -> None:
    """Replace each public function ``names`` of ``namespace`` (``tracegrad``'s globals)
    by its adapted form."""
    for name in names:
        fn = namespace.get(name)
        if callable(fn) and not isinstance(fn, type) and not hasattr(fn, "__wrapped_pytorch__"):
            namespace[name] = adapt(fn, f"torch.{name}")


def adapt_methods(cls, names) -> None:
    for name in names:
        fn = cls.__dict__.get(name)
        if callable(fn) and not isinstance(fn, type) and not hasattr(fn, "__wrapped_pytorch__"):
            setattr(cls, name, adapt(fn, f"Tensor.{name}", is_method=True))
