"""``autograd.profiler``: per-op counts and CPU times, PyTorch's ``profile`` and
``record_function``.

>>> import tracegrad as torch
>>> from tracegrad.autograd.profiler import profile, record_function
>>> x = torch.ones(4, 4, requires_grad=True)
>>> with profile() as prof:
...     with record_function("step"):
...         (x @ x).sum().backward()
>>> counts = {e.key: e.count for e in prof.key_averages()}
>>> counts["step"], counts["matmul"], counts["MatmulBackward"]  # x @ x, then 2 in backward
(1, 3, 1)

NOTE (how ops are timed): every tensor operation runs through one primitive record
(``_primitives.registry.PRIMITIVES``) whose ``eager`` kernel the dispatcher calls, and
the backward engine calls each record's ``vjp``. While a profile is active those two
attributes of every record are replaced by timing wrappers (and restored when the last
active profile ends), so each event is one primitive's NumPy kernel (``add``, ``matmul``)
or one derivative rule (``MatmulBackward``, whose own ops nest inside it). The wrappers are
process-wide: ops run by other threads during the profile are recorded too, each on its
own thread's stack. Compiled functions run fused kernels, not primitives: they appear only
through ``record_function`` ranges around them.
"""
from __future__ import annotations

import functools
import json
import threading
import time

from .._primitives import PRIMITIVES

__all__ = ["profile", "record_function", "FunctionEvent", "FunctionEventAvg", "EventList"]


class FunctionEvent:
    """One timed range: an op, a derivative rule or a ``record_function`` block."""

    __slots__ = ("name", "thread", "start_ns", "end_ns", "child_ns", "input_shapes")

    def __init__(self, name: str, thread: int, start_ns: int, input_shapes=None) -> None:
        self.name, self.thread, self.start_ns = name, thread, start_ns
        self.end_ns = start_ns
        self.child_ns = 0
        self.input_shapes = input_shapes

    key = property(lambda self: self.name)
    cpu_time_total = property(lambda self: (self.end_ns - self.start_ns) / 1e3)  # µs
    self_cpu_time_total = property(lambda self: (self.end_ns - self.start_ns - self.child_ns)
                                   / 1e3)

    def __repr__(self) -> str:
        return f"<FunctionEvent {self.name} {self.cpu_time_total:.1f}us>"


class FunctionEventAvg:
    """Events with the same key (and input shapes, when grouped by them), summed."""

    def __init__(self, key: str, input_shapes=None) -> None:
        self.key, self.input_shapes = key, input_shapes
        self.count = 0
        self.cpu_time_total = 0.0
        self.self_cpu_time_total = 0.0

    def add(self, event) -> None:
        self.count += getattr(event, "count", 1)
        self.cpu_time_total += event.cpu_time_total
        self.self_cpu_time_total += event.self_cpu_time_total

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / self.count if self.count else 0.0

    def __repr__(self) -> str:
        return (f"<FunctionEventAvg key={self.key} count={self.count} "
                f"cpu_time_total={self.cpu_time_total:.1f}us>")


class EventList(list):
    """A list of events (or averages) that prints as PyTorch's table."""

    def table(self, sort_by: str | None = None, row_limit: int = 100, header=None,
              max_name_column_width: int = 55, **unused) -> str:
        rows = list(self)
        if sort_by:
            key = sort_by
            if not rows or not hasattr(rows[0], key):
                raise AttributeError(f"table: cannot sort by {sort_by!r}; use one of "
                                     f"cpu_time_total, self_cpu_time_total, cpu_time, count")
            rows.sort(key=lambda e: getattr(e, key), reverse=True)
        if row_limit is not None and row_limit > 0:
            rows = rows[:row_limit]
        total_self = sum(e.self_cpu_time_total for e in self) or 1.0
        width = min(max([len("Name")] + [len(e.key) for e in rows]), max_name_column_width)
        cols = ["Self CPU %", "Self CPU", "CPU total", "CPU time avg", "# of Calls"]
        line = "-" * (width + 2 + 15 * len(cols))
        out = [line, "Name".ljust(width + 2) + "".join(c.rjust(15) for c in cols), line]
        for e in rows:
            count = getattr(e, "count", 1)
            cells = [f"{100 * e.self_cpu_time_total / total_self:.2f}%",
                     _fmt_us(e.self_cpu_time_total), _fmt_us(e.cpu_time_total),
                     _fmt_us(e.cpu_time_total / count), str(count)]
            out.append(e.key[:width].ljust(width + 2) + "".join(c.rjust(15) for c in cells))
        out.append(line)
        out.append(f"Self CPU time total: {_fmt_us(total_self)}")
        return "\n".join(out)

    def total_average(self) -> FunctionEventAvg:
        total = FunctionEventAvg("Total")
        for e in self:
            total.add(e)
        return total

    def __str__(self) -> str:
        return self.table()


