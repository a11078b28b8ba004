"""Guards on the Python objects a trace read besides its arguments: a module's plain
attributes and members, the globals and closure cells of the function, the
requires_grad flags of captured tensors (what it read through containers and objects:
access_paths.py). Each is a callable that is True while the entry may replay; a False
one retraces (compiler/function.py)."""
from __future__ import annotations

import math
import operator
from types import ModuleType

from ..nn.modules.global_hooks import hook_ids

_PLAIN = (bool, int, float, complex, str, type(None))


# NOTE (plain keys): a number a trace read is baked in by type and bits, so a guard must
# not let ``==`` match a value that would trace otherwise: 2 == 2.0 (an int64 result where
# eager makes float), 0.0 == -0.0 (1 / (x * s) is inf or -inf), True == 1. So guards
# compare each plain value's key: its type, its value and, for a float, its sign.
def plain_key(value):
    """``value`` (a plain value: number, string, None, or a tuple of them) as a key that
    equals another's only where a trace would bake in the same constant (NOTE (plain
    keys))."""
    kind = type(value)
    if kind is float:
        return (float, value, math.copysign(1.0, value))
    if kind is tuple:
        return (tuple, tuple(map(plain_key, value)))
    return (kind, value)


def plain_keys(values) -> list:
    return list(map(plain_key, values))


def described(guard, what):
    """``guard`` with ``what`` it checks (a text, or a callable giving one), which
    TRACEGRAD_DEBUG names when it breaks (Entry.broken_guard)."""
    guard.what = what
    return guard


# NOTE (module members): the trace captured the tensors a module held when it ran, by
# identity. A parameter replaced (``m.weight = nn.Parameter(...)``,
# ``load_state_dict(assign=True)``), a submodule swapped (``seq[2] = nn.Linear(...)``), a
# bias set to None or a buffer rebound would otherwise replay the program on the old
# tensors: a wrong answer without a warning. So a module's members are part of what a
# call compares, by identity, like its plain attributes by value.
def attributes(module) -> tuple:
    """What of ``module`` a trace may have relied on: its plain attributes (numbers,
    strings, None and tuples of them, which it may have baked in as constants), then its
    parameters, buffers and submodules (which it captured or ran), as
    ``(plain, (names, members))``."""
    plain = []
    for name, value in module.__dict__.items():
        if name[0] != "_" and (type(value) in _PLAIN or (type(value) is tuple and all(
                type(v) in _PLAIN for v in value))):
            plain.append((name, plain_key(value)))   # NOTE (plain keys)
    plain.append(("<hooks>", hook_ids(module)))  # a hook registered since must run
    names, members = [], []
    for store in (module._parameters, module._buffers, module._modules):
        names.extend(store)
        members.extend(store.values())
    return tuple(plain), (tuple(names), members)


def _same_attributes(module, seen: tuple) -> bool:
    plain, (names, members) = attributes(module)
    # NOTE: tuples compare their items by identity first: a NaN attribute matches
    return (plain == seen[0] and names == seen[1][0]
            and all(a is b for a, b in zip(members, seen[1][1])))


def attributes_guard(noted: list):
    """True while every module in ``noted`` ((module, its ``attributes`` at trace time))
    still has those attributes and members. Compared only after some module attribute
    was written (Module.__setattr__ and the registration methods count the writes), so a
    call costs one comparison of a counter."""
    from ..nn.modules.module import ATTRIBUTE_WRITES as writes
    checked = [writes[0]]

    def guard() -> bool:
        if writes[0] == checked[0]:
            return True
        if not all(_same_attributes(m, seen) for m, seen in noted):
            return False
        checked[0] = writes[0]
        return True

    def what() -> str:
        for m, seen in noted:
            if not _same_attributes(m, seen):
                return (f"an attribute, parameter, buffer or submodule of "
                        f"{type(m).__name__} changed")
        return "a module attribute changed"
    return described(guard, what)


def requires_grad_guards(tracer) -> list:
    """A captured tensor whose requires_grad is toggled (freezing a layer) changes what
    the step computes: the entry retraces rather than replay."""
    tensors = [t for t, _ in tracer.captured.values()
               if tracer.source_of(t)[0] == "captured"]   # a leaf_grad has its own guard
    if not tensors:
        return []
    flags = [t._requires_grad for t in tensors]
    read = operator.attrgetter("_requires_grad")
    return [described(lambda: list(map(read, tensors)) == flags,
                      "requires_grad of a captured tensor was toggled")]


def global_names(fn) -> tuple:
    """``(globals, names)``: the globals of ``fn`` (a function) and the names its code
    and the code nested in it (comprehensions) read there (modules left out); ``(None,
    [])`` for a callable without code."""
    fn = getattr(fn, "__func__", fn)
    code, glb = getattr(fn, "__code__", None), getattr(fn, "__globals__", None)
    if code is None or glb is None:
        return None, []
    names, codes = set(), [code]
    while codes:
        c = codes.pop()
        names.update(c.co_names)
        codes.extend(k for k in c.co_consts if hasattr(k, "co_names"))
    return glb, sorted(n for n in names if n in glb and not isinstance(glb[n], ModuleType))


def python_value_guards(fn) -> list:
    """A number (or string, None) the function reads from its module's globals or its
    closure is a constant of the trace (``x * SCALE``): a change retraces, as eagerly the
    next call reads the new value. Any other value read there (a tensor the trace
    captured, a model it ran, a helper it called) is compared by identity: rebinding it
    (``W = torch.randn(...)``) retraces, where the program would read the old tensor.
    What it reads through them (``cfg["scale"]``, ``h.t``) and what the functions it
    calls read are guarded read by read: NOTE (access paths) in access_paths.py."""
    fn = getattr(fn, "__func__", fn)
    glb, names = global_names(fn)
    if glb is None:
        return []
    cells = []
    for cell in fn.__closure__ or ():
        try:
            cell.cell_contents
            cells.append(cell)
        except ValueError:   # a cell not filled yet
            pass
    plain_names = [n for n in names if type(glb[n]) in _PLAIN]
    plain_cells = [c for c in cells if type(c.cell_contents) in _PLAIN]
    other_names = [n for n in names if type(glb[n]) not in _PLAIN]
    other_cells = [c for c in cells if type(c.cell_contents) not in _PLAIN]
    guards = []
    if plain_names or plain_cells:
        values = plain_keys([glb[n] for n in plain_names]
                            + [c.cell_contents for c in plain_cells])
        missing = object()

        def guard() -> bool:
            # NOTE: lists compare their items by identity first: a NaN value matches
            return plain_keys([glb.get(n, missing) for n in plain_names]
                              + [c.cell_contents for c in plain_cells]) == values
        guards.append(described(guard, "a number or string the function reads from a "
                                       "global or closure variable changed"))
    if other_names or other_cells:
        named = [glb[n] for n in other_names]
        held = [c.cell_contents for c in other_cells]
        get, is_ = glb.get, operator.is_
        contents = operator.attrgetter("cell_contents")

        def same_objects() -> bool:
            # map() over C callables, no Python frame per item: ~0.7 µs for one global and
            # three cells (a comprehension over the cells took ~1.4 µs)
            return (all(map(is_, map(get, other_names), named))
                    and all(map(is_, map(contents, other_cells), held)))
        guards.append(described(same_objects, "a global or closure variable the function "
                                              "reads was rebound"))
    return guards
