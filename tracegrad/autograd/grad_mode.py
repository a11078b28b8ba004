"""Grad mode: whether operations record the autograd graph.

``no_grad``, ``enable_grad`` and ``set_grad_enabled`` work as context managers and as
decorators, like PyTorch's.
"""
from __future__ import annotations

import functools
import threading


class _State(threading.local):
    enabled = True


state = _State()


def is_grad_enabled() -> bool:
    return state.enabled


class _GradMode:
    _target = True

    def __enter__(self):
        self._prev = state.enabled
        state.enabled = self._target
        return self

    def __exit__(self, *exc):
        state.enabled = self._prev
        return False

    def __call__(self, fn):
        target = self._target

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _Fixed(target):
                return fn(*args, **kwargs)
        return wrapper


class _Fixed(_GradMode):
    def __init__(self, target: bool) -> None:
        self._target = target


class no_grad(_GradMode):
    """Disable graph recording: ``with tracegrad.no_grad(): ...`` or ``@tracegrad.no_grad()``."""
    _target = False


class enable_grad(_GradMode):
    _target = True


class inference_mode(_GradMode):
    def __init__(self, mode: bool = True) -> None:
        self._target = not mode


class set_grad_enabled(_GradMode):
    """Like PyTorch: as a plain call it switches the mode at once; as a context manager
    or decorator it restores the previous mode afterwards."""

    def __init__(self, mode: bool) -> None:
        self._target = bool(mode)
        self._prev = state.enabled
        state.enabled = self._target

    def __enter__(self):
        return self

    def __call__(self, fn):
        state.enabled = self._prev  # used as a decorator: undo the immediate switch
        return super().__call__(fn)
