"""Guards on what a trace read through Python objects and containers: ``cfg["scale"]``,
``h.t``, ``self.cfg.scale``, ``weights[0]``, a list it iterated. Recorded while the
function runs in the trace, checked at each call (NOTE (access paths))."""
from __future__ import annotations

import builtins
from collections import deque
import operator
import sys
import sysconfig
from functools import partial
from pathlib import Path
from types import BuiltinFunctionType, FunctionType, MemberDescriptorType, MethodType, \
    ModuleType, SimpleNamespace

from .._tensor import Tensor
from .._untraced import PACKAGE_DIR
from ..nn import Module
from .errors import TraceError
from .followed import Followed, escape_all
from .python_guards import described, global_names, plain_key, plain_keys
from .read_chains import MUTATORS, chains
from .state_writes import StateWrites, _plain, _traced, changed

# NOTE (access paths): a trace bakes in what the function read through Python objects:
# a number becomes a constant of the program, a tensor a captured input found by
# identity. The guards of python_guards.py compare a global or closure variable itself,
# so ``cfg["scale"] = 3.0`` or ``h.t = torch.full(...)`` replayed the old value. Comparing
# a container's whole contents instead would retrace a step that appends to a global
# loss log at every call, so, as dynamo does, each read the trace made is recorded as it
# happens and guarded alone: ``base[key]``, ``base.attr``, ``base.get(key)``,
# ``getattr(base, name)`` by value for plain numbers, strings, None and tuples of them,
# by identity for anything else, and a container the code iterated, indexed by an
# expression or handed to a call (``for w in self.ws``, ``len(log)``, ``cfg[names[0]]``)
# by its contents; a key or attribute found missing (``except KeyError``, ``hasattr``)
# stays missing, and a helper function read keeps its closure cells. A base is anchored
# as the object itself: the path that reached it is guarded read by read, so the chain
# holds as a whole.
#   Reads are seen with sys.settrace while the function (and the backward traced for
# it, which runs tensor hooks) runs in the trace, in frames outside tracegrad, the
# standard library and site-packages (which own their state and its guards): the
# chains of read_chains.py are evaluated on the live frame at the start of their line
# (NOTE (line events)). Its cost is the trace's alone (Python 3.11,
# best of 15, load 7): an MLP SGD step traced in 1.36 ms took 3.54 ms recording (3.08
# with a no-op settrace), an LSTM-like forward of 20 steps 44.7 -> 71.2 ms; tracegrad's
# own stretches now run with it paused (NOTE (untraced stretches) in _untraced.py: the
# MLP step and the LSTM 2-3% over no recorder). A call checks one guard for all reads:
# ~0.4 µs, plus 0.1-0.2 µs a read.
#   Not seen: a read in C or library code (``vars(obj)``, ``getattr(obj, names[0])``),
# a closure cell of a function the traced one calls that was reached other than as a
# value read (a method's closure), and user code that runs outside the trace.

# folders, each with its "/": a user's tracegrad_demo.py beside the package is user code
_ROOT = Path(PACKAGE_DIR).parent
_SKIPPED = (PACKAGE_DIR, str(_ROOT / "codegen") + "/", str(_ROOT / "runtime") + "/",
            sysconfig.get_paths()["stdlib"] + "/")
_CODE = (FunctionType, BuiltinFunctionType, MethodType, type, ModuleType)
_CONTAINERS = (list, dict, set, deque)
_LIBRARY_ROOTS = frozenset(getattr(sys, "stdlib_module_names", ())) | {"tracegrad", "numpy"}
_MISSING = object()
_MEMBER = object()   # a module's parameter, buffer or submodule
# the C attribute lookups that run no code of the object's own (SimpleNamespace's is
# object's, but a slot of its own)
_GENERIC_GETATTRIBUTE = (object.__getattribute__, ModuleType.__getattribute__,
                         SimpleNamespace.__getattribute__)
_BUILTIN_GETITEM = (dict.__getitem__, list.__getitem__, tuple.__getitem__)


