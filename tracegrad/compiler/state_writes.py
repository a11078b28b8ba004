"""Writes the traced function makes into Python state that outlives the call: a global
list it appends to, ``cfg["last"] = loss``, ``self.n = self.n + 1`` (NOTE (state writes)).
access_paths.Reads records them while the trace runs; ``refuse`` ends the trace where
replaying the program would not do what eager mode does."""
from __future__ import annotations

from collections import deque

from .._tensor import Tensor
from ..nn import Module
from .errors import TraceError
from .python_guards import _PLAIN, plain_key
from .trace_value import TraceValue

# NOTE (state writes): a trace runs the function's Python once; each later call replays
# the program only, so a write into an object that outlives the call happens at the trace
# and never again (NOTE (state the function writes) in access_paths.py: a step counter
# counts traces). Two cases would then return what eager mode never does, and run eagerly
# instead (TraceError: the usual warning; fullgraph=True raises):
#  - the trace reads back what it wrote (``self.n = self.n + 1; return x * self.n``,
#    ``log.append(1); return x + len(log)``): the program bakes in this trace's value,
#    while eagerly each call sees the one before it grown (unless the trace left every
#    place it wrote as it found it: ``self.cache = None`` then ``if self.cache is None``
#    reads what each call writes); and a read whose value changed
#    between two reads in the trace (``ns.n += 1`` then ``ns.n``), which the guards, taken
#    from the first read, would not notice;
#  - the trace stored one of its own tensors there (``losses.append(loss)``,
#    ``ns.last = y``): the object would keep the trace's placeholder, a tensor with no
#    value (printing it raises) that no later call replaces. Modules refuse that store
#    themselves (Module.__setattr__). The placeholders are taken out again before the
#    eager run repeats the writes with real tensors.
# Only writes from user frames into objects reached from a global, a closure variable or
# the call's own non-tensor arguments (``self`` of a compiled method or module) are seen:
# a list the function made is its own.


def given_objects(fn, args, kwargs) -> dict:
    """The objects a call hands the function that it sees as themselves, by id (pytree
    rebuilds lists, tuples and dicts around the tensors; everything else is passed on)."""
    found = {}
    bound = getattr(fn, "__self__", None)
    if bound is not None:
        found[id(bound)] = bound
    stack = [args, kwargs]
    while stack:
        value = stack.pop()
        if isinstance(value, (list, tuple)):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif not isinstance(value, (Tensor, int, float, str, bool)) and value is not None:
            found[id(value)] = value
    return found


def _traced(value) -> bool:
    """A tensor of the trace itself (a stand-in, or a result stored by the function):
    never worth a guard, and holding it would keep the traced graph alive."""
    return isinstance(value, Tensor) and isinstance(value._data, TraceValue)


def changed(kind: str, old, new) -> bool:
    """Whether a second read of the same place saw another value than the first."""
    if kind == "*":
        return old != new   # frozen contents (plain values and _Same wrappers)
    return not _same(old, new)


class StateWrites:
    """The writes one trace made into outside objects: ``keys`` of the places written
    (``(id(base), ".", name)``, ``(id(base), "[]", key)``, ``(id(base), "*", None)`` for
    a container changed as a whole), the bases written (``bases``), every outside object
    the function's chains reached (``touched``: id -> (object, path)) and the first
    read-back found (``reread``)."""

    def __init__(self) -> None:
        self.keys: set = set()
        self.bases: set = set()
        self.touched: dict = {}
        self.reread: str | None = None
        self._restores: list = []
        self.keeps: list = []   # whether each written place holds what it held before
        # the objects known to outlive the call (held, so that their ids stay theirs):
        # the call's own, and what a global, an outer closure variable or one of them
        # reaches
        self.outside: dict = {}

    def reached(self, obj) -> bool:
        """``obj`` is reachable from outside the call; returns True."""
        self.outside[id(obj)] = obj
        return True

    def touch(self, obj, path: str) -> None:
        if id(obj) not in self.touched:
            self.touched[id(obj)] = (obj, path)

    def store(self, base, kind: str, key, path: str) -> None:
        """Before the write runs (its line's start): what it changes is kept, so that
        ``refuse`` can put it back before the call runs eagerly."""
        self.touch(base, path)
        k = (id(base), kind, key)
        if k not in self.keys:
            self.keys.add(k)
            self._restores.append(_snapshot(base, kind, key))
            self.keeps.append(_keeps(base, kind, key))
        self.bases.add(id(base))

    def check_read(self, k: tuple, path: str) -> None:
        """A read of place ``k`` (as Reads.seen keys it), after or before a write."""
        if self.reread is None and self.bases and (
                k in self.keys or (k[0], "*", None) in self.keys
                or (k[1] == "*" and k[0] in self.bases)):
            self.reread = path

    def undo(self) -> None:
        """Put back what the trace wrote (it failed, or runs eagerly: the eager run makes
        the writes again, once) and take its tensors out of what it reached."""
        restores, self._restores = self._restores, []
        for restore in reversed(restores):
            if restore is not None:
                restore()
        for obj, _ in self.touched.values():
            _scrub(obj)

    def refuse(self, name: str) -> None:
        """Raise TraceError where replaying the program would differ from eager mode,
        first taking this trace's tensors out of the objects they were stored into."""
        # NOTE: a large container the function only read (a dataset list it indexes) is
        # not scanned at every trace; one it wrote into always is
        leaked = [path for key, (obj, path) in self.touched.items()
                  if (key in self.bases or _size(obj) <= _SCANNED) and _holds_traced(obj)]
        if not leaked and (self.reread is None or all(keeps() for keeps in self.keeps)):
            return   # (``self.cache = None`` then ``self.cache``: each call does the same)
        self.undo()
        if leaked:
            raise TraceError(f"{name} stores a tensor computed in the compiled function "
                             f"into {leaked[0]}, which outlives the call: a compiled call "
                             f"runs the program only, and would leave the trace's "
                             f"placeholder there (keep a number with .item(), or return "
                             f"the tensor)")
        if self.reread is not None:
            raise TraceError(f"{name} reads {self.reread} after changing it itself: a "
                             f"compiled call would use the value this trace read, not the "
                             f"one the change leaves for the next call")


