"""``autograd.Function``: user-defined operations with a hand-written backward, PyTorch's API.

>>> import tracegrad as torch
>>> class Cube(torch.autograd.Function):
...     @staticmethod
...     def forward(ctx, x):
...         ctx.save_for_backward(x)
...         return x ** 3
...     @staticmethod
...     def backward(ctx, grad_output):
...         (x,) = ctx.saved_tensors
...         return grad_output * 3 * x ** 2
>>> x = torch.tensor([1.0, 2.0], requires_grad=True)
>>> Cube.apply(x).sum().backward(); x.grad
tensor([ 3., 12.])

A call records one ``FunctionBackward`` node (a ``Node`` whose rule calls the user's
``backward``), so the engine needs no special case: the node's ``prim`` is a small object
with the ``Primitive`` interface the engine reads (``vjp``, ``needs``, ``saves_output``).

NOTE (several outputs): the engine keys gradients by node and hands each node one
gradient. A function with several differentiable outputs therefore gives each output its
own small ``_OutputNode`` that feeds a hidden tensor owned by the function's node; the
outputs' gradients travel as a ``_GradPack`` (one slot per output) that the engine sums
with ``+`` like any gradient, and the function's node unpacks it for ``backward``.
"""
from __future__ import annotations

import functools

import numpy as np

from .. import _trace_state, _untraced
from .._tensor import Tensor, _wrap
from .._errors import TraceError
from .grad_mode import no_grad, state as _grad_state
from .node import Node
from .profiler import record_function

__all__ = ["Function", "FunctionCtx", "once_differentiable"]


class FunctionCtx:
    """The ``ctx`` passed to ``forward`` and ``backward``."""

    def __init__(self) -> None:
        self.needs_input_grad: tuple = ()
        self.materialize_grads = True
        self._saved: tuple = ()
        self._saved_versions: tuple = ()
        self._dirty: tuple = ()
        self._non_differentiable: tuple = ()
        self._node = None

    def save_for_backward(self, *tensors) -> None:
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save tensors (or None), but "
                                f"argument {i} is a {type(t).__name__}; store other values "
                                f"as attributes of ctx")
        self._saved = tensors
        # NOTE: versions are taken now, so an in-place change between forward and backward
        # is caught when backward reads ``saved_tensors`` (PyTorch's saved-variable check).
        self._saved_versions = tuple(None if t is None else t._version[0] for t in tensors)

    @property
    def saved_tensors(self) -> tuple:
        if self._saved is None:
            raise RuntimeError("Trying to backward through the graph a second time (or "
                               "directly access saved tensors after they have already been "
                               "freed). Specify retain_graph=True if you need to backward "
                               "a second time.")
        name = self._node.name() if self._node is not None else "the custom Function"
        for i, (t, v) in enumerate(zip(self._saved, self._saved_versions)):
            if t is not None and t._version[0] != v:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation: saved tensor {i} of {name} (shape "
                    f"{tuple(t.shape)}, {t.dtype}) is at version {t._version[0]}; expected "
                    f"version {v} instead")
        return self._saved

    saved_variables = saved_tensors

    def mark_dirty(self, *tensors) -> None:
        """Declare inputs that ``forward`` modified in place (and returns)."""
        self._dirty = tensors

    def mark_non_differentiable(self, *tensors) -> None:
        """Declare outputs that get no gradient (indices, masks)."""
        self._non_differentiable = tensors

    def set_materialize_grads(self, value: bool) -> None:
        """With False, ``backward`` receives None (not zeros) for outputs that got no gradient."""
        self.materialize_grads = bool(value)


