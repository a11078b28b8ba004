"""An optimizer's parameter group: a dict that refuses to be written inside a compile trace.

NOTE (param groups written in a trace): a compiled function replays its tensor work, not
its Python side effects (optim/_hooks.py), and an optimizer's options are runtime inputs
read from the group at every call (optim/_capture.py). So a function that sets
``group["lr"]`` itself (an lr schedule in the step: ``g["lr"] = 0.1 * 0.5 ** epoch``, or
``scheduler.step()``) was replayed without the write: the step read whatever value the
group held, the last trace's, and the weights drifted from eager's (0.083 after epochs 0,
1, 2, 1, 3, 0 with SGD, under every ``dynamic`` and with ``static_argnames``). A write to
a group made before the trace began now raises TraceError, so that signature runs eagerly
with a warning naming the line (or raises under ``fullgraph=True``): what eager does, never
a stale option. A write outside any trace costs one attribute read. Groups made during the
trace (an optimizer built inside the function) may be written while it builds them.
"""
from __future__ import annotations

from .. import _trace_state
from .._errors import TraceError


def _check_write(group: "ParamGroup", key) -> None:
    if not _trace_state.active_traces:
        return
    tracer = _trace_state.state.tracer
    if tracer is None or group._made_by is tracer:
        return
    raise TraceError(
        f"the function writes an optimizer's param_group[{key!r}], which a compiled replay "
        f"would not repeat (its option would keep the last trace's value): set it outside "
        f"the compiled function (before calling it), as an lr scheduler is stepped")


def check_writable(optimizer) -> None:
    """Raise TraceError now, before a scheduler's ``step()`` changes its own state (its
    epoch), where writing ``optimizer``'s groups would raise half way."""
    for group in optimizer.param_groups:
        if isinstance(group, ParamGroup):
            _check_write(group, "lr")


class ParamGroup(dict):
    """``{"params": [...], "lr": ..., ...}``: a plain dict to read, pickle and copy."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._made_by = _trace_state.state.tracer if _trace_state.active_traces else None

    def __setitem__(self, key, value) -> None:
        _check_write(self, key)
        super().__setitem__(key, value)

    def __delitem__(self, key) -> None:
        _check_write(self, key)
        super().__delitem__(key)

    def setdefault(self, key, default=None):
        if key not in self:
            _check_write(self, key)
        return super().setdefault(key, default)

    def update(self, *args, **kwargs) -> None:
        _check_write(self, "...")
        super().update(*args, **kwargs)

    def pop(self, key, *default):
        _check_write(self, key)
        return super().pop(key, *default)

    def __reduce__(self):   # pickled (tg.save, deepcopy) as what it is read as: a dict
        return (ParamGroup, (dict(self),))