def _fmt_us(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


# ---- recording ----------------------------------------------------------------------------
_lock = threading.Lock()
_active: list = []          # profiles recording now
_originals: dict = {}       # primitive -> (eager, vjp) while wrapped
_local = threading.local()  # per-thread stack of open events


def _open(name: str, shapes=None) -> FunctionEvent | None:
    if not _active:
        return None
    event = FunctionEvent(name, threading.get_ident(), time.perf_counter_ns(), shapes)
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    stack.append(event)
    return event


def _close(event: FunctionEvent | None) -> None:
    if event is None:
        return
    event.end_ns = time.perf_counter_ns()
    stack = _local.stack
    if stack and stack[-1] is event:
        stack.pop()
    if stack:
        stack[-1].child_ns += event.end_ns - event.start_ns
    for prof in list(_active):
        prof._events.append(event)


def _shapes(args) -> list:
    return [list(a.shape) if hasattr(a, "shape") else [] for a in args]


def _timed_eager(name: str, fn):
    @functools.wraps(fn)
    def eager(*args, **attrs):
        shapes = _shapes(args) if any(p.record_shapes for p in _active) else None
        event = _open(name, shapes)
        try:
            return fn(*args, **attrs)
        finally:
            _close(event)
    return eager


def _timed_vjp(name: str, fn):
    @functools.wraps(fn)
    def vjp(g, node):
        event = _open(name)
        try:
            return fn(g, node)
        finally:
            _close(event)
    return vjp


def _backward_name(prim) -> str:
    return "".join(p.title() for p in prim.name.split("_")) + "Backward"


def _install() -> None:
    for prim in PRIMITIVES.values():
        _originals[prim] = (prim.eager, prim.vjp)
        prim.eager = _timed_eager(prim.name, prim.eager)
        if prim.vjp is not None:
            prim.vjp = _timed_vjp(_backward_name(prim), prim.vjp)


def _uninstall() -> None:
    for prim, (eager, vjp) in _originals.items():
        prim.eager, prim.vjp = eager, vjp
    _originals.clear()


class profile:
    """Context manager recording every op run inside it (see NOTE (how ops are timed)).
    ``use_cuda``/``use_device`` and the other PyTorch options are accepted; times are CPU
    wall times of the NumPy kernels (GPU work is not timed separately)."""

    def __init__(self, enabled: bool = True, *, use_cuda: bool = False, use_device=None,
                 record_shapes: bool = False, with_flops: bool = False,
                 profile_memory: bool = False, with_stack: bool = False,
                 with_modules: bool = False, use_kineto: bool = False, use_cpu: bool = True,
                 **unused) -> None:
        self.enabled = enabled
        self.record_shapes = record_shapes
        self._events: list = []
        self._entered = False

    def __enter__(self):
        if not self.enabled:
            return self
        if self._entered:
            raise RuntimeError("Profiler context manager is not reentrant")
        self._entered = True
        with _lock:
            if not _active:
                _install()
            _active.append(self)
        return self

    def __exit__(self, *exc) -> bool:
        if not self.enabled:
            return False
        with _lock:
            _active.remove(self)
            if not _active:
                _uninstall()
        return False

    @property
    def function_events(self) -> EventList:
        return EventList(sorted(self._events, key=lambda e: e.start_ns))

    def events(self) -> EventList:
        return self.function_events

    def key_averages(self, group_by_input_shape: bool = False,
                     group_by_stack_n: int = 0) -> EventList:
        groups: dict = {}
        for e in self.function_events:
            shapes = str(e.input_shapes) if group_by_input_shape else None
            avg = groups.get((e.name, shapes))
            if avg is None:
                avg = groups[(e.name, shapes)] = FunctionEventAvg(e.name, e.input_shapes
                                                                  if shapes else None)
            avg.add(e)
        return EventList(groups.values())

    def table(self, *args, **kwargs) -> str:
        return self.key_averages().table(*args, **kwargs)

    def total_average(self) -> FunctionEventAvg:
        return self.key_averages().total_average()

    @property
    def self_cpu_time_total(self) -> float:
        return sum(e.self_cpu_time_total for e in self._events)

    def export_chrome_trace(self, path: str) -> None:
        """Write the events as a Chrome trace (open in chrome://tracing or Perfetto)."""
        events = self.function_events
        t0 = min((e.start_ns for e in events), default=0)
        trace = [{"name": e.name, "ph": "X", "cat": "cpu_op", "pid": 0, "tid": e.thread,
                  "ts": (e.start_ns - t0) / 1e3, "dur": e.cpu_time_total} for e in events]
        with open(path, "w") as f:
            json.dump({"traceEvents": trace}, f)

    def __str__(self) -> str:
        return self.table()


class record_function:
    """A named range in the profile (``with record_function("forward"):``), also usable
    as a decorator. It does nothing when no profile is active."""

    def __init__(self, name: str, args: str | None = None) -> None:
        self.name = name
        self._event = None

    def __enter__(self):
        self._event = _open(self.name)
        return self

    def __exit__(self, *exc) -> bool:
        _close(self._event)
        self._event = None
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with record_function(self.name):
                return fn(*args, **kwargs)
        return wrapper
