"""Flatten nested arguments and results (tuples, lists, dicts) into leaves plus a
hashable structure, and rebuild them. Leaf kinds: tensors, runtime scalars (Python
floats), and static values (everything else, compared by value; an int that is not
static_argnames' is an ``"int"`` node, which may become symbolic: NOTE (int arguments)
in int_args.py)."""
from __future__ import annotations

from collections import OrderedDict

from .._size import Size
from .._tensor import Tensor
from .int_args import CallValue, SymArg

TENSOR = "T"
SCALAR = "S"


class Static:
    """Marks a value as part of the signature even if it is a float (static_argnames)."""

    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value


def flatten(obj, static: bool = False, leaves: list | None = None, followed: bool = False):
    """``(treedef, leaves)``: tensors and floats become leaves; other values live in the
    treedef itself, so they must be hashable (the signature compares them by value).
    ``followed``: a traced function's results, whose followed arguments (SymArg) are
    leaves too (NOTE (float arguments) in float_args.py: a returned float is computed at
    each call), not hashed (an escape)."""
    if leaves is None:
        leaves = []
    if isinstance(obj, Tensor) or followed and type(obj) is SymArg:
        leaves.append(obj)
        return ((TENSOR,) if type(obj) is not SymArg else (SCALAR,)), leaves
    if isinstance(obj, Static):
        obj = obj.value
        static = True
    elif isinstance(obj, float) and not static:
        leaves.append(obj)
        return (SCALAR,), leaves
    elif type(obj) is int and not static:   # (never a bool: its type is bool)
        return ("int", obj), leaves
    if isinstance(obj, (tuple, list)):
        children = tuple(flatten(o, static, leaves, followed)[0] for o in obj)
        kind = "tuple" if isinstance(obj, tuple) else "list"
        if followed and type(obj) is Size:   # a returned x.shape stays a Size
            kind = "size"
        if hasattr(obj, "_fields"):  # namedtuple
            return ("namedtuple", type(obj), children), leaves
        return (kind, children), leaves
    if isinstance(obj, dict):
        keys = tuple(obj.keys())
        children = tuple(flatten(obj[k], static, leaves, followed)[0] for k in keys)
        if followed and type(obj) is OrderedDict:   # a returned OrderedDict stays one
            return ("odict", keys, children), leaves
        return ("dict", keys, children), leaves
    try:
        hash(obj)
    except TypeError:
        raise TypeError(f"compile: argument of type {type(obj).__name__} is neither a tensor "
                        f"nor hashable, so it cannot be part of a compile signature; pass it "
                        f"as a tensor, or make it hashable (e.g. a tuple)") from None
    return ("static", obj), leaves


_LONE_TENSOR = (TENSOR,)   # the treedef of one tensor alone


def unflatten_results(treedef, static: list, tensors: list):
    """The value a compiled call returns: ``treedef`` rebuilt from its tensor results and
    ``static``, one entry per leaf: None (the next of ``tensors``) or a constant."""
    if treedef == _LONE_TENSOR and static == [None]:
        return tensors[0]   # one tensor (a loss): no tree to rebuild
    it = iter(tensors)
    return unflatten(treedef, [next(it) if const is None else const() if type(const) is
                               CallValue else const for const in static])


def unflatten(treedef, leaves):
    it = iter(leaves)
    return _build(treedef, it)


def _build(treedef, it):
    kind = treedef[0]
    if kind in (TENSOR, SCALAR):
        return next(it)
    if kind == "static" or kind == "int":
        return treedef[1]
    if kind == "tuple":
        return tuple(_build(c, it) for c in treedef[1])
    if kind == "size":
        return Size(_build(c, it) for c in treedef[1])
    if kind == "list":
        return [_build(c, it) for c in treedef[1]]
    if kind == "namedtuple":
        return treedef[1](*(_build(c, it) for c in treedef[2]))
    if kind == "dict":
        return {k: _build(c, it) for k, c in zip(treedef[1], treedef[2])}
    if kind == "odict":
        return OrderedDict((k, _build(c, it)) for k, c in zip(treedef[1], treedef[2]))
    raise ValueError(f"unknown tree node {kind!r}")


def rebuilt_unchanged(treedef, leaves, obj) -> bool:
    """Whether ``obj``, which ``unflatten(treedef, leaves)`` built, still holds what it was
    built with: the traced function got these lists and dicts in place of the caller's
    own, so an ``append`` or ``d[k] = v`` into one changed a copy that the caller never
    sees (nor does a later call, which replays the program only)."""
    it = iter(leaves)

    def same(node, value) -> bool:
        kind = node[0]
        if kind in (TENSOR, SCALAR):
            return value is next(it)
        if kind in ("static", "int"):
            return True
        if kind in ("tuple", "list", "namedtuple", "size"):
            children = node[2] if kind == "namedtuple" else node[1]
            return len(value) == len(children) and all(map(same, children, value))
        keys = node[1]
        return (type(value) is dict and tuple(value.keys()) == keys
                and all(same(c, value[k]) for k, c in zip(keys, node[2])))
    return same(treedef, obj)
