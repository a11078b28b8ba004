"""Where compile time goes: seconds per compile phase, summed per thread.

The stages that do the work time themselves (lowering, rendering, LLVM's optimisation,
code generation, and loading planned programs and object code from the disk cache); a
caller that wants one compile's breakdown reads ``totals()`` before and after and
subtracts (``since``).  Only diagnostics read it: the
dump folder's index and ``TRACEGRAD_DEBUG`` logs.  Per thread, so two threads compiling
at once do not count each other's work.

>>> before = totals()
>>> with phase("lower"):
...     pass
>>> sorted(since(before))
['lower']
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Iterator

# The phases, in pipeline order (``tracegrad.compiler.entry`` adds "trace" and "passes").
PHASES = ("trace", "passes", "lower", "render", "llvm opt", "codegen", "load")
# A signature's fit as a symbolic program (``tracegrad.compiler.function``): the wall time
# of its probes at other sizes (traced, planned), guards and drivers, after the phases
# above of the call's own compile; in the dump index's table after them.
FIT_PHASE = "symbolic fit"

_local = threading.local()


def totals() -> dict[str, float]:
    """This thread's seconds per phase since it started (a copy)."""
    return dict(_table())


def _table() -> dict[str, float]:
    table = getattr(_local, "table", None)
    if table is None:
        table = _local.table = {}
    return table


def add(name: str, seconds: float) -> None:
    table = _table()
    table[name] = table.get(name, 0.0) + seconds


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as phase ``name`` (nested phases are each counted in full)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        add(name, time.perf_counter() - start)


def since(before: dict[str, float]) -> dict[str, float]:
    """Seconds per phase spent by this thread since ``before = totals()``."""
    now = _table()
    return {k: v - before.get(k, 0.0) for k, v in now.items() if v - before.get(k, 0.0) > 0}
