"""Hooks every module runs (PyTorch's ``torch.nn.modules.module.register_module_*_hook``):
meant for debugging and profiling, they run before each module's own hooks."""
from __future__ import annotations

import warnings
from collections import OrderedDict

from .hooks import RemovableHandle

forward_pre_hooks: OrderedDict = OrderedDict()
forward_hooks: OrderedDict = OrderedDict()
forward_hooks_with_kwargs: OrderedDict = OrderedDict()
forward_hooks_always_called: OrderedDict = OrderedDict()
backward_pre_hooks: OrderedDict = OrderedDict()
backward_hooks: OrderedDict = OrderedDict()
# NOTE: the module call's hot path tests this one flag instead of six more dicts (they cost
# it ~25% of a bare call): True while a global hook exists or once any module has had a
# backward hook; then every call takes the hooked path, which checks its own dicts
hooks_beyond_forward = [False]
_module_backward_hooks_seen = [False]


def _changed() -> None:
    hooks_beyond_forward[0] = bool(_module_backward_hooks_seen[0] or forward_pre_hooks
                                   or forward_hooks or backward_pre_hooks or backward_hooks)


def note_module_backward_hook() -> None:
    _module_backward_hooks_seen[0] = True
    _changed()


def hook_ids(module) -> tuple:
    """The hooks that would run at a call of ``module`` (its own and the global ones), by
    handle id: a compiled call replays a trace only while these are the same (a hook
    registered after the trace must run, and the trace refuses hooks)."""
    d = module.__dict__
    tables = (d["_forward_pre_hooks"], d["_forward_hooks"], d["_backward_pre_hooks"],
              d["_backward_hooks"], forward_pre_hooks, forward_hooks, backward_pre_hooks,
              backward_hooks)
    return tuple(tuple(t) for t in tables)


def note_registration() -> None:
    """A hook was registered: compiled calls compare their modules' hooks again
    (``hook_ids``; module.py ATTRIBUTE_WRITES)."""
    attribute_writes[0] += 1


# module.py's ATTRIBUTE_WRITES (the same list): counts writes to any module's attributes
attribute_writes = [0]


class _GlobalHandle(RemovableHandle):
    def remove(self) -> None:
        super().remove()
        _changed()


def _register(table: OrderedDict, hook, *extra: OrderedDict) -> RemovableHandle:
    handle = _GlobalHandle(table, *extra)
    table[handle.id] = hook
    _changed()
    note_registration()
    return handle


def register_module_forward_pre_hook(hook) -> RemovableHandle:
    """``hook(module, args) -> None or new args`` before every module's ``forward``."""
    return _register(forward_pre_hooks, hook)


def register_module_forward_hook(hook, *, with_kwargs: bool = False,
                                 always_call: bool = False) -> RemovableHandle:
    """``hook(module, args, output) -> None or new output`` after every module's
    ``forward`` (``hook(module, args, kwargs, output)`` with ``with_kwargs``)."""
    handle = _register(forward_hooks, hook, forward_hooks_with_kwargs,
                       forward_hooks_always_called)
    if with_kwargs:
        forward_hooks_with_kwargs[handle.id] = True
    if always_call:
        forward_hooks_always_called[handle.id] = True
    return handle


def register_module_full_backward_pre_hook(hook) -> RemovableHandle:
    """``hook(module, grad_output) -> None or new grad_output`` for every module."""
    return _register(backward_pre_hooks, hook)


def register_module_full_backward_hook(hook) -> RemovableHandle:
    """``hook(module, grad_input, grad_output) -> None or new grad_input`` for every
    module."""
    return _register(backward_hooks, hook)


def register_module_backward_hook(hook) -> RemovableHandle:
    """PyTorch's deprecated form; tracegrad runs it as a full backward hook
    (NOTE (legacy backward hooks) below)."""
    warn_legacy_backward_hook("register_module_backward_hook")
    return _register(backward_hooks, hook)


def warn_legacy_backward_hook(name: str) -> None:
    # NOTE (legacy backward hooks): PyTorch's non-full hook sees the gradients of the last
    # autograd node of forward (for Linear: addmm's bias, input and weight.T gradients), an
    # accident of how forward is written that tracegrad's different node graph cannot
    # reproduce; a full hook's grad_input (one entry per forward input) is the documented
    # replacement, so that is what runs, and the user is told so
    warnings.warn(f"{name}: tracegrad runs this deprecated hook as a full backward hook: "
                  f"grad_input holds the gradients with respect to the module's inputs (PyTorch's "
                  f"non-full hook gives the last operation's instead). Use "
                  f"register_full_backward_hook.", FutureWarning, stacklevel=3)
