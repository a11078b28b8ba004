"""Module's forward hooks (``register_forward_pre_hook``, ``register_forward_hook``),
the call that runs them, and the call of a module in a compile trace."""
from __future__ import annotations

import warnings

from ... import _trace_state, _untraced
from ..._errors import TraceError
from ..._tensor import Tensor
from . import global_hooks
from .hooks import RemovableHandle

_HOOKS_BEYOND_FORWARD = global_hooks.hooks_beyond_forward  # NOTE in global_hooks.py


def _always_called(d: dict, hook_id: int) -> bool:
    return (hook_id in d["_forward_hooks_always_called"]
            or hook_id in global_hooks.forward_hooks_always_called)


def traced_call(module, tracer, args: tuple, kwargs: dict):
    """``module(*args, **kwargs)`` in a compile trace: a library module's forward runs
    with the access-path recorder paused, anything else (the user's forward, hooks, a
    compiled call) with it on (NOTE (untraced stretches) in tracegrad/_untraced.py)."""
    token = _untraced.pause()
    try:
        tracer.note_module(module)  # its train()/eval() mode is a guard
        d = module.__dict__
        compiled = d.get("_compiled_call_impl")
        if compiled is not None:   # Module.compile() was called
            return _untraced.user_call(compiled, *args, **kwargs)
        if d["_forward_pre_hooks"] or d["_forward_hooks"] or _HOOKS_BEYOND_FORWARD[0]:
            return _untraced.user_call(module._call_with_hooks, args, kwargs)
        forward = module.forward
        if not _untraced.library_method(module, forward):
            return _untraced.user_call(forward, *args, **kwargs)
        return forward(*args, **kwargs)
    finally:
        _untraced.resume(token)


class ForwardHooksMixin:
    def _call_with_hooks(self, args, kwargs):
        d = self.__dict__
        pre_hooks = [*global_hooks.forward_pre_hooks.items(), *d["_forward_pre_hooks"].items()]
        hooks = [*global_hooks.forward_hooks.items(), *d["_forward_hooks"].items()]
        if _trace_state.active_traces and (pre_hooks or hooks):
            # NOTE: a hook is Python the module runs at every call (it often keeps an
            # activation: features[name] = output); a compiled program would run it once,
            # at the trace, and leave the trace's placeholder in the user's dict
            raise TraceError(f"{type(self).__name__} has forward hooks, which must run at "
                             f"every call; a compile trace would run them once")
        for hook_id, hook in pre_hooks:
            if hook_id in d["_forward_pre_hooks_with_kwargs"]:
                res = hook(self, args, kwargs)
                if res is not None:
                    if not (isinstance(res, tuple) and len(res) == 2):
                        raise RuntimeError("forward pre-hook with kwargs must return None or "
                                           f"a tuple of (new_args, new_kwargs), got {res!r}")
                    args, kwargs = res
            else:
                res = hook(self, args)
                if res is not None:
                    args = res if isinstance(res, tuple) else (res,)
        backward_hook = self._backward_hook_for_call()
        if backward_hook is not None:
            args = backward_hook.setup_input_hook(args)
        result = None
        called = set()  # the always_call hooks already run
        try:
            result = self.forward(*args, **kwargs)
            for hook_id, hook in hooks:
                if _always_called(d, hook_id):
                    called.add(hook_id)
                result = self._forward_hook_result(hook_id, hook, args, kwargs, result)
        except Exception:
            self._run_always_called_hooks(args, kwargs, result, called)
            raise
        if backward_hook is not None:
            if not isinstance(result, (Tensor, tuple)):
                warnings.warn("For backward hooks to be called, module output should be a "
                              f"Tensor or a tuple of Tensors but received {type(result)}")
            result = backward_hook.setup_output_hook(result)
        return result

    def _forward_hook_result(self, hook_id, hook, args, kwargs, result):
        """``result`` after one forward hook (which may return a new one)."""
        if (hook_id in self.__dict__["_forward_hooks_with_kwargs"]
                or hook_id in global_hooks.forward_hooks_with_kwargs):
            res = hook(self, args, kwargs, result)
        else:
            res = hook(self, args, result)
        return result if res is None else res

    def _run_always_called_hooks(self, args, kwargs, result, called: set) -> None:
        """After ``forward`` or a hook raised: run the hooks registered with
        ``always_call=True`` that have not run yet, as PyTorch does; a hook's own error
        becomes a warning so that it does not hide the original one."""
        d = self.__dict__
        for hook_id, hook in [*global_hooks.forward_hooks.items(), *d["_forward_hooks"].items()]:
            if not _always_called(d, hook_id) or hook_id in called:
                continue
            try:
                result = self._forward_hook_result(hook_id, hook, args, kwargs, result)
            except Exception as hook_error:
                warnings.warn("forward hook with ``always_call=True`` raised an exception "
                              f"that was silenced as another error was raised in forward: "
                              f"{hook_error!s}")

    def register_forward_pre_hook(self, hook, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """``hook(module, args) -> None or new args`` runs before ``forward``
        (``hook(module, args, kwargs) -> None or (args, kwargs)`` with ``with_kwargs``)."""
        handle = RemovableHandle(self._forward_pre_hooks, self._forward_pre_hooks_with_kwargs)
        self._forward_pre_hooks[handle.id] = hook
        global_hooks.note_registration()
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs[handle.id] = True
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """``hook(module, args, output) -> None or new output`` runs after ``forward``;
        with ``always_call`` it also runs (with ``output=None``) when ``forward`` raises."""
        handle = RemovableHandle(self._forward_hooks, self._forward_hooks_with_kwargs,
                                 self._forward_hooks_always_called)
        self._forward_hooks[handle.id] = hook
        global_hooks.note_registration()
        if with_kwargs:
            self._forward_hooks_with_kwargs[handle.id] = True
        if always_call:
            self._forward_hooks_always_called[handle.id] = True
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle
