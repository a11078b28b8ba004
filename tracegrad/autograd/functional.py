"""``autograd.functional``: Jacobians, Hessians and their products, PyTorch's signatures.

Everything is built from reverse mode (``autograd.grad``). Derivative rules are tensor
code, so the gradient of a gradient exists: ``jvp`` uses the double-vjp trick (the vjp is
linear in its cotangent ``u``, so differentiating it with respect to ``u`` against ``v``
gives J v), and ``hessian``/``hvp``/``vhp`` differentiate a gradient computed with
``create_graph=True``. ``vectorize`` and the strategies are accepted for compatibility;
the rows are always computed one backward pass each.

>>> import tracegrad as torch
>>> from tracegrad.autograd.functional import jacobian, hessian
>>> jacobian(lambda x: x ** 2, torch.tensor([1.0, 2.0]))
tensor([[2., 0.],
        [0., 4.]])
>>> hessian(lambda x: (x ** 3).sum(), torch.tensor([1.0, 2.0]))
tensor([[ 6.,  0.],
        [ 0., 12.]])
"""
from __future__ import annotations

import numpy as np

from .._ops.shape import stack
from .._tensor import Tensor, _wrap
from .engine import grad as _grad
from .grad_mode import enable_grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]


def _as_tuple(x, arg_name: str, fn_name: str) -> tuple[bool, tuple]:
    is_tuple = isinstance(x, (tuple, list))
    items = tuple(x) if is_tuple else (x,)
    for i, el in enumerate(items):
        if not isinstance(el, Tensor):
            where = f"element {i} of {arg_name}" if is_tuple else arg_name
            raise TypeError(f"The {where} given to {fn_name} must be a Tensor (or a tuple of "
                            f"Tensors) but got {type(el).__name__}.")
    return is_tuple, items


def _grad_preprocess(inputs: tuple, create_graph: bool) -> tuple:
    """Fresh tensors that require grad; with ``create_graph`` they stay connected to the
    caller's graph (PyTorch's ``view_as``), else they are detached."""
    out = []
    for x in inputs:
        if create_graph and x.requires_grad:
            out.append(x * 1)  # a new node on x's graph: gradients flow back to x
        else:
            out.append(x.detach().requires_grad_(True))
    return tuple(out)


def _postprocess(values, create_graph: bool):
    if isinstance(values, tuple):
        return tuple(_postprocess(v, create_graph) for v in values)
    return values if create_graph else values.detach()


def _zeros(like: Tensor) -> Tensor:
    return _wrap(np.zeros(tuple(like.shape), dtype=like._data.dtype))


def _validate_v(v: tuple, other: tuple, fn_name: str) -> None:
    if len(v) != len(other):
        raise RuntimeError(f"{fn_name}: v is a tuple of invalid length: should be "
                           f"{len(other)} but got {len(v)}.")
    for i, (a, b) in enumerate(zip(v, other)):
        if tuple(a.shape) != tuple(b.shape):
            raise RuntimeError(f"{fn_name}: Entry {i} in v has invalid size: should be "
                               f"{tuple(b.shape)} but got {tuple(a.shape)}.")


def _grads(outputs: tuple, inputs: tuple, grad_outputs, create_graph: bool, strict: bool,
           fn_name: str, what: str = "input") -> tuple:
    """``autograd.grad`` that returns zeros for unused inputs (or raises with ``strict``)."""
    diff = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    needing = [x for x in inputs if x.requires_grad]
    if diff and needing:
        got = iter(_grad([o for o, _ in diff], needing, [g for _, g in diff],
                         retain_graph=True, create_graph=create_graph, allow_unused=True))
    else:
        got = iter(())
    results = []
    for i, x in enumerate(inputs):
        g = next(got, None) if x.requires_grad else None
        if g is None:
            if strict:
                raise RuntimeError(f"{fn_name}: The output of the user-provided function is "
                                   f"independent of {what} {i}. This is not allowed in strict "
                                   f"mode.")
            g = _zeros(x)
        results.append(g)
    return tuple(results)


def _call(func, inputs: tuple, fn_name: str) -> tuple[bool, tuple]:
    with enable_grad():
        out = func(*inputs)
    return _as_tuple(out, "outputs of the user-provided function", fn_name)


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(*inputs), v^T J)``."""
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
    with enable_grad():
        inputs = _grad_preprocess(inputs, create_graph)
        out_tuple, outputs = _call(func, inputs, "vjp")
        v = _default_v(v, outputs, "vjp")
        grads = _grads(outputs, inputs, v, create_graph, strict, "vjp")
    return (_pack(_postprocess(outputs, create_graph), out_tuple),
            _pack(_postprocess(grads, create_graph), inputs_tuple))


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(*inputs), J v)``, by the double-vjp trick (see the module docstring)."""
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
    if v is None:
        if len(inputs) != 1 or inputs[0].numel() != 1:
            raise RuntimeError("jvp: The vector v can only be None if the input to the "
                               "user-provided function is a single Tensor with a single "
                               "element.")
        v = (_wrap(np.ones(tuple(inputs[0].shape), dtype=inputs[0]._data.dtype)),)
    else:
        v = _as_tuple(v, "v", "jvp")[1]
        _validate_v(v, inputs, "jvp")
    with enable_grad():
        inputs = _grad_preprocess(inputs, create_graph)
        out_tuple, outputs = _call(func, inputs, "jvp")
        cotangents = tuple(_zeros(o).requires_grad_(True) for o in outputs)
        vjps = _grads(outputs, inputs, cotangents, True, strict, "jvp")
        jvps = _grads(vjps, cotangents, v, create_graph, strict, "jvp", what="output")
    return (_pack(_postprocess(outputs, create_graph), out_tuple),
            _pack(_postprocess(jvps, create_graph), out_tuple))


