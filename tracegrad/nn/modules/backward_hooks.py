"""Module backward hooks (PyTorch's ``register_full_backward_hook`` and
``register_full_backward_pre_hook``), built as PyTorch builds them.

NOTE (how): a call of a module with backward hooks passes its tensor inputs through an
identity ``autograd.Function`` and its tensor outputs through another. The backward of the
outputs' identity sees ``grad_output`` (and runs the pre-hooks, which may replace it); the
backward of the inputs' identity sees ``grad_input`` and runs the hooks, which may replace
it. The identities return their inputs as-is, so an in-place write into one of their
outputs would bypass them: it is refused, as in PyTorch (``check_inplace``).
"""
from __future__ import annotations

import warnings
from collections import OrderedDict

from ... import _trace_state
from ..._errors import TraceError
from ..._tensor import Tensor
from ...autograd.function import Function, _OutputNode
from ...autograd.grad_mode import state as _grad_state
from . import global_hooks
from .hooks import RemovableHandle


class BackwardHookFunction(Function):
    """The identity whose backward carries a module's backward hooks."""

    @staticmethod
    def forward(ctx, *args):
        ctx.mark_non_differentiable(*[a for a in args if not a.requires_grad])
        return args

    @staticmethod
    def backward(ctx, *grads):
        return ctx.on_backward(grads)


class BackwardHook:
    """One module call's backward hooks: ``grad_output`` seen at the outputs waits here
    until ``grad_input`` reaches the inputs."""

    def __init__(self, module, hooks: list, pre_hooks: list) -> None:
        self.module, self.hooks, self.pre_hooks = module, hooks, pre_hooks
        self.grad_outputs = None
        self.n_inputs = self.n_outputs = 0
        self.input_index = self.output_index = None

    def setup_input_hook(self, args: tuple) -> tuple:
        self.n_inputs = len(args)
        args, self.input_index = _through_identity(args, self._on_grad_input, True)
        return args

    def setup_output_hook(self, result):
        single = not isinstance(result, tuple)
        outputs = (result,) if single else result
        self.n_outputs = len(outputs)
        outputs, self.output_index = _through_identity(outputs, self._on_grad_output, False)
        return outputs[0] if single else outputs

    def _on_grad_output(self, grads: tuple) -> tuple:
        grad_outputs = _pack(self.output_index, grads, self.n_outputs)
        for hook in self.pre_hooks:
            res = hook(self.module, grad_outputs)
            if res is None:
                continue
            res = res if isinstance(res, tuple) else (res,)
            if len(res) != len(grad_outputs):
                raise RuntimeError(f"Backward pre hook returned an invalid number of "
                                   f"grad_output, got {len(res)}, but expected "
                                   f"{len(grad_outputs)}")
            grad_outputs = res
        if self.input_index is None:
            # no input requires grad: grad_input never comes, so the hooks run now
            grad_inputs = (None,) * self.n_inputs
            if self.hooks:
                warnings.warn("Full backward hook is firing when gradients are computed with "
                              "respect to module outputs since no inputs require gradients. "
                              "See the documentation of register_full_backward_hook for more "
                              "details.", stacklevel=2)
            for hook in self.hooks:
                res = hook(self.module, grad_inputs, grad_outputs)
                if res is not None and not (isinstance(res, tuple)
                                            and all(r is None for r in res)):
                    raise RuntimeError("Backward hook for Modules where no input requires "
                                       "gradient should always return None or None for all "
                                       "gradients.")
        else:
            self.grad_outputs = grad_outputs
        return tuple(grad_outputs[i] for i in self.output_index)

    def _on_grad_input(self, grads: tuple) -> tuple:
        if self.grad_outputs is None:
            return grads  # the outputs' gradient was not computed (an output unused)
        grad_inputs = _pack(self.input_index, grads, self.n_inputs)
        for hook in self.hooks:
            res = hook(self.module, grad_inputs, self.grad_outputs)
            if res is None:
                continue
            res = res if isinstance(res, tuple) else (res,)
            if len(res) != len(grad_inputs):
                raise RuntimeError(f"Backward hook returned an invalid number of grad_input, "
                                   f"got {len(res)}, but expected {len(grad_inputs)}")
            grad_inputs = res
        self.grad_outputs = None
        return tuple(grad_inputs[i] for i in self.input_index)


