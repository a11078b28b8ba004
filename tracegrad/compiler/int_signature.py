"""Which int arguments of a compiled function are symbolic, the signature that stands for
them, and the guards a trace on them leaves (NOTE (int arguments) in int_args.py)."""
from __future__ import annotations

import threading

from .debug import debug_level, logger
from .int_args import SYMINT, Recorder, SymArg
from .python_guards import described

INT = "int"   # pytree's node for an int argument that is not static (its value)
# NOTE (traces per symbolic signature): a signature keeps its last few traces (NOTE
# (programs per signature), function.py), so ints whose guards split them into more
# outcomes than that, called round and round (``i % 6`` branching six ways), would trace
# at every call; after this many traces of one signature its ints are values again (a
# program per value, each found by a dict lookup, as without symbolic ints)
MAX_TRACES_PER_KEY = 8
FEW_VALUES = 4   # NOTE (dims before constant ints): ints that took at most this many values


def _walk(treedef, replace, counter: list):
    """``treedef`` with each int node (``INT`` or ``SYMINT``) replaced by
    ``replace(position among the ints, node)``."""
    kind = treedef[0]
    if kind == INT or kind == SYMINT:
        k = counter[0]
        counter[0] += 1
        return replace(k, treedef)
    if kind == "tuple" or kind == "list":
        return (kind, tuple(_walk(c, replace, counter) for c in treedef[1]))
    if kind == "namedtuple" or kind == "dict":
        return (kind, treedef[1], tuple(_walk(c, replace, counter) for c in treedef[2]))
    return treedef


def _names(treedef, sig) -> list[str]:
    """A name per int of a call's ``(args, kwargs)`` treedef: the parameter's name, with
    the index or key that leads to it inside a container (``i``, ``cfg['k']``)."""
    params: list[str] = []
    for p in (sig.parameters.values() if sig is not None else ()):
        if p.kind is p.VAR_POSITIONAL:
            params += [f"{p.name}[{j}]" for j in range(64)]
            break
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            params.append(p.name)
    out: list[str] = []

    def visit(node, path: str) -> None:
        kind = node[0]
        if kind == INT or kind == SYMINT:
            out.append(path)
        elif kind == "tuple" or kind == "list":
            for j, c in enumerate(node[1]):
                visit(c, f"{path}[{j}]")
        elif kind == "namedtuple":
            for field, c in zip(node[1]._fields, node[2]):
                visit(c, f"{path}.{field}")
        elif kind == "dict":
            for key, c in zip(node[1], node[2]):
                visit(c, f"{path}[{key!r}]")
    if treedef[0] != "tuple" or len(treedef[1]) != 2:
        return [f"i{k}" for k in range(_count(treedef))]
    args, kwargs = treedef[1]
    for j, c in enumerate(args[1]):
        visit(c, params[j] if j < len(params) else f"args[{j}]")
    for key, c in zip(kwargs[1], kwargs[2]):
        visit(c, str(key))
    return out


def _count(treedef) -> int:
    counter = [0]
    _walk(treedef, lambda k, node: node, counter)
    return counter[0]