def _owned_elsewhere(base) -> bool:
    """A tensor, or an object of tracegrad's own classes (an optimizer, a library
    module): their state has guards of its own (tracer.py, python_guards.py)."""
    if isinstance(base, ModuleType):
        return base.__name__.partition(".")[0] in _LIBRARY_ROOTS
    return isinstance(base, Tensor) or type(base).__module__.startswith("tracegrad.")


def _class_attribute(tp, name):
    for klass in tp.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return _MISSING


def _attribute(base, name):
    """``(getter, value)`` of ``base.name`` when reading it runs no code (an instance or
    class attribute, a slot): ``getter`` is None for a method (its call is a frame of its
    own). ``(None, _MISSING)`` when it cannot be read so (a property, ``__getattr__``)."""
    tp = type(base)
    if tp.__getattribute__ not in _GENERIC_GETATTRIBUTE:
        return None, _MISSING
    found = _class_attribute(tp, name)
    if found is not _MISSING and hasattr(type(found), "__set__"):
        if type(found) is not MemberDescriptorType:
            return None, _MISSING   # a property: its getter's own reads are recorded
        try:
            return partial(getattr, base, name), found.__get__(base, tp)
        except AttributeError:
            return None, _MISSING
    own = getattr(base, "__dict__", None)
    if type(own) is dict and name in own:
        return partial(getattr, base, name), own[name]
    if found is _MISSING and isinstance(base, Module):
        for store in (own.get("_parameters", ()), own.get("_buffers", ()),
                      own.get("_modules", ())):
            if name in store:   # a member: followed (``self.sub.cfg.scale``), not guarded
                return _MEMBER, store[name]   # here (NOTE (module members))
    if found is _MISSING or hasattr(type(found), "__get__"):
        return None, _MISSING   # a method, or a value __getattr__ makes
    return partial(getattr, base, name), found


def _item(base, key):
    if type(base).__getitem__ not in _BUILTIN_GETITEM:
        return None, _MISSING   # a __getitem__ in Python: its reads are recorded there
    try:
        if isinstance(base, dict) and key not in base:
            return None, _MISSING   # (never a defaultdict's __missing__: it would insert)
        return partial(operator.getitem, base, key), base[key]
    except (KeyError, IndexError, TypeError):
        return None, _MISSING


# NOTE (contents at any depth): a container the function iterated is compared item by
# item at every depth: the items of ``W[0][0][0]`` were compared by identity below the
# third level, so an in-place edit of an innermost list replayed the old values. A cycle
# (a list holding itself) is compared by identity where it closes. The comparison costs
# ~0.2-0.4 us an item each call (medians of 7, load 2.2, 2026-12-02: a flat list of
# 10,000 floats 1.9 ms, 2.3 before; 100 x 10 x 10 floats 3.6 ms, 3.7 before; a 3-item
# list 2.1 us either way), so a read whose contents pass MAX_FROZEN_ITEMS (~20-40 ms a
# call) is no guard a call should pay: the trace refuses it and the signature runs
# eagerly, with a warning naming the container.
MAX_FROZEN_ITEMS = 100_000


class _TooLarge(Exception):
    pass


def _frozen(value, budget: list | None = None, path: tuple = ()):
    """``value``'s contents as a value that compares equal while they are the same:
    plain values by value, containers item by item (at any depth, NOTE (contents at any
    depth)), the rest by identity. Raises _TooLarge past ``budget[0]`` items."""
    if _plain(value):
        return plain_key(value)   # NOTE (plain keys) in python_guards: 2 is not 2.0
    if budget is None:
        budget = [MAX_FROZEN_ITEMS]
    if id(value) not in path and not _owned_elsewhere(value):
        inner = path + (id(value),)
        # read with the builtin types' own methods: a subclass's code never runs here
        if isinstance(value, (list, tuple)):
            items = list.copy(value) if isinstance(value, list) else tuple.__getitem__(
                value, slice(None))
            return (type(value), _frozen_items(items, budget, inner))
        if isinstance(value, dict):
            items = list(dict.items(value))
            return (type(value), tuple(zip([k for k, _ in items], _frozen_items(
                [v for _, v in items], budget, inner))))
        if type(value) is deque:   # its C iterator runs no code of the user's
            return (deque, _frozen_items(list(value), budget, inner))
        if type(value) in (set, frozenset) and all(map(_plain, value)):
            budget[0] -= len(value)
            if budget[0] < 0:
                raise _TooLarge
            return (type(value), frozenset(value))
    return _Same(value)