def _scrub(obj) -> None:
    """Take the trace's tensors out of ``obj`` (one level: items, attributes)."""
    if isinstance(obj, list):
        obj[:] = [v for v in obj if not _traced(v)]
    elif isinstance(obj, deque):
        kept = [v for v in obj if not _traced(v)]
        obj.clear()
        obj.extend(kept)
    elif isinstance(obj, set):
        obj.difference_update([v for v in obj if _traced(v)])
    else:
        own = _own_dict(obj)
        for k in [k for k, v in own.items() if _traced(v)] if own is not None else ():
            del own[k]


def _own_dict(obj) -> dict | None:
    """The dict holding ``obj``'s items or attributes (a module's are its members, which
    the trace reaches through their own paths): None where there is none."""
    own = obj if isinstance(obj, dict) else (
        None if isinstance(obj, Module) else getattr(obj, "__dict__", None))
    return own if type(own) is dict else None


_MISSING = object()


def _snapshot(base, kind: str, key):
    """A function that puts ``base``'s place back as it is now (None: not undoable)."""
    try:
        if kind == "*":
            if isinstance(base, (list, deque)):
                items = list(base)
                return lambda: (base.clear(), base.extend(items))
            if isinstance(base, (dict, set)):
                items = base.copy()
                return lambda: (base.clear(), base.update(items))
            return None
        if kind == "[]":
            if isinstance(base, dict):
                old = base.get(key, _MISSING)
                return lambda: base.pop(key, None) if old is _MISSING \
                    else base.__setitem__(key, old)
            if isinstance(base, list):
                items = list(base)
                return lambda: base.__setitem__(slice(None), items)
            return None
        own = getattr(base, "__dict__", None)
        if type(own) is not dict:
            return None
        old = own.get(key, _MISSING)
        return lambda: own.pop(key, None) if old is _MISSING else own.__setitem__(key, old)
    except Exception:  # noqa: BLE001 - an odd container: left as the trace left it
        return None


def _holds_traced(obj) -> bool:
    if isinstance(obj, (list, deque, set)):
        return any(map(_traced, obj))
    own = _own_dict(obj)
    return own is not None and any(map(_traced, own.values()))


def _keeps(base, kind: str, key):
    """A function telling whether ``base``'s place holds again what it holds now."""
    if kind == "*" and isinstance(base, dict):
        def read():
            return list(base.items())
    elif kind == "*" and isinstance(base, (list, deque, set)) or (
            kind == "[]" and isinstance(base, list)):
        def read():
            return list(base)
    elif kind == "[]" and isinstance(base, dict):
        def read():
            return base.get(key, _MISSING)
    elif kind == "." and type(getattr(base, "__dict__", None)) is dict:
        def read():
            return base.__dict__.get(key, _MISSING)
    else:
        return lambda: False
    try:
        old = read()
    except Exception:  # noqa: BLE001 - an odd container: taken as changed
        return lambda: False
    return lambda: _same(read(), old)


def _same(a, b) -> bool:
    if type(a) is list and type(b) is list or type(a) is tuple and type(b) is tuple:
        return len(a) == len(b) and all(map(_same, a, b))
    if a is b:
        return True
    return type(a) is type(b) and _plain(a) and plain_key(a) == plain_key(b)


def _plain(value) -> bool:
    return type(value) in _PLAIN or (type(value) is tuple and all(map(_plain, value)))


_SCANNED = 4096   # items of a container only read that the leak check looks through


def _size(obj) -> int:
    own = obj if isinstance(obj, (list, deque, set, dict)) else getattr(obj, "__dict__", None)
    try:
        return len(own) if own is not None else 0
    except TypeError:
        return 0
