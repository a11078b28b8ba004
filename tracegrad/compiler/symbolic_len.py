"""``len(x)`` of a tensor whose first dim is symbolic, in a guard trace.

NOTE (len of a symbolic dim): CPython's ``len()`` turns whatever ``__len__`` returns into
a new plain int (through ``__index__``: an escape, NOTE (guards instead of a retrace) in
symint.py), so ``x * len(x)`` or ``x.sum(0) / len(x)`` retraced every size.  While a
guard trace runs, ``builtins.len`` is one that gives a tensor's first size as it is (the
``SymInt``, followed) and defers to the real ``len`` for everything else, which it then
equals; afterwards the real one is back.  Python code in every thread looks ``len`` up in
``builtins`` at each call; others see the same answers (their tensors hold no SymInt), a
little slower, for the few milliseconds of the trace.  Code that bound ``len`` elsewhere
(``from builtins import len``) still escapes: safe, only not followed.
"""
from __future__ import annotations

import builtins
import contextlib
import threading

from .._tensor import Tensor
from .symint import SymInt

_REAL_LEN = builtins.len
_lock = threading.Lock()
_users = 0


def _len(obj, /):
    if isinstance(obj, Tensor):
        shape = obj._data.shape
        if shape and type(shape[0]) is SymInt:
            return shape[0]
    return _REAL_LEN(obj)


@contextlib.contextmanager
def len_follows_s0():
    """``len()`` gives a tensor's symbolic first size while this holds (nested, threads)."""
    global _users
    with _lock:
        _users += 1
        builtins.len = _len
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if not _users:
                builtins.len = _REAL_LEN
