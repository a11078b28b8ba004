"""The primitive operations every tracegrad program is built from.

The enum is shared by the eager frontend (``tracegrad/_primitives``), the traced
graph, codegen and runtime. Composite operations (softmax, layer_norm, conv, ...)
never appear here: they are written in terms of these.

Semantics of each primitive, in NumPy terms (the eager implementation defines them):

- unary elementwise: ``NEG EXP LOG SIN COS SQRT RECIP TANH SIGMOID ERF ABS SIGN FLOOR
  CEIL ROUND LOG1P EXPM1 EXP2 LOG2 LOG10 NOT`` (NOT is bitwise not: ``np.invert``, logical
  not on bool).
- ``CAST`` attrs ``dtype``: ``x.astype(dtype)``.
- binary elementwise with NumPy broadcasting (inputs already promoted to one dtype):
  ``ADD SUB MUL DIV POW MAXIMUM MINIMUM FMOD`` (FMOD is C's fmod: ``np.fmod``) and the
  comparisons ``CMPLT CMPLE CMPEQ
  CMPNE`` (bool result; ``a > b`` is ``CMPLT(b, a)``), ``AND OR XOR`` bitwise on integers and bool.
- ``WHERE(cond, a, b)`` with broadcasting.
- reductions, attrs ``axes`` (sorted tuple of non-negative ints) and ``keepdim``:
  ``SUM MAX MIN PROD``; ``ARGMAX ARGMIN`` take a single ``axis`` (or None) and ``keepdim``
  and give int64; ``CUMSUM`` attrs ``axis``.
- movement ops (views, never copies): ``RESHAPE`` attrs ``shape``; ``PERMUTE`` attrs
  ``perm``; ``EXPAND`` attrs ``shape`` (broadcast_to); ``SLICE`` attrs ``index`` (a tuple
  of ``slice`` objects, one per dim, steps may be negative); ``PAD`` attrs ``pads`` (one
  ``(before, after)`` pair per dim) and ``value``; ``WINDOWS`` attrs ``window`` and
  ``stride`` and ``dilation`` (tuples over the trailing dims): sliding windows appended as
  trailing dims, the im2col view under convolution and pooling.
- ``CAT(*xs)`` attrs ``dim``: ``np.concatenate``.
- ``MATMUL``: ``np.matmul`` on inputs of rank >= 2 with broadcast batch dims.
- ``GATHER`` attrs ``dim``: ``np.take_along_axis``; ``SCATTER_ADD(base, index, src)``
  attrs ``dim``; ``INDEX(x, *indices)`` attrs ``spec``: NumPy advanced indexing; ``INDEX_PUT(
  base, values, *indices)`` attrs ``spec`` and ``accumulate``.
- random inputs: ``RAND`` / ``RANDN`` attrs ``shape`` and ``dtype``, drawn from the
  process-wide generator.
- graph plumbing: ``INPUT`` attrs ``index``; ``CONST`` attrs ``value`` (a Python scalar,
  0-d, broadcast by its consumers).
- loop-IR only (``codegen.loop_ir``; never a graph node): ``LOAD ACC IDIV MOD``.

``Op`` is a closed vocabulary with one door: ``define_op(name, kind)`` adds a member (a
primitive registered from outside this file, see ``codegen.scalar_ops.define_scalar_op``)
and files it under its kind's sets, which fusion and the passes read.
"""
from __future__ import annotations

from typing import Iterator


class _OpType(type):
    """``Op.EXP``, ``Op["EXP"]``, ``list(Op)``, ``len(Op)``: the enum interface, open to
    ``define_op`` (``enum.Enum`` cannot grow after its class body)."""

    _members: dict[str, "Op"]  # set on Op; declared here so mypy skips __getattr__

    def __getitem__(cls, name: str) -> "Op":
        return cls._members[name]

    def __iter__(cls) -> Iterator["Op"]:
        return iter(list(cls._members.values()))

    def __len__(cls) -> int:
        return len(cls._members)

    def __contains__(cls, op) -> bool:
        return isinstance(op, Op) and cls._members.get(op.name) is op

    def __getattr__(cls, name: str) -> "Op":
        # only reached for a name that is not a member (members are class attributes);
        # typed so that ``Op.EXP`` reads as an Op to a type checker
        raise AttributeError(f"Op has no member {name!r}")