class _FunctionRule:
    """The ``Primitive`` interface the engine calls, for one ``Function`` subclass."""

    saves_output = False

    def __init__(self, cls) -> None:
        self.cls = cls
        self.name = cls.__name__

    @staticmethod
    def needs(needs_grad) -> tuple:
        return ()  # saved tensors are version-checked by ctx.saved_tensors instead

    def vjp(self, g, node) -> tuple:
        _refuse_trace(self.cls, "backward")
        ctx = node.ctx
        if isinstance(g, _GradPack):
            grads = list(g.slots)
        else:  # one differentiable output, linked to this node directly
            grads = [None] * len(ctx._output_meta)
            grads[ctx._direct_output] = g
        if ctx.materialize_grads:
            grads = [_wrap(np.zeros(shape, dtype)) if gi is None and dtype is not None else gi
                     for gi, (shape, dtype) in zip(grads, ctx._output_meta)]  # None: not a tensor
        backward = self.cls.backward
        if backward is Function.backward:  # PyTorch accepts ``vjp`` as the name too
            backward = self.cls.vjp
        with record_function(node.name()):  # a no-op unless a profile is active
            result = _untraced.user_call(backward, ctx, *grads)   # NOTE (untraced stretches)
        return _check_grads(result, node)


class _SelectRule:
    """One output of a several-output function (NOTE (several outputs))."""

    saves_output = False

    def __init__(self, name: str, index: int, count: int) -> None:
        self.name, self.index, self.count = name, index, count

    @staticmethod
    def needs(needs_grad) -> tuple:
        return ()

    def vjp(self, g, node) -> tuple:
        slots = [None] * self.count
        slots[self.index] = g
        return (_GradPack(slots),)


class _GradPack:
    """The gradients of a function's outputs, summed slot by slot by the engine."""

    __slots__ = ("slots",)

    def __init__(self, slots) -> None:
        self.slots = slots

    def __add__(self, other: "_GradPack") -> "_GradPack":
        return _GradPack([a if b is None else b if a is None else a + b
                          for a, b in zip(self.slots, other.slots)])


class FunctionBackward(Node):
    """The ``grad_fn`` of a custom function's output, named ``<Function>Backward``."""

    __slots__ = ("ctx",)

    def name(self) -> str:
        return self.prim.name + "Backward"


class _OutputNode(FunctionBackward):
    __slots__ = ()


def _refuse_trace(cls, what: str) -> None:
    if _trace_state.is_tracing():
        raise TraceError(f"custom autograd.Function {cls.__name__} cannot be traced (its "
                         f"{what} is arbitrary Python that compile cannot see through)")


def _check_grads(result, node) -> tuple:
    name = node.name()
    result = result if isinstance(result, tuple) else (result,)
    n = len(node.inputs)
    if len(result) < n or any(r is not None for r in result[n:]):
        raise RuntimeError(f"function {name} returned an incorrect number of gradients "
                           f"(expected {n}, got {len(result)})")
    out = []
    for i, (x, gx) in enumerate(zip(node.inputs, result)):
        if gx is None:
            out.append(None)
            continue
        if not isinstance(x, Tensor):
            raise RuntimeError(f"function {name} returned a gradient different than None at "
                               f"position {i}, but the corresponding forward input was not a "
                               f"Tensor (it was a {type(x).__name__})")
        if not isinstance(gx, Tensor):
            raise TypeError(f"function {name} returned a {type(gx).__name__} as gradient {i}; "
                            f"expected a Tensor or None")
        out.append(_fit_grad(gx, x, name, i))
    return tuple(out)


def _fit_grad(g: Tensor, x: Tensor, name: str, i: int) -> Tensor:
    """Cast to the input's dtype and sum broadcast dimensions away, as PyTorch does."""
    shape, gshape = tuple(x.shape), tuple(g.shape)
    if gshape != shape:
        lead = len(gshape) - len(shape)
        fits = lead >= 0 and all(s == gs or s == 1 for s, gs in zip(shape, gshape[lead:]))
        if not fits:
            raise RuntimeError(f"function {name} returned an invalid gradient at index {i} - "
                               f"got {list(gshape)} but expected shape compatible with "
                               f"{list(shape)}")
        if lead:
            g = g.sum(dim=tuple(range(lead)))
        dims = tuple(d for d, (s, gs) in enumerate(zip(shape, g.shape)) if s == 1 and gs != 1)
        if dims:
            g = g.sum(dim=dims, keepdim=True)
    if g.dtype != x.dtype:
        g = g.to(x.dtype)
    return g