def _frozen_items(items: list, budget: list, path: tuple) -> tuple:
    budget[0] -= len(items)
    if budget[0] < 0:
        raise _TooLarge
    return tuple([_frozen(v, budget, path) for v in items])


class _Same:
    __slots__ = ("obj",)

    def __init__(self, obj) -> None:
        self.obj = obj

    def __eq__(self, other) -> bool:
        return type(other) is _Same and other.obj is self.obj

    __hash__ = None


class Reads:
    """The reads one trace made: ``{(id(base), kind, key): (getter, value, path)}`` with
    ``kind`` "." / "[]" / "get" (the value read) or "*" (the contents of a container)."""

    def __init__(self) -> None:
        self.seen: dict = {}
        self.unsafe: str | None = None
        self.retrace: str | None = None   # NOTE (type of a followed value) in int_args.py
        # ids of the objects reached from a global or closure variable, or read: a local
        # container not among them is one the function made
        self.rooted: set = set()
        self.writes = StateWrites()   # NOTE (state writes)
        self._keep: list = []   # the bases, so their ids stay theirs while recording

    def note(self, base, kind, key, getter, value, path: str) -> None:
        k = (id(base), kind, key)
        self.writes.check_read(k, path)
        if k in self.seen:
            if not _traced(value) and changed(kind, self.seen[k][1], value):
                self.writes.reread = self.writes.reread or path   # NOTE (state writes)
        elif not _traced(value):
            self._keep.append(base)
            self.rooted.add(id(value))
            self.seen[k] = (getter, value, path)
            if type(value) is FunctionType and value.__closure__ \
                    and _watched(value.__code__) is not None:
                self._cells(value, path)

    def _cells(self, fn, path: str) -> None:
        """The closure cells of a function of the user's that the trace read (and may
        call): its frame cannot name them, so rebinding one (``nonlocal``) is guarded
        here, as python_value_guards does for the compiled function's own cells."""
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__):
            try:
                held = cell.cell_contents
            except ValueError:   # not filled yet
                continue
            self.note(cell, "cell", None, partial(getattr, cell, "cell_contents"), held,
                      f"{path}'s closure variable {name}")

    def contents(self, value, getter, path: str) -> None:
        if isinstance(value, _CONTAINERS):
            try:
                frozen = _frozen(value)
            except _TooLarge:
                self.unsafe = self.unsafe or (
                    f"the contents of {path}, which the function reads, hold more than "
                    f"{MAX_FROZEN_ITEMS} items: too many to compare at every call")
                return
            if not _holds_traced(value):
                self.note(value, "*", None, getter, frozen, f"the contents of {path}")

    # ---- evaluation on a live frame ---------------------------------------------------
    def walk(self, frame, chain) -> None:
        kind, name = chain.root
        if chain.tail == ("type",):   # NOTE (type of a followed value) in int_args.py
            self._type_of(frame, chain)
            return
        if kind == "global":
            glb = frame.f_globals
            value = glb.get(name, _MISSING)
            if value is _MISSING:
                value = getattr(builtins, name, _MISSING)
                if value is _MISSING:
                    return
            elif not isinstance(value, ModuleType):
                self.note(glb, "[]", name, partial(operator.getitem, glb, name), value, name)
            outside = self.writes.reached(value)
        else:
            value = frame.f_locals.get(name, _MISSING)
            if value is _MISSING or (isinstance(value, _CONTAINERS) and id(value) not in
                                     self.rooted and chain.root[0] == "fast"):
                return   # a container the function made (kwargs, a list of outputs)
            if chain.root[0] == "cell":
                self._keep.append(value)
                self.rooted.add(id(value))
            # NOTE (state writes): a cell of a function running in the trace (a list a
            # comprehension reads) is a local like any other
            outside = (self.writes.reached(value) if chain.root[0] == "cell"
                       and not _local_cell(frame, name) else id(value) in self.writes.outside)
        path, getter = name, None
        for step in chain.steps:
            base = value
            if _owned_elsewhere(base) or _traced(base):
                return
            if outside:
                self.writes.touch(base, path)
                self.writes.reached(base)
            if step[0] == "attr":
                getter, value = _attribute(base, step[1])
                key, shown = step[1], f"{path}.{step[1]}"
            else:
                key = _key_value(frame, step[1], step[2])
                if key is _MISSING:
                    return
                getter, value = _item(base, key)
                shown = f"{path}[{key!r}]"
                if getter is None and isinstance(base, dict) and key not in base:
                    # a KeyError the function caught (``except KeyError``): guarded to
                    # stay missing
                    self.note(base, "get", key, partial(dict.get, base, key, _MISSING),
                              _MISSING, shown)
                    return
            if getter is None:
                return
            if getter is _MEMBER:
                getter = None
            elif not (isinstance(base, ModuleType) and isinstance(value, _CODE)):
                self.note(base, "." if step[0] == "attr" else "[]", key, getter, value, shown)
            path = shown
        if outside and type(chain.tail) is tuple and not _owned_elsewhere(value) \
                and not _traced(value):
            self.writes.reached(value)
            self._write(frame, chain.tail, value, path)
        self._tail(frame, chain.tail, value, getter, path)

    def _write(self, frame, tail, value, path) -> None:
        """A chain that ends in a write into an outside object (NOTE (state writes))."""
        if tail[0] == "store" and len(tail) == 2:
            self.writes.store(value, ".", tail[1], f"{path}.{tail[1]}")
        elif tail[0] == "store":
            key = _key_value(frame, tail[1], tail[2])
            if key is _MISSING:
                self.writes.store(value, "*", None, path)
            else:
                self.writes.store(value, "[]", key, f"{path}[{key!r}]")
        elif tail[0] == "method" and tail[1] in MUTATORS:
            self.writes.store(value, "*", None, path)

    def _type_of(self, frame, chain) -> None:
        """``type(chain)`` or ``type(expression)``: a followed number's type is not its
        plain type (NOTE (type of a followed value) in int_args.py). Nothing is guarded:
        the chain's value is read, where that runs no code, for its type only."""
        kind, name = chain.root
        if kind == "type":
            self.retrace = self.retrace or escape_all("type() of an expression")
            return
        value = frame.f_globals.get(name, _MISSING) if kind == "global" \
            else frame.f_locals.get(name, _MISSING)
        for step in chain.steps:
            if value is _MISSING:
                return
            if step[0] == "attr":
                value = _attribute(value, step[1])[1]
            else:
                key = _key_value(frame, step[1], step[2])
                value = _MISSING if key is _MISSING else _item(value, key)[1]
        if isinstance(value, Followed):
            self.retrace = self.retrace or value.type_taken()

    def _tail(self, frame, tail, value, getter, path) -> None:
        if tail is None or _owned_elsewhere(value):
            return
        if getter is None:   # a variable's value: re-read as that very object
            getter = partial(_itself, value)
        if tail == "contents":
            self.contents(value, getter, path)
        elif tail[0] == "method" and tail[1] not in MUTATORS:
            self.contents(value, getter, path)
        elif tail[0] == "getattr":
            self._getattr(value, _key_value(frame, tail[1], tail[2]), path)
        elif tail[0] == "get" and type(value) is dict:
            key = _key_value(frame, tail[1], tail[2])
            if key is _MISSING:
                self.contents(value, getter, path)
                return
            try:
                got = value.get(key, _MISSING)
            except TypeError:
                return
            self.note(value, "get", key, partial(value.get, key, _MISSING), got,
                      f"{path}.get({key!r})")

    def _getattr(self, value, name, path) -> None:
        """``getattr(value, name[, default])``: an attribute read like ``value.name``,
        or, where ``value`` has no such attribute, a guard that it still has none."""
        if type(name) is not str or _traced(value):
            return
        getter, got = _attribute(value, name)
        if getter is None and got is _MISSING and (
                name not in (getattr(value, "__dict__", None) or ())
                and _class_attribute(type(value), name) is _MISSING
                and type(value).__getattribute__ in _GENERIC_GETATTRIBUTE
                and not hasattr(type(value), "__getattr__")):
            getter = partial(getattr, value, name, _MISSING)
        if getter is not None and getter is not _MEMBER:
            self.note(value, ".", name, getter, got, f"{path}.{name}")


