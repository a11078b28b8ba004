"""Tracegrad's own stretches of a compile trace run without the access-path recorder's
trace function, and every call back into the user's code runs with it again.

NOTE (untraced stretches): the recorder (compiler/access_paths.py) watches the user's
frames with ``sys.settrace``; on CPython 3.11 any trace function puts every frame on the
interpreter's slow tracing path, watched or not, and calls the trace function at each new
frame. A library module's forward, the autograd engine and a library optimizer's step
read nothing of the user's, so they ``pause()`` it; a call that may reach the user's
code (a forward, a hook, a custom Function, a closure) goes through ``user_call``, which
turns it back on for that call. Only the recorder pauses (it marks its trace function):
a debugger's or coverage's trace function set before keeps seeing every frame.
  Paused: a module call of a library class whose forward is the library's (not the
user's subclass, nor a forward set on the instance), the engine (``loss.backward()``
and the backward traced for a compiled function), a library optimizer's ``step``,
``cross_entropy`` and ``Tensor.__getitem__``, and each recorded op (_dispatch.py).
Frames the recorder sees in a trace, then: MLP SGD step 1361 -> 24, LSTM-cell forward of
20 steps + traced backward 14232 -> 119. Traced time (build_entry without codegen, A/B
interleaved in one process, medians of 15, load 8.5; before = only the op records
paused): MLP SGD step 2.90 -> 1.68 ms (1.65 with no recorder), CNN Adam step 6.97 ->
3.76 ms (3.71), LSTM-cell fwd+bwd 29.9 -> 15.4 ms (14.9), the lstm benchmark's 2-layer
nn.LSTM loss over its 4 lengths 163 -> 74 ms (73).
  Not seen (no user_call around them): the user's code an op calls implicitly from a
paused stretch (``__index__`` of an index object, ``__float__`` of an argument).
"""
from __future__ import annotations

import functools
import sys
import threading
from pathlib import Path

_gettrace, _settrace = sys.gettrace, sys.settrace
# tracegrad's folder with its "/": a user's tracegrad_demo.py beside it is not ours
PACKAGE_DIR = str(Path(__file__).resolve().parent) + "/"
_NOT_PAUSED = object()


class _Paused(threading.local):
    hook = None   # the recorder's trace function while it is paused in this thread


paused = _Paused()


def pause():
    """Turns the recorder off in this thread, if it is on; the token for ``resume``."""
    hook = _gettrace()
    if hook is None or not getattr(hook, "records_reads", False):
        return _NOT_PAUSED
    before = paused.hook
    paused.hook = hook
    _settrace(None)
    return before


def resume(token) -> None:
    """Undoes the ``pause()`` that returned ``token``."""
    if token is not _NOT_PAUSED:
        hook = paused.hook
        paused.hook = token
        _settrace(hook)


def user_call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, with the recorder on if a tracegrad stretch paused it."""
    hook = paused.hook
    if hook is None or _gettrace() is not None:
        return fn(*args, **kwargs)
    _settrace(hook)
    try:
        return fn(*args, **kwargs)
    finally:
        _settrace(None)


def untraced(fn):
    """``fn`` (a function of tracegrad's that calls none of the user's code) run with the
    recorder paused, when it is on; eagerly, one wrapper frame more a call."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        if _gettrace() is None:
            return fn(*args, **kwargs)
        token = pause()
        try:
            return fn(*args, **kwargs)
        finally:
            resume(token)
    return run


def library_method(obj, method) -> bool:
    """Whether ``method`` (``obj.forward``, ``optimizer.step``) is tracegrad's own code on
    an object of tracegrad's own class: not the user's subclass, nor a function the user
    set on the instance or patched into the class."""
    code = getattr(method, "__code__", None)
    return (code is not None and code.co_filename.startswith(PACKAGE_DIR)
            and type(obj).__module__.startswith("tracegrad."))