class IntArguments:
    """Per compiled function: the ints of each argument structure that are symbolic, and
    what their traces relied on (for ``cache_info``, ``explain``, TRACEGRAD_DEBUG)."""

    def __init__(self, dynamic, owner) -> None:
        self.dynamic = dynamic
        self.owner = owner   # the CompiledFunction: its ``_sig`` (OptimizedModule sets it
        #                      to the module's forward after construction) and name
        self.cell = threading.local()      # .values: this call's ints (guards read them);
        #                                    .erased: its erased treedef, or None
        self._last: dict = {}              # erased treedef -> the ints of its last call
        self._symbolic: dict = {}          # erased treedef -> positions that are symbolic
        self._values_only: dict = {}       # erased treedef -> positions an escape read:
        #                                    never symbolic again (a dict hit per value)
        self._names: dict = {}             # erased treedef -> a name per int
        self.keys_with_symbols: set = set()   # key treedefs holding a SYMINT
        self.lines: dict = {}              # what cache_info shows: text -> None, in order
        self._memo: dict = {}              # treedef -> (key treedef, erased, values)
        self._traces: dict = {}            # key treedef -> traces on its SymArgs
        self._seen: dict = {}              # erased treedef -> its ints' values (a few)
        self._lock = threading.Lock()      # NOTE (int arguments across threads)

    # NOTE (int arguments across threads): two threads call one compiled function with
    # other ints, and trace it at once (trace state is per thread). What a call reads is
    # its own: ``cell`` (its ints, its erased treedef) and each runtime input's 0-d array
    # (CallValue.holder) are per thread, and a memo entry holds the values its key was made
    # for. The dicts are shared: a lookup or a store is one atomic step, and a memo entry
    # stored from a stale ``_symbolic`` (another thread changed it and cleared the memo in
    # between) only keys a program less shared (a value where a symbol would do, or a
    # symbol whose trace specialises again): never a program for other values. What is
    # locked is the read-modify-write of ``_symbolic`` and ``_values_only`` (slow path
    # only): two threads widening them at once could lose one update, so a position an
    # escape made a value stayed symbolic (its entries guard the value: more traces, not
    # a wrong answer). A stress of 4
    # threads x 120 calls of ``f(x, i, j)`` with guards and an escape (2026-12-02):
    # results all equal eager, before and after; the one failure found was function.py's
    # loop over its symbolic groups while another thread added one (RuntimeError:
    # dictionary changed size, 14 of 480 calls in one run).

    # NOTE (int keys memoised): walking a call's treedef twice (its ints, then the key)
    # cost ~3 us a call (8.4 -> 11.3 us for a 64-float function with one int argument);
    # a call whose treedef (its ints' values included) was seen finds its key by one
    # dict lookup. The memo is cleared when a position becomes symbolic or by value.
    def key_treedef(self, treedef):
        """The treedef of the cache key for a call whose arguments flatten to ``treedef``:
        its symbolic ints (NOTE (int arguments)) as placeholders, 0 and 1 as values."""
        if self.dynamic is False:
            return treedef   # (no int guards: the values are part of the key)
        hit = self._memo.get(treedef)
        if hit is not None:
            key, erased, values, fixed = hit
            if erased is None:
                return key   # no int in it
            self.cell.values = values
            if self.dynamic is not None:
                return key
            # a change at a position not symbolic yet makes it symbolic: the slow way
            last = self._last[erased]
            if last is values or all(last[k] == values[k] for k in fixed):
                self._last[erased] = values
                return key
        key = self._key_treedef(treedef)
        if len(self._memo) > 4096:
            self._memo.clear()
        erased = self.cell.erased   # this thread's: another thread's call may run between
        if erased is None:
            self._memo[treedef] = (key, None, (), ())
            return key
        symbolic = self._symbolic.get(erased, frozenset())
        fixed = tuple(k for k in range(len(self.cell.values)) if k not in symbolic)
        self._memo[treedef] = (key, erased, self.cell.values, fixed)
        return key

    def _key_treedef(self, treedef):
        values: list = []
        erased = _walk(treedef, lambda k, node: values.append(node[1]) or (INT,), [0])
        self.cell.erased = None
        if not values:
            return treedef
        values = tuple(values)
        self.cell.values = values
        self.cell.erased = erased
        symbolic = self._symbolic.get(erased)
        seen = self._seen.setdefault(erased, set())
        if len(seen) <= FEW_VALUES:
            seen.add(values)
        if self.dynamic is True:
            self._last[erased] = values
            if symbolic is None:
                with self._lock:   # (not over a position another thread just made a value)
                    symbolic = self._symbolic.get(erased)
                    if symbolic is None:
                        symbolic = self._symbolic[erased] = frozenset(range(len(values))) \
                            - self._values_only.get(erased, frozenset())
        else:
            last = self._last.get(erased)
            if last is not None and last != values:
                changed = frozenset(k for k, (a, b) in enumerate(zip(last, values))
                                    if a != b) - self._values_only.get(erased, frozenset())
                if symbolic is None or not changed <= symbolic:
                    with self._lock:
                        symbolic = self._symbolic.get(erased, frozenset()) | changed
                        self._symbolic[erased] = symbolic
                    self._memo.clear()
                    self._note_changed(erased, treedef, changed, last, values)
            self._last[erased] = values
        if not symbolic:
            return treedef
        key = _walk(treedef, lambda k, node: (SYMINT, k) if k in symbolic and node[1] not in
                    (0, 1) else node, [0])
        if key is not treedef and key != treedef:
            self.keys_with_symbols.add(key)
        return key

    def dims_first(self, key, signatures) -> bool:
        """NOTE (dims before constant ints): a signature with a symbolic int tries no
        symbolic dims (``dynamic.SymbolicGroup`` traces on plain values), so ints that
        took a few values only (``dynamic=True``: one, ``f(x, heads)``; a mode switch
        ``f(x, mode)`` between 2 and 3) while a tensor's shape changed would cost the
        dims their symbol: one program per batch size, where a group per value served
        them all before.  Such ints become values again (True: the caller recomputes
        the key).  Ints that took more values (a step counter) stay symbolic; each new
        shape then traces once more, as before."""
        if key[0] not in self.keys_with_symbols:
            return False
        erased = _walk(key[0], lambda k, node: (INT,), [0])
        if len(self._seen.get(erased, ())) > FEW_VALUES or not any(
                old[0] == key[0] and old[1] != key[1] for old in signatures):
            return False
        self._by_value(key[0], range(len(self.cell.values)))
        self.lines.setdefault("int arguments that took a few values are values again: a "
                              "tensor's shape changed (symbolic dims first)")
        return True

    def names(self, treedef) -> list[str]:
        erased = _walk(treedef, lambda k, node: (INT,), [0])
        names = self._names.get(erased)
        if names is None:
            names = self._names[erased] = _names(treedef, self.owner._sig)
        return names

    def _note_changed(self, erased, treedef, changed, last, values) -> None:
        names = self.names(treedef)
        for k in sorted(changed):
            line = (f"int argument {names[k]} is symbolic (changed {last[k]} -> {values[k]}; "
                    f"0 and 1 stay specialised)")
            self.lines.setdefault(line)
            if debug_level():
                logger.debug("%s: %s", self.owner.__name__, line)

    # ---- tracing -----------------------------------------------------------------------
    def trace_treedef(self, key_treedef):
        """``(treedef to trace on, Recorder)``: each SYMINT of the key as a SymArg at this
        call's value; ``(key_treedef, None)`` when the key has none."""
        if key_treedef not in self.keys_with_symbols:
            return key_treedef, None
        traces = self._traces[key_treedef] = self._traces.get(key_treedef, 0) + 1
        if traces >= MAX_TRACES_PER_KEY:   # this trace still follows them; the next don't
            self._by_value(key_treedef, range(_count(key_treedef)))
            self.lines.setdefault(f"int arguments traced {traces} times for one signature "
                                  f"(guards broken): values again")
        values = self.cell.values
        positions: list = []
        _walk(key_treedef, lambda k, node: positions.append(k) if node[0] == SYMINT else None,
              [0])
        rec = Recorder(values, self.cell, positions)
        names = self.names(key_treedef)

        def follow(k, node):
            if node[0] != SYMINT:
                return node
            return (INT, SymArg(values[k], lambda vals, k=k: vals[k], names[k],
                                frozenset((k,)), rec))
        return _walk(key_treedef, follow, [0]), rec

    def finish(self, entry, rec: Recorder | None, key_treedef) -> None:
        """Close ``rec`` after ``entry`` was traced and planned on it: a SymArg left in
        the graph or the returned values is an escape; the guards join ``entry.guards``."""
        if rec is None:
            return
        try:
            if not entry.fallback:
                _escape_left_in_graph(entry.traced)
                entry.out_static = [_plain_escaped(v) for v in entry.out_static]
                entry.out_treedef = _plain_tree(entry.out_treedef)
        finally:
            rec.active = False
        if entry.fallback:
            return
        names, cell = self.names(key_treedef), self.cell
        guards = []
        for text, (check, args) in rec.guards.items():
            guards.append(described(lambda check=check: _holds(check, cell.values),
                                    _naming(f"int guard {text}", names, args, cell)))
            self.lines.setdefault(f"int guard {text}")
        why = "; ".join(e for e in rec.escapes if e) or "read as a plain value"
        for k, value in sorted(rec.specialised.items()):
            text = f"{names[k]} == {value} (specialised: {why})"
            guards.append(described(lambda k=k, value=value: cell.values[k] == value,
                                    f"int guard {text}"))
            self.lines.setdefault(f"int argument {names[k]} specialised per value: {why}")
        entry.guards = guards + list(entry.guards)
        self._by_value(key_treedef, rec.specialised)

    def failed(self, key_treedef, error: Exception) -> None:
        """The trace on SymArgs raised: the call is traced again on its values."""
        line = (f"int arguments {', '.join(self._symbolic_names(key_treedef))} traced as "
                f"values: the trace on symbolic ints raised {type(error).__name__}: {error}")
        self.lines.setdefault(line)
        if debug_level():
            logger.debug("%s: %s", self.owner.__name__, line)

    def specialise_all(self, entry, key_treedef) -> None:
        """``entry`` was traced on the values of the key's symbolic ints: it serves those."""
        cell, values = self.cell, self.cell.values
        positions = []
        _walk(key_treedef, lambda k, node: positions.append(k) if node[0] == SYMINT else None,
              [0])
        names = self.names(key_treedef)
        entry.guards = [described(lambda k=k, v=values[k]: cell.values[k] == v,
                                  f"int guard {names[k]} == {values[k]} (traced as a value)")
                        for k in positions] + list(entry.guards)
        self._by_value(key_treedef, positions)

    def _by_value(self, key_treedef, positions) -> None:
        """The ints at ``positions`` were read as values (an escape): from the next call on
        they are part of the signature again (a program per value, found by a dict
        lookup), never symbolic: with the last few traces kept per signature (NOTE
        (programs per signature)), ``tensors[k]`` over 10 values would trace forever."""
        if not positions:
            return
        erased = _walk(key_treedef, lambda k, node: (INT,), [0])
        with self._lock:   # NOTE (int arguments across threads)
            self._values_only[erased] = self._values_only.get(erased, frozenset()) | \
                frozenset(positions)
            self._symbolic[erased] = self._symbolic.get(erased, frozenset()) - \
                frozenset(positions)
        self._memo.clear()

    def _symbolic_names(self, key_treedef) -> list[str]:
        names = self.names(key_treedef)
        out: list[str] = []
        _walk(key_treedef, lambda k, node: out.append(names[k]) if node[0] == SYMINT else None,
              [0])
        return out

    @staticmethod
    def guard_texts(entry) -> tuple[str, ...]:
        """The int guards of ``entry`` (explain's report)."""
        whats = [getattr(g, "what", None) for g in entry.guards]
        return tuple(w if isinstance(w, str) else w.text for w in whats
                     if (getattr(w, "text", None) or str(w)).startswith("int guard"))

    def describe(self) -> tuple[str, ...]:
        return tuple(self.lines)