def _local_cell(frame, name: str) -> bool:
    """Whether closure variable ``name`` of ``frame`` belongs to a function running in
    the trace (up the stack to tracegrad's own frame that called the traced function)."""
    while frame is not None and not frame.f_code.co_filename.startswith(PACKAGE_DIR):
        if name in frame.f_code.co_cellvars:
            return True
        frame = frame.f_back
    return False


def _itself(value):
    return value


def _holds_traced(value) -> bool:
    items = dict.values(value) if isinstance(value, dict) else value
    return any(map(_traced, items))


def _key_value(frame, kind, name):
    if kind == "const":
        return name if _plain(name) else _MISSING
    if kind == "global":
        key = frame.f_globals.get(name, _MISSING)
    else:
        key = frame.f_locals.get(name, _MISSING)
    return key if _plain(key) else _MISSING


# ---- recording (sys.settrace while the traced function runs) --------------------------
# NOTE: keyed by id: a code object's hash is computed from its bytes and constants at
# every call of hash(); the code object itself is kept, so its id stays its own
_WATCHED: dict = {}   # id(code) -> (code, its chains or None: a frame not watched)


def _watched(code):
    hit = _WATCHED.get(id(code))
    if hit is None:
        if len(_WATCHED) > 4096:
            _WATCHED.clear()
        name = code.co_filename
        # the methods dataclasses writes (__init__, __eq__...): exec'd in __create_fn__
        generated = name == "<string>" and getattr(
            code, "co_qualname", code.co_name).startswith("__create_fn__")
        installed = "/site-packages/" in name or "/dist-packages/" in name
        found = None if (name.startswith(_SKIPPED) or installed or generated
                         or name.startswith("<frozen")) else chains(code)
        hit = _WATCHED[id(code)] = (code, found)
    return hit[1]


