"""Optimizer hooks with PyTorch's names and call conventions: step pre/post hooks (per
optimizer and global), state_dict and load_state_dict pre/post hooks.

Inside a compiled training step a hook runs while the step is traced, like the rest of
``step()``: what it does to tensors (scaling ``p.grad``) becomes part of the program;
Python side effects (a counter) happen once per trace, not once per call.

>>> import tracegrad as torch
>>> w = torch.tensor([1.0], requires_grad=True)
>>> opt = torch.optim.SGD([w], lr=0.5)
>>> seen = []
>>> handle = opt.register_step_post_hook(lambda o, args, kwargs: seen.append(w.item()))
>>> w.grad = torch.tensor([1.0]); opt.step(); handle.remove(); opt.step(); seen
[0.5]
"""
from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Callable

from .._untraced import library_method, pause, resume, user_call
from ..nn.modules.hooks import RemovableHandle

_global_step_pre_hooks: OrderedDict = OrderedDict()
_global_step_post_hooks: OrderedDict = OrderedDict()


def register_optimizer_step_pre_hook(hook: Callable) -> RemovableHandle:
    """``hook(optimizer, args, kwargs)`` before every optimizer's ``step()``; it may return
    ``(new_args, new_kwargs)``."""
    handle = RemovableHandle(_global_step_pre_hooks)
    _global_step_pre_hooks[handle.id] = hook
    return handle


def register_optimizer_step_post_hook(hook: Callable) -> RemovableHandle:
    """``hook(optimizer, args, kwargs)`` after every optimizer's ``step()``."""
    handle = RemovableHandle(_global_step_post_hooks)
    _global_step_post_hooks[handle.id] = hook
    return handle


def with_step_hooks(step: Callable) -> Callable:
    """``step`` wrapped to run the global, then the optimizer's pre-hooks, and after it
    the optimizer's, then the global post-hooks (PyTorch's order)."""
    if getattr(step, "_runs_step_hooks", False):
        return step

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        if self.__dict__.get("_in_hooked_step"):   # a subclass's step calling super().step()
            return step(self, *args, **kwargs)
        self._in_hooked_step = True
        try:
            return _run_with_hooks(self, step, args, kwargs)
        finally:
            self._in_hooked_step = False
    wrapper._runs_step_hooks = True
    return wrapper


def _run_with_hooks(self, step, args, kwargs):
    for hook in (*_global_step_pre_hooks.values(), *self._hooks("step_pre").values()):
        result = user_call(hook, self, args, kwargs)
        if result is not None:
            if not (isinstance(result, tuple) and len(result) == 2):
                raise RuntimeError(f"optimizer step pre-hook must return None or a tuple "
                                   f"of (new_args, new_kwargs), but got {result}.")
            args, kwargs = result
    out = _step(self, step, args, kwargs)
    for hook in (*self._hooks("step_post").values(), *_global_step_post_hooks.values()):
        user_call(hook, self, args, kwargs)
    return out


def _step(self, step, args, kwargs):
    """A library optimizer's step runs with the access-path recorder paused (a closure
    turns it back on), the user's with it on: NOTE (untraced stretches) in
    tracegrad/_untraced.py."""
    if not library_method(self, step):
        return user_call(step, self, *args, **kwargs)
    token = pause()
    try:
        return step(self, *args, **kwargs)
    finally:
        resume(token)


class OptimizerHooks:
    """The ``register_*_hook`` methods of ``Optimizer``."""

    def _hooks(self, kind: str) -> OrderedDict:
        # made on first use: an optimizer restored by pickle has none yet
        return self.__dict__.setdefault(f"_optimizer_{kind}_hooks", OrderedDict())

    def _register(self, kind: str, hook: Callable, prepend: bool = False) -> RemovableHandle:
        hooks = self._hooks(kind)
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def register_step_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(optimizer, args, kwargs)`` before ``step()``; it may return
        ``(new_args, new_kwargs)``."""
        return self._register("step_pre", hook)

    def register_step_post_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(optimizer, args, kwargs)`` after ``step()``."""
        return self._register("step_post", hook)

    def register_state_dict_pre_hook(self, hook: Callable,
                                     prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer)`` before ``state_dict()`` builds the dict."""
        return self._register("state_dict_pre", hook, prepend)

    def register_state_dict_post_hook(self, hook: Callable,
                                      prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer, state_dict)``, which may return a replacement dict."""
        return self._register("state_dict_post", hook, prepend)

    def register_load_state_dict_pre_hook(self, hook: Callable,
                                          prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer, state_dict)`` before loading, which may return a
        replacement dict."""
        return self._register("load_state_dict_pre", hook, prepend)

    def register_load_state_dict_post_hook(self, hook: Callable,
                                           prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer)`` after ``load_state_dict()``."""
        return self._register("load_state_dict_post", hook, prepend)