def _naming(text: str, names: list, args, cell):
    """What a broken guard says (TRACEGRAD_DEBUG): the guard and the call's values."""
    def what() -> str:
        now = ", ".join(f"{names[k]}={cell.values[k]}" for k in sorted(args))
        return f"{text}; now {now}" if now else text
    what.text = text
    return what


def _holds(check, values) -> bool:
    try:
        return bool(check(values))
    except Exception:  # noqa: BLE001 - (a division by zero at this value): trace again
        return False


def _plain_escaped(value):
    if type(value) is SymArg:
        return value._escaped("a returned value")
    return value


def _plain_tree(treedef):
    """A results treedef with each SymArg in it as its value (an escape: read there)."""
    kind = treedef[0] if type(treedef) is tuple and treedef else None
    if kind == "static" or kind == INT:
        return (kind, _plain_escaped(treedef[1]))
    if kind == "tuple" or kind == "list" or kind == "size":
        return (kind, tuple(_plain_tree(c) for c in treedef[1]))
    if kind == "namedtuple" or kind == "dict" or kind == "odict":
        return (kind, treedef[1], tuple(_plain_tree(c) for c in treedef[2]))
    return treedef


def _escape_left_in_graph(graph) -> None:
    """A SymArg in a node's shape or attributes (a size, a constant) was read by code no
    method saw (the planner, at run time): the ints it holds are specialised."""
    if graph is None:
        return
    for node in graph.nodes:
        for x in node.shape:
            if type(x) is SymArg:
                x._escaped("a tensor's size")
        for value in node.attrs.values():
            for x in (value if type(value) in (tuple, list) else (value,)):
                if type(x) is SymArg:
                    x._escaped("a constant of the graph")