class Function:
    """Subclass with ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)``
    staticmethods, and call ``YourFunction.apply(*args)``."""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls._rule = _FunctionRule(cls)

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"Legacy autograd function with non-static forward method is "
                           f"deprecated. Please use new-style autograd function with static "
                           f"forward method: {type(self).__name__}.apply(...)")

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward "
                                  "mode AD.")

    vjp = backward

    @classmethod
    def apply(cls, *args, **kwargs):
        _refuse_trace(cls, "forward")
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        separate_setup = cls.setup_context is not Function.setup_context
        with no_grad():
            if separate_setup:
                outputs = _untraced.user_call(cls.forward, *args, **kwargs)
                _untraced.user_call(cls.setup_context, ctx, args, outputs)
            else:
                outputs = _untraced.user_call(cls.forward, ctx, *args, **kwargs)
        if not (_grad_state.enabled and any(ctx.needs_input_grad)):
            return outputs
        return _link_outputs(cls, ctx, args, outputs)


def _link_outputs(cls, ctx: FunctionCtx, args: tuple, outputs):
    single = not isinstance(outputs, tuple)
    outs = list((outputs,) if single else outputs)
    dirty = {id(t) for t in ctx._dirty}
    non_diff = {id(t) for t in ctx._non_differentiable}
    input_ids = {id(a) for a in args if isinstance(a, Tensor)}
    inputs = list(args)
    for i, a in enumerate(args):
        if isinstance(a, Tensor) and id(a) in dirty:
            if a.grad_fn is None and a.requires_grad:
                raise RuntimeError(f"{cls.__name__}: a leaf Variable that requires grad "
                                   f"(input {i}, shape {tuple(a.shape)}) has been used in an "
                                   f"in-place operation (ctx.mark_dirty).")
            inputs[i] = _history_alias(a)  # the node reads the input's history before the write
    node = FunctionBackward(cls._rule, tuple(inputs), None, None)
    node.ctx = ctx
    ctx._node = node
    ctx._output_meta = [(tuple(o.shape), o._data.dtype) if isinstance(o, Tensor) else ((), None)
                        for o in outs]
    differentiable = []
    for k, o in enumerate(outs):
        if not isinstance(o, Tensor):
            continue
        marked = id(o) in non_diff  # before the alias below, which has a new id
        if id(o) in input_ids and id(o) not in dirty:
            o = outs[k] = _alias(o)  # an input returned unchanged: a new tensor, own history
        if marked or o._data.dtype.kind not in "fc":
            continue
        differentiable.append(k)
    if len(differentiable) == 1:
        ctx._direct_output = differentiable[0]
        _attach(outs[differentiable[0]], node)
    elif differentiable:
        hub = _wrap(np.empty(0))
        _attach(hub, node)
        for k in differentiable:
            _attach(outs[k], _OutputNode(_SelectRule(cls.__name__, k, len(outs)), (hub,), None,
                                         None))
    return outs[0] if single else tuple(outs)


def _attach(t: Tensor, node) -> None:
    t.grad_fn = node
    t._requires_grad = True


def _alias(t: Tensor) -> Tensor:
    out = _wrap(t._data)
    out._version = t._version  # same storage, same version counter
    return out


def _history_alias(t: Tensor) -> Tensor:
    out = _alias(t)
    out.grad_fn = t.grad_fn
    out._requires_grad = t._requires_grad
    return out


class _OnceDifferentiableRule:
    saves_output = False
    name = "OnceDifferentiable"

    @staticmethod
    def needs(needs_grad) -> tuple:
        return ()

    @staticmethod
    def vjp(g, node):
        raise RuntimeError("trying to differentiate twice a function that was marked with "
                           "@once_differentiable")


def once_differentiable(backward):
    """Run ``backward`` without recording a graph; differentiating its result raises."""
    @functools.wraps(backward)
    def wrapper(ctx, *grad_outputs):
        record = _grad_state.enabled
        with no_grad():
            result = backward(ctx, *grad_outputs)
        if not record:
            return result
        sources = tuple(g for g in grad_outputs if isinstance(g, Tensor) and g.requires_grad)
        if not sources:
            return result
        single = not isinstance(result, tuple)
        marked = []
        for r in ((result,) if single else result):
            if isinstance(r, Tensor):
                r = _alias(r)
                _attach(r, Node(_OnceDifferentiableRule, sources, None, None))
            marked.append(r)
        return marked[0] if single else tuple(marked)
    return wrapper