class recording:
    """``with recording() as reads:`` records the reads the code run inside makes (the
    traced function); ``recording(reads)`` adds to ``reads`` (the backward traced for
    it, which runs the user's tensor hooks). A trace function set before (a debugger,
    coverage) keeps running."""

    def __init__(self, reads: Reads | None = None) -> None:
        self.reads = Reads() if reads is None else reads

    def __enter__(self) -> Reads:
        reads = self.reads
        self.before = before = sys.gettrace()

        watched = _WATCHED.get

        def on_call(frame, event, arg):
            theirs = before(frame, event, arg) if before is not None else None
            hit = watched(id(frame.f_code))   # (no call of _watched: ~2600 calls a step)
            found = hit[1] if hit is not None else _watched(frame.f_code)
            if found is None:
                return theirs

            at, by_line, precise = found

            def local(frame, event, arg):
                try:
                    if event == "line":   # NOTE (line events)
                        line = frame.f_lineno
                        frame.f_trace_opcodes = exact = line in precise
                        if not exact:
                            for chain in by_line.get(line, ()):
                                reads.walk(frame, chain)
                    elif event == "opcode":
                        chain = at.get(frame.f_lasti)
                        if chain is not None:
                            reads.walk(frame, chain)
                except Exception as e:  # noqa: BLE001 - unguarded: no replay
                    reads.unsafe = f"{type(e).__name__}: {e}"
                return local

            return local if theirs is None else _both(theirs, local)

        if before is None:   # NOTE (untraced stretches) in tracegrad/_untraced.py
            on_call.records_reads = True   # type: ignore[attr-defined]
        sys.settrace(on_call)
        return reads

    def __exit__(self, *exc) -> None:
        sys.settrace(self.before)