def _default_v(v, outputs: tuple, fn_name: str) -> tuple:
    if v is None:
        if len(outputs) != 1 or outputs[0].numel() != 1:
            raise RuntimeError(f"{fn_name}: The vector v can only be None if the "
                               f"user-provided function returns a single Tensor with a "
                               f"single element.")
        return (_wrap(np.ones(tuple(outputs[0].shape), dtype=outputs[0]._data.dtype)),)
    v = _as_tuple(v, "v", fn_name)[1]
    _validate_v(v, outputs, fn_name)
    return v


def _pack(values: tuple, as_tuple: bool):
    return values if as_tuple else values[0]


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode"):
    """d func(*inputs) / d inputs: for output ``o`` and input ``x`` a tensor of shape
    ``o.shape + x.shape``, nested in tuples as the outputs and inputs are."""
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(f'jacobian: Expected strategy to be either "forward-mode" or '
                         f'"reverse-mode". Hint: strategy is case-sensitive. Got {strategy!r}')
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
    with enable_grad():
        inputs = _grad_preprocess(inputs, create_graph)
        out_tuple, outputs = _call(func, inputs, "jacobian")
        per_output = []
        for o in outputs:
            rows = [[] for _ in inputs]
            for k in range(o.numel()):
                onehot = np.zeros(o.numel(), dtype=o._data.dtype)
                onehot[k] = 1
                seed = _wrap(onehot.reshape(tuple(o.shape)))
                gs = _grads((o,), inputs, (seed,), create_graph, strict, "jacobian")
                for r, g in zip(rows, gs):
                    r.append(g)
            blocks = []
            for x, r in zip(inputs, rows):
                shape = tuple(o.shape) + tuple(x.shape)
                blocks.append(_stack(r, x).reshape(shape) if r else _empty(shape, x))
            per_output.append(_postprocess(tuple(blocks), create_graph))
    if out_tuple:
        return tuple(_pack(b, inputs_tuple) for b in per_output)
    return _pack(per_output[0], inputs_tuple)


def _stack(rows: list, like: Tensor) -> Tensor:
    return stack(rows)


def _empty(shape: tuple, like: Tensor) -> Tensor:
    return _wrap(np.zeros(shape, dtype=like._data.dtype))


def hessian(func, inputs, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode"):
    """Second derivatives of a function returning one single-element tensor."""
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")

    def gradient(*xs):
        out_tuple, out = _call(func, xs, "hessian")
        if out_tuple or out[0].numel() != 1:
            raise RuntimeError("hessian: The function given to hessian should return a "
                               "single Tensor with a single element, got "
                               f"{'a tuple' if out_tuple else tuple(out[0].shape)}")
        return _grads(out, xs, (_wrap(np.ones(tuple(out[0].shape), out[0]._data.dtype)),),
                      True, strict, "hessian")

    result = jacobian(gradient, inputs, create_graph=create_graph, strict=strict,
                      vectorize=vectorize, strategy=outer_jacobian_strategy)
    return result if inputs_tuple else result[0][0]


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(*inputs), v^T H)`` for a function returning one single-element tensor."""
    return _hessian_product(func, inputs, v, create_graph, strict, "vhp")


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(*inputs), H v)``. The Hessian of a twice-differentiable function is
    symmetric, so this equals ``vhp`` (PyTorch computes it by a further double backward)."""
    return _hessian_product(func, inputs, v, create_graph, strict, "hvp")


def _hessian_product(func, inputs, v, create_graph: bool, strict: bool, fn_name: str):
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", fn_name)
    if v is None:
        if len(inputs) != 1 or inputs[0].numel() != 1:
            raise RuntimeError(f"{fn_name}: The vector v can only be None if the input to the "
                               f"user-provided function is a single Tensor with a single "
                               f"element.")
        v = (_wrap(np.ones(tuple(inputs[0].shape), dtype=inputs[0]._data.dtype)),)
    else:
        v = _as_tuple(v, "v", fn_name)[1]
        _validate_v(v, inputs, fn_name)
    with enable_grad():
        inputs = _grad_preprocess(inputs, create_graph)
        out_tuple, outputs = _call(func, inputs, fn_name)
        if out_tuple or outputs[0].numel() != 1:
            raise RuntimeError(f"{fn_name}: The function given to {fn_name} should return a "
                               f"single Tensor with a single element.")
        seed = (_wrap(np.ones(tuple(outputs[0].shape), dtype=outputs[0]._data.dtype)),)
        first = _grads(outputs, inputs, seed, True, strict, fn_name)
        second = _grads(first, inputs, v, create_graph, strict, fn_name)
    return (_postprocess(outputs[0], create_graph),
            _pack(_postprocess(second, create_graph), inputs_tuple))