class Op(metaclass=_OpType):
    """One operation of the graph IR and the loop IR. Members are singletons: equality is
    identity, and so is the hash (planning looks ops up in sets tens of thousands of times
    per graph)."""

    __slots__ = ("name", "value", "kind")
    _members: dict[str, "Op"] = {}

    def __init__(self, name: str, kind: str):
        self.name, self.kind, self.value = name, kind, len(Op._members) + 1

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self):
        return Op.__getitem__, (self.name,)  # unpickles to the same singleton

    def __copy__(self) -> "Op":
        return self

    def __deepcopy__(self, memo) -> "Op":
        return self


# The kinds, and the sets each kind is filed under. The sets are the registry's indexes:
# define_op keeps them current, so a set built from them once (a union) would go stale.
UNARY: set[Op] = set()
BINARY: set[Op] = set()
COMPARISON: set[Op] = set()
ELEMENTWISE: set[Op] = set()     # unary, binary and WHERE: one scalar op per element
REDUCE: set[Op] = set()
MOVEMENT: set[Op] = set()
EXTERN: set[Op] = set()          # never lowered to loops: the runtime calls NumPy/BLAS
COMPUTE: set[Op] = set()         # what a kernel computes (movement ops only index)
LOOP_OPS: set[Op] = set()        # what a kernel may hold
LOOP_IR: set[Op] = set()         # loop-IR only: LOAD ACC IDIV MOD
_KIND_SETS = {
    "plumbing": (),
    "unary": (UNARY, ELEMENTWISE, COMPUTE, LOOP_OPS),
    "binary": (BINARY, ELEMENTWISE, COMPUTE, LOOP_OPS),
    "comparison": (COMPARISON, BINARY, ELEMENTWISE, COMPUTE, LOOP_OPS),
    "ternary": (ELEMENTWISE, COMPUTE, LOOP_OPS),
    "reduce": (REDUCE, COMPUTE, LOOP_OPS),
    "movement": (MOVEMENT, LOOP_OPS),
    "extern": (EXTERN,),
    "loop_ir": (LOOP_IR,),
}


def define_op(name: str, kind: str) -> Op:
    """The member ``name`` of ``Op``, created as ``kind`` if new.

    >>> define_op("EXP", "unary") is Op.EXP
    True
    """
    if kind not in _KIND_SETS:
        raise ValueError(f"define_op: kind must be one of {sorted(_KIND_SETS)}, got {kind!r}")
    op = Op._members.get(name)
    if op is not None:
        if op.kind != kind:
            raise ValueError(f"define_op: {name} is already defined as {op.kind}, not {kind}")
        return op
    if not name.isidentifier() or not name.isupper():
        raise ValueError(f"define_op: op names are ALLCAPS identifiers, got {name!r}")
    op = Op(name, kind)
    Op._members[name] = op
    setattr(Op, name, op)
    for s in _KIND_SETS[kind]:
        s.add(op)
    return op


for _kind, _names in (
        ("plumbing", "INPUT CONST"),
        ("unary", "NEG EXP LOG SIN COS SQRT RECIP TANH SIGMOID ERF ABS SIGN FLOOR CEIL ROUND "
                  "LOG1P EXPM1 NOT CAST"),
        ("binary", "ADD SUB MUL DIV POW MAXIMUM MINIMUM FMOD"),
        ("comparison", "CMPLT CMPLE CMPEQ CMPNE"),
        ("binary", "AND OR XOR"),
        ("ternary", "WHERE"),
        ("reduce", "SUM MAX MIN PROD"),
        ("extern", "ARGMAX ARGMIN CUMSUM"),
        ("movement", "RESHAPE PERMUTE EXPAND SLICE PAD WINDOWS"),
        ("extern", "MATMUL CAT GATHER SCATTER_ADD INDEX INDEX_PUT RAND RANDN"),
        ("loop_ir", "LOAD ACC IDIV MOD"),
        ("unary", "EXP2 LOG2 LOG10")):
    for _name in _names.split():
        define_op(_name, _kind)