def _both(theirs, mine):
    def both(frame, event, arg):
        nonlocal theirs
        if theirs is not None:
            theirs = theirs(frame, event, arg)
        mine(frame, event, arg)
        return both
    return both


# ---- guards ---------------------------------------------------------------------------
def path_guards(reads: Reads, covered=(), name: str = "the function") -> list:
    """Guards that hold while every read in ``reads`` would read the same again: values
    by value, objects by identity, contents item by item. ``covered``: keys
    ``(id(base), kind, key)`` other guards check already (python_value_guards)."""
    if reads.retrace is not None:   # traced again on the ints' values
        raise TraceError(f"{reads.retrace}: the trace saw another type than a call does")
    if reads.unsafe is not None:   # _build runs such a signature eagerly
        raise TraceError(f"a read through a Python object could not be recorded for "
                         f"its guard ({reads.unsafe})")
    reads.writes.refuse(name)
    by_value, by_identity, contents = [], [], []
    for k, (getter, value, path) in reads.seen.items():
        if k in covered:
            continue
        same = _same_contents if k[1] == "*" else _same_values if _plain(value) \
            else _same_objects
        if not _holds(same, getter, value):
            continue   # NOTE (state the function writes)
        group = contents if k[1] == "*" else by_value if _plain(value) else by_identity
        group.append((getter, value, path))
    if not (by_value or by_identity or contents):
        return []
    return [_paths_guard(by_value, by_identity, contents)]


# NOTE (state the function writes): a read whose value the function itself changed
# before the trace ended (``self.calls += 1``, a step counter) gets no guard: it would
# fail at every call, and retrace every call. Python side effects happen once per trace,
# not once per call (optim/_hooks.py), so that state is outside what a replay repeats
# in any case. Where that would return what eager mode does not (the trace reads back what
# it wrote, or stores one of its tensors there) the call runs eagerly: NOTE (state
# writes) in state_writes.py.
def _holds(same, getter, value) -> bool:
    try:
        return same([getter], [value])
    except Exception:  # noqa: BLE001 - gone already (deleted by the function)
        return False


def covered_reads(fn) -> set:
    """The reads python_value_guards guards already: the function's own globals."""
    glb, names = global_names(fn)
    return {(id(glb), "[]", n) for n in names}


def _same_values(getters, values) -> bool:
    return _same_keys(getters, plain_keys(values))


def _same_keys(getters, keys) -> bool:
    # NOTE (plain keys) in python_guards: 2 is not 2.0, 0.0 is not -0.0
    return plain_keys(map(_call, getters)) == keys


def _same_objects(getters, values) -> bool:
    return all(map(operator.is_, map(_call, getters), values))


def _same_contents(getters, values) -> bool:
    return all(_frozen(g()) == v for g, v in zip(getters, values))


_call = getattr(operator, "call", None) or operator.methodcaller("__call__")


def _paths_guard(by_value: list, by_identity: list, contents: list):
    """One guard for every read (one Python frame a call: ~0.35 µs of fixed cost, then
    ~0.05-0.1 µs a read in the C loops of _same_values/_same_objects)."""
    groups = [(same, [g for g, _, _ in reads], [v for _, v, _ in reads])
              for same, reads in ((_same_values, by_value), (_same_objects, by_identity),
                                  (_same_contents, contents)) if reads]
    groups = [(_same_keys, getters, plain_keys(values)) if same is _same_values
              else (same, getters, values) for same, getters, values in groups]

    def guard() -> bool:
        try:
            for same, getters, values in groups:
                if not same(getters, values):
                    return False
            return True
        except Exception:  # noqa: BLE001 - gone (a key deleted, a list shrunk): retrace
            return False

    def what() -> str:
        for same, reads, verb in ((_same_values, by_value, "changed"),
                                  (_same_objects, by_identity, "was rebound"),
                                  (_same_contents, contents, "changed")):
            for getter, value, path in reads:
                if not _holds(same, getter, value):
                    return f"{path}, which the function reads, {verb}"
        return "a value the function reads changed"
    return described(guard, what)
