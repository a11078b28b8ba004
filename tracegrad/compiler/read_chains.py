"""The access chains a code object's bytecode reads: a global, closure or local variable
followed by ``.attr`` and ``[key]`` steps (``cfg["a"]["b"]``, ``self.cfg.scale``,
``h.ws[i]``), and what the code does with the value the chain ends on (iterate it, pass it
on, append to it). access_paths.py evaluates them on the live frame while a trace runs
(NOTE (access paths))."""
from __future__ import annotations

import dis
import inspect
import sys
from typing import NamedTuple

_ROOTS = {"LOAD_GLOBAL": "global", "LOAD_DEREF": "cell", "LOAD_CLASSDEREF": "cell",
          "LOAD_FAST": "fast", "LOAD_FAST_CHECK": "fast"}
# a key of ``base[key]`` the recorder can read again: a constant or a variable
_KEYS = {"LOAD_CONST": "const", "LOAD_FAST": "local", "LOAD_FAST_CHECK": "local",
         "LOAD_DEREF": "local", "LOAD_GLOBAL": "global"}
_CALLS = ("PRECALL", "CALL", "CALL_FUNCTION", "CALL_METHOD")   # 3.11+, 3.10
# what code may do with a container without reading what it holds
# what code may do with a container without reading what it holds. (Not a store into a
# local: ``ws = self.ws`` is taken as a read of all of ``ws``, so that its uses through
# the local need no chains of their own.)
_NOT_READS = {"STORE_ATTR", "DELETE_ATTR", "POP_TOP", "IS_OP", "STORE_GLOBAL"}
# methods that change a container without reading it (a loss log's append)
MUTATORS = frozenset({"append", "extend", "insert", "add", "update", "appendleft",
                      "clear", "__setitem__"})


class Chain(NamedTuple):
    """``root`` ("global", "cell" or "fast", the variable's name; ("type", None): the
    builtin ``type`` called on an expression), ``steps`` (("attr", name) or
    ("item", key kind, key)), then ``tail``: "contents" when the code may read all the
    final value holds (iterates it, passes it to a call, compares it), ("method", name)
    when it calls a method of it, ("get", key kind, key) for ``.get(key[, default])``,
    ("getattr", key kind, key) for ``getattr(value, key[, default])`` (or ``hasattr``),
    ("type",) for ``type(value)``, ("store", name) for ``value.name = v`` (or ``del``),
    ("store", key kind, key) for ``value[key] = v`` (or ``del``),
    else None (it stores into it, drops it, or the value is a step's base only)."""
    root: tuple
    steps: tuple
    tail: object


def _key(ins) -> tuple | None:
    kind = _KEYS.get(ins.opname)
    if kind is None:
        return None
    return (kind, ins.argval)


def _tail(code, j: int):
    """What the instructions from ``j`` on do with the value a chain left on the stack."""
    if j >= len(code):
        return "contents"
    ins = code[j]
    if ins.opname in ("STORE_ATTR", "DELETE_ATTR"):
        return ("store", ins.argval)   # ``obj.a = v``: a write into obj, not a read
    if ins.opname in _NOT_READS:
        return None
    nxt = code[j + 1].opname if j + 1 < len(code) else ""
    if _key(ins) is not None and nxt in ("STORE_SUBSCR", "DELETE_SUBSCR"):
        return ("store",) + _key(ins)   # ``d[k] = v``: a write, no read of the rest of d
    if _key(ins) is not None and nxt == "COPY" and [c.opname for c in code[j + 2:j + 4]] \
            == ["COPY", "BINARY_SUBSCR"]:
        return ("store",) + _key(ins)   # ``d[k] += v``
    if _key(ins) is not None and (nxt == "STORE_ATTR" or (
            _key(code[j + 1]) is not None and j + 2 < len(code)
            and code[j + 2].opname == "STORE_SUBSCR")):
        return None   # ``obj.a = v``, ``d[k] = v``: ``v`` stored, not read into
    return "contents"


def _method_tail(code, j: int, name: str):
    """The tail of a chain whose value's method ``name`` is loaded at ``j - 1``."""
    if name == "get" and j + 1 < len(code) and _key(code[j]) is not None:
        after = code[j + 1]
        if after.opname in _CALLS or (after.opname == "LOAD_CONST" and j + 2 < len(code)
                                      and code[j + 2].opname in _CALLS):
            return ("get",) + _key(code[j])
    return ("method", name)