def _pack(index: list, grads: tuple, n: int) -> tuple:
    """The gradients of the tensors at ``index``, None at the other positions."""
    packed = [None] * n
    for i, g in zip(index, grads):
        packed[i] = g
    return tuple(packed)


def _through_identity(values: tuple, on_backward, materialize: bool):
    """``values`` with its tensors passed through one ``BackwardHookFunction`` and the
    positions of those tensors; unchanged and None when no gradient will flow."""
    index = [i for i, v in enumerate(values) if isinstance(v, Tensor)]
    tensors = [values[i] for i in index]
    if not (_grad_state.enabled and any(t.requires_grad for t in tensors)):
        return values, None
    out = BackwardHookFunction.apply(*tensors)
    node = next(t.grad_fn for t in out if t.grad_fn is not None)
    if isinstance(node, _OutputNode):  # several outputs: their nodes feed the function's
        node = node.inputs[0].grad_fn
    ctx = node.ctx
    ctx.on_backward = on_backward
    ctx.set_materialize_grads(materialize)
    values = list(values)
    for i, t in zip(index, out):
        values[i] = t
    return tuple(values), index


class BackwardHooksMixin:
    """``Module``'s backward-hook registration and the call wrapping that runs them."""

    def register_full_backward_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_input, grad_output) -> None or new grad_input`` runs when
        the gradients with respect to the module's inputs are computed."""
        if self.__dict__["_is_full_backward_hook"] is False:
            raise RuntimeError("Cannot use both regular backward hooks and full backward "
                               "hooks on a single Module. Please use only one of them.")
        self.__dict__["_is_full_backward_hook"] = True
        return _add(self._backward_hooks, hook, prepend)

    def register_full_backward_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_output) -> None or new grad_output`` runs when the
        gradients with respect to the module's outputs are computed."""
        return _add(self._backward_pre_hooks, hook, prepend)

    def register_backward_hook(self, hook) -> RemovableHandle:
        """Deprecated (NOTE (legacy backward hooks) in global_hooks.py)."""
        if self.__dict__["_is_full_backward_hook"] is True:
            raise RuntimeError("Cannot use both regular backward hooks and full backward "
                               "hooks on a single Module. Please use only one of them.")
        global_hooks.warn_legacy_backward_hook(f"{type(self).__name__}.register_backward_hook")
        self.__dict__["_is_full_backward_hook"] = False
        return _add(self._backward_hooks, hook, False)

    def _backward_hook_for_call(self) -> BackwardHook | None:
        """This call's ``BackwardHook``, or None when no backward hook is registered."""
        d = self.__dict__
        hooks = [*global_hooks.backward_hooks.values(), *d["_backward_hooks"].values()]
        pre_hooks = [*global_hooks.backward_pre_hooks.values(),
                     *d["_backward_pre_hooks"].values()]
        if not (hooks or pre_hooks) or not _grad_state.enabled:
            return None
        if _trace_state.active_traces:
            # NOTE: like a forward hook, a backward hook is Python run at every backward;
            # a compiled program would have run it once, at the trace
            raise TraceError(f"{type(self).__name__} has backward hooks "
                             f"(register_full_backward_hook), which must run at every "
                             f"backward; a compile trace would run them once")
        return BackwardHook(self, hooks, pre_hooks)


def _add(table: OrderedDict, hook, prepend: bool) -> RemovableHandle:
    global_hooks.note_module_backward_hook()
    global_hooks.note_registration()
    handle = RemovableHandle(table)
    table[handle.id] = hook
    if prepend:
        table.move_to_end(handle.id, last=False)
    return handle
