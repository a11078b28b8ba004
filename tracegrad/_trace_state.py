"""Whether a compile trace is recording, per thread (as grad mode is).

NOTE (trace state): this is the one place that knows; the dispatcher reads ``state.tracer``
on every op, and every other question ("am I tracing?", "tell the tracer about this write")
goes through the functions in ``tracegrad._dispatch`` that read it. A trace in one thread
never sees another thread's eager ops, and the other thread's ops never see the trace.
"""
from __future__ import annotations

import contextlib
import threading


class _TraceState(threading.local):
    tracer = None  # the active tracegrad.compiler.tracer.Tracer of this thread, or None


state = _TraceState()

# How many threads are tracing right now. The dispatcher reads this plain global first, so
# eager code pays for the thread-local lookup only while some thread traces.
active_traces = 0
_lock = threading.Lock()


def start(tracer) -> None:
    """Make ``tracer`` this thread's active one."""
    global active_traces
    with _lock:
        active_traces += 1
    state.tracer = tracer


def stop() -> None:
    global active_traces
    state.tracer = None
    with _lock:
        active_traces -= 1


def is_tracing() -> bool:
    """Whether this thread is recording a compile trace."""
    return bool(active_traces) and state.tracer is not None


@contextlib.contextmanager
def untraced_values():
    """This thread's trace (if any) records nothing while the block runs: for NumPy work on
    concrete values inside an op (a view's storage positions), not graph values."""
    tracer = state.tracer
    state.tracer = None
    try:
        yield
    finally:
        state.tracer = tracer


def note_new_tensor(t) -> None:
    """Tell this thread's tracer, if any, that ``t`` was made during the trace (a local of
    the traced function: an in-place write to it is never written back after a call)."""
    tracer = state.tracer
    if tracer is not None:
        tracer.note_born(t)


def rebind_data(t, value) -> None:
    """``t`` now holds ``value``. During a trace, an in-place write: this thread's tracer
    hears of it, to restore ``t`` when the trace ends and to write the final value back
    into ``t``'s storage at every call of the compiled function."""
    tracer = state.tracer
    if tracer is not None:
        tracer.note_rebind(t, value)
    t._data = value


def made_from_sizes(shape, make, *args):
    """``make(*args)``: a tensor of ``shape`` that a factory builds from sizes in ``args``
    (``zeros(n, 3)``, ``arange(n)``).  In a compile guard trace, where a size may be
    symbolic, the tracer makes it (NOTE (tensors made from a size) in
    compiler/made_sizes.py)."""
    tracer = state.tracer if active_traces else None
    hook = None if tracer is None else tracer.made_from_sizes
    return make(*args) if hook is None else hook(shape, make, args)