def _chain_at(code, i: int) -> Chain:
    ins = code[i]
    root = (_ROOTS[ins.opname], ins.argval)
    steps, j = [], i + 1
    while j < len(code):
        op = code[j].opname
        if op == "COPY" and code[j].arg == 1 and j + 1 < len(code) \
                and code[j + 1].opname == "LOAD_ATTR":
            # ``self.n += 1`` reads self.n, then writes it (NOTE (state writes))
            return Chain(root, tuple(steps), ("store", code[j + 1].argval))
        if op in ("LOAD_ATTR", "LOAD_METHOD"):
            name = code[j].argval
            if op == "LOAD_METHOD" or "NULL|self" in code[j].argrepr:
                # a method call: recorded as a step when the attribute is data after all
                # (a function held in an attribute), else as the chain's tail
                return Chain(root, tuple(steps), _method_tail(code, j + 1, name))
            steps.append(("attr", name))
            j += 1
            continue
        key = _key(code[j])
        if key is not None and j + 1 < len(code) and code[j + 1].opname == "BINARY_SUBSCR":
            steps.append(("item",) + key)
            j += 2
            continue
        break
    if (i > 0 and code[i - 1].opname == "LOAD_GLOBAL" and code[i - 1].argval in ("getattr", "hasattr")
            and j + 1 < len(code) and _key(code[j]) is not None
            and (code[j + 1].opname in _CALLS or (
                code[j + 1].opname == "LOAD_CONST" and j + 2 < len(code)
                and code[j + 2].opname in _CALLS))):
        return Chain(root, tuple(steps), ("getattr",) + _key(code[j]))
    if i > 0 and _calls_type(code[i - 1]) and j < len(code) and code[j].opname in _CALLS:
        return Chain(root, tuple(steps), ("type",))   # NOTE (type of a followed value)
    return Chain(root, tuple(steps), _tail(code, j))


def _calls_type(ins) -> bool:
    """``ins`` loads the builtin ``type`` to call it (3.11 marks a callee's load)."""
    return ins.opname == "LOAD_GLOBAL" and ins.argval == "type" and (
        sys.version_info < (3, 11) or "NULL" in ins.argrepr)


class CodeChains(NamedTuple):
    """The chains of one code object: ``at`` (offset -> Chain), ``by_line`` (line ->
    its chains, in order) and ``precise``, the lines whose chains are evaluated at
    their first instruction rather than at the line's start (NOTE (line events))."""
    at: dict
    by_line: dict
    precise: frozenset


# NOTE (line events): an opcode event per instruction of the user's frames costs ~2 µs
# each (Python 3.11 builds the frame's locals dict for each event). A line event comes
# once a line, and again at a backward jump (a loop), so a line's chains are
# evaluated at its start: nothing in between changes which object or key they read,
# except a store to one of their variables within the line (``[cfg[k] for k in keys]``,
# ``a = self.x; a.y``) or a generator resumed mid-line. Those lines (and all of a
# generator's) get opcode events, and each chain is evaluated at its first instruction.
# An LSTM-like forward of 20 steps in user code traced in 71.2 ms so, 76.3 ms with opcode
# events everywhere, 44.7 ms not recording (best of 12, load 7): the rest is the cost of
# sys.settrace itself on 3.11, which runs every instruction of every frame through its
# tracing path.
_STORES = ("STORE_FAST", "STORE_DEREF", "STORE_GLOBAL", "STORE_NAME", "DELETE_FAST",
           "DELETE_DEREF", "DELETE_GLOBAL")
_GENERATORS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def _variables(chain: Chain) -> set:
    names = {chain.root[1]}
    for part in chain.steps + ((chain.tail,) if type(chain.tail) is tuple else ()):
        if len(part) == 3 and part[1] != "const":
            names.add(part[2])
    return names


_CACHE: dict = {}


def chains(code) -> CodeChains | None:
    """The chains that start in ``code`` (not nested code: a comprehension or lambda
    runs in a frame of its own), None when there are none."""
    found = _CACHE.get(code, _NONE)
    if found is _NONE:
        found = _CACHE[code] = _code_chains(code)
        if len(_CACHE) > 4096:   # code objects of throwaway lambdas
            _CACHE.clear()
    return found


_NONE = object()


def _code_chains(code) -> CodeChains | None:
    instructions = [ins for ins in dis.get_instructions(code)
                    if ins.opname not in ("CACHE", "EXTENDED_ARG", "NOP")]
    at, by_line, stored, line = {}, {}, {}, None
    lines = []
    for ins in instructions:
        lineno = getattr(getattr(ins, "positions", None), "lineno", None)
        line = lineno if lineno is not None else (
            ins.starts_line if ins.starts_line is not None else line)
        lines.append(line)
        if ins.opname.startswith(_STORES) and isinstance(ins.argval, str):
            stored.setdefault(line, set()).add(ins.argval)
    precise = set()
    for i, ins in enumerate(instructions):
        if ins.opname == "LOAD_GLOBAL" and ins.argval == "type" and not (
                i + 1 < len(instructions) and instructions[i + 1].opname in _ROOTS
                and _chain_at(instructions, i + 1).tail == ("type",)):
            # ``type(n + 1)``, ``map(type, ns)``: of values no chain names (NOTE (type of
            # a followed value))
            at[ins.offset] = chain = Chain(("type", None), (), ("type",))
            by_line.setdefault(lines[i], []).append(chain)
        if ins.opname in _ROOTS and isinstance(ins.argval, str):
            chain = _chain_at(instructions, i)
            if chain.steps or type(chain.tail) is tuple or chain.root[0] != "fast":
                at[ins.offset] = chain
                by_line.setdefault(lines[i], []).append(chain)
                if _variables(chain) & stored.get(lines[i], set()):
                    precise.add(lines[i])
    if not at:
        return None
    if code.co_flags & _GENERATORS:
        precise = set(by_line)
    return CodeChains(at, {k: tuple(v) for k, v in by_line.items()}, frozenset(precise))
