"""What the numbers a trace follows share: a symbolic int argument (``SymArg``,
int_args.py) and a symbolic size (``SymInt``, ``SymFloat``, symint.py).  Each knows its
plain value ``_v`` and records, through ``_escaped(what)``, a use of it that no method
follows (an ESCAPE); here are the uses that are escapes for all of them, and the
recorders open on this thread (what an escape nobody's method saw reaches)."""
from __future__ import annotations

import threading

_OPEN = threading.local()   # .recorders: the recorders this thread opened (some closed)


class Followed:
    """A copy is the same followed value; printing, converting or pickling it, or asking
    it for one of its plain type's other methods (``bit_length``, ``hex``, ...) is an
    escape answered by the plain value.  (``__index__`` is the integers' own: a SymFloat
    must not pass for an index.)"""

    __slots__ = ()
    _v: object

    def _escaped(self, what: str):
        raise NotImplementedError

    def type_taken(self) -> str | None:
        """``type(self)`` was taken (NOTE (type of a followed value) in int_args.py): an
        escape; a reason where the trace must run again on plain values."""
        self._escaped("type()")
        return None

    def __repr__(self):
        return repr(self._escaped("repr()"))

    __str__ = __repr__

    def __int__(self):
        return int(self._escaped("int()"))

    def __float__(self):
        return float(self._escaped("float()"))

    def __complex__(self):
        return complex(self._escaped("complex()"))

    def __format__(self, spec):
        return format(self._escaped("formatting"), spec)

    def __reduce__(self):
        value = self._escaped("pickling")
        return (type(value), (value,))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __getattr__(self, name: str):
        if name.startswith("__") or not hasattr(type(self._v), name):
            raise AttributeError(name)   # (``hasattr(n, "shape")`` asks nothing of it)
        return getattr(self._escaped(f".{name}"), name)


def opened(recorder) -> None:
    """``recorder`` (with ``active`` and ``escape_all(what)``) follows values on this
    thread until it closes (``active`` False)."""
    recorders = getattr(_OPEN, "recorders", None)
    if recorders is None:
        recorders = _OPEN.recorders = []
    recorders[:] = [r for r in recorders if r.active]
    recorders.append(recorder)


def escape_all(what: str) -> str | None:
    """A use of the followed values that none of their methods saw (NOTE (type of a
    followed value) in int_args.py): every recorder open on this thread escapes.  A
    reason where a trace must run again on plain values."""
    reasons = [recorder.escape_all(what) for recorder in getattr(_OPEN, "recorders", ())
               if recorder.active]
    return next(filter(None, reasons), None)
