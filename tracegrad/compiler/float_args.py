"""Python float arguments traced as followed values (weak scalars), not as 0-d tensors.

NOTE (float arguments): a Python float argument is a leaf of the signature (one program
serves every value), and it used to be traced as a 0-d float64 tensor; eagerly it is a
Python float, a weak scalar, so the first call already differed: ``x * s`` on an int64
or bool tensor was float64 (float32 eagerly, and in torch); ``x + 0.1 * (s > 0)`` on
float64 data added a float32 0.1 (7e-8 off: eagerly ``s > 0`` is a bool, ``0.1 * True``
the float 0.1); ``return s * 2`` gave a tensor where eager gives a float.  Now each float
leaf is traced as a ``SymArg`` (int_args.py) holding the float, whose closure reads the
call's leaf: the int arguments' scheme, from the first call on.

- Arithmetic with numbers gives SymArgs (no guard); a comparison or ``bool()`` records a
  guard (``if s > 0``: a program per outcome, not per value).
- As a tensor operand it promotes as the Python float it claims to be (``__class__``)
  and becomes a runtime scalar input (``Tracer.runtime_scalar``) of the operand's dtype.
- Any other read (``float(s)``, ``math.sqrt(s)``, formatting, hashing, a SymArg left in
  the graph's attributes or in the returned values, ``type(s)``) is an ESCAPE: the floats
  it was made of are guarded by their key (type and ``float.hex``: -0.0, inf and nan each
  their own, nan equal to nan), so the entry serves that value only.  A trace that fails
  on followed floats runs again on the plain floats, guarded the same way.
- An int argument's SymArg and a float's have separate recorders (their positions count
  different leaves): an expression mixing both (``lr / (i + 1)``) is led by the int
  recorder, and an escape of it reaches the float recorder too (``SymArg.others``).

Measured (2026-12-02, 64 float32s, 200 values a round, median of 8 rounds of separate
before/after processes interleaved, load ~3 on 2 cores): a call of ``x * s + 1`` 7.78 ->
7.49 us, of ``(x - s) * t`` 9.04 -> 8.52 us (the leaf is read by its closure, not copied
into a new 0-d array per call); still one program for every value.
"""
from __future__ import annotations

import threading

from . import followed
from .errors import TraceError
from .int_args import CallValue, Recorder, SymArg
from .python_guards import described


MAX_FLOAT_VALUES_TRACED = 8   # NOTE (float values traced)


def float_key(value):
    """What a float guard compares: the type, and for a float its bits in text
    (``float.hex``: -0.0 differs from 0.0, nan equals nan; NOTE (plain keys))."""
    return (float, value.hex()) if type(value) is float else (type(value), value)


def float_cell(compiled) -> threading.local:
    """The compiled function's per-thread cell whose ``values`` are the current call's
    leaves (``CompiledFunction._signature`` sets it)."""
    cell = compiled.__dict__.get("_float_cell")
    if cell is None:
        cell = compiled.__dict__["_float_cell"] = threading.local()
    return cell


class FloatArguments:
    """The float leaves of one trace: followed (``follow=True``) or plain (a retrace after
    the followed trace failed, every float then guarded by its key)."""

    def __init__(self, compiled, leaves, follow: bool = True) -> None:
        self.compiled = compiled
        self.cell = float_cell(compiled)
        self.cell.values = leaves
        self.positions = tuple(k for k, leaf in enumerate(leaves) if type(leaf) is float)
        # (the leaves' count and the floats' positions stand for the structure: a traced
        # treedef may hold symbolic ints, which a hash would specialise)
        self.structure = (len(leaves), self.positions)
        self.follow = follow
        self.rec = Recorder(tuple(leaves), self.cell, self.positions) \
            if follow and self.positions else None
        if self.rec is not None:
            self.rec.floats = True

    def traced(self, position: int, leaf):
        """What the trace sees for the float ``leaf`` at ``position``."""
        if self.rec is None:
            return leaf
        # (the closure reads its own cell, whatever values it is given: an int argument's
        # recorder may lead an expression mixing both, see _joined in int_args.py)
        return SymArg(leaf, lambda values, k=position, cell=self.cell: cell.values[k],
                      f"float argument {position}", frozenset((position,)), self.rec)

    def finish(self, entry) -> None:
        """Close the recorder after ``entry`` was traced and planned: its guards and the
        escaped floats' key guards join ``entry.guards``."""
        from .int_signature import _escape_left_in_graph, _plain_escaped, _plain_tree
        if not self.positions:
            return
        rec, cell = self.rec, self.cell
        if rec is None:   # traced on the plain floats: each one is part of the program
            specialised = {k: cell.values[k] for k in self.positions}
            texts: dict = {}
        else:
            try:
                if not entry.fallback:
                    _escape_left_in_graph(entry.traced)
                    entry.out_static = [CallValue(v.fn, cell) if type(v) is SymArg and
                                        v.rec is rec and not v.others else
                                        _plain_escaped(v) for v in entry.out_static]
                    entry.out_treedef = _plain_tree(entry.out_treedef)
            finally:
                rec.active = False
            if entry.fallback:
                return
            specialised, texts = rec.specialised, rec.guards
        if specialised:
            self._count_specialised()
        guards = [described(lambda check=check: _holds(check, cell.values),
                            f"float guard {text}") for text, (check, _) in texts.items()]
        for k, value in sorted(specialised.items()):
            guards.append(described(lambda k=k, key=float_key(value):
                                    float_key(cell.values[k]) == key,
                                    f"float guard float argument {k} == {value!r} "
                                    f"(specialised)"))
        entry.guards = guards + list(entry.guards)

    # NOTE (float values traced): a float read as a plain value (``tg.tensor(s)``,
    # ``np.exp(s)``) specialises the program on it; a value new at every call (a decaying
    # lr) then traced at every call, where before (a 0-d tensor: such a read stopped the
    # trace) the signature ran eagerly. As PyTorch's recompile limit (8), a signature
    # whose float arguments were specialised this many times runs eagerly from then on.
    def refuse_past_limit(self) -> None:
        counts = self.compiled.__dict__.get("_float_specialised", {})
        if self.positions and counts.get(self.structure, 0) >= MAX_FLOAT_VALUES_TRACED:
            raise TraceError(f"its float arguments were read as plain values in "
                             f"{MAX_FLOAT_VALUES_TRACED} traces (a program per value)")

    def _count_specialised(self) -> None:
        counts = self.compiled.__dict__.setdefault("_float_specialised", {})
        counts[self.structure] = counts.get(self.structure, 0) + 1

    def close(self) -> None:
        if self.rec is not None:
            self.rec.active = False


def _holds(check, values) -> bool:
    try:
        return bool(check(values))
    except Exception:  # noqa: BLE001 - (a division by zero at this value): trace again
        return False


# NOTE (float arguments written to state): ``g["lr"] = lr`` in the compiled function (lr a
# float argument), then ``opt.step()``: the optimizer's runtime scalar reads ``g["lr"]``
# at each call (optim/_capture.py), but a replay does not repeat the function's Python
# write, so it read the value of the last trace: the weights differed from eager's by
# 0.027 after lr 0.1, 0.05, 0.02, 0.05 (the fourth call replayed the second's program
# with the third's lr).  The same write with a static float (static_argnames) is wrong
# the same way (outside this file's reach).  A runtime scalar whose read, run once at the
# trace, escapes a followed float argument therefore refuses the trace, which is not
# retried on plain floats: the signature runs eagerly, as eager does.
class FloatWrittenToState(TraceError):
    """A runtime scalar reads state the function wrote from a float argument."""


def check_scalar_read(read) -> None:
    """Raise FloatWrittenToState where ``read()`` (a runtime scalar's reader) reads a
    followed float argument (NOTE (float arguments written to state))."""
    recorders = [r for r in getattr(followed._OPEN, "recorders", ())
                 if r.active and getattr(r, "floats", False)]   # (a size's has none)
    if not recorders:
        return
    before = [r.escape_count for r in recorders]
    try:
        read()
    except Exception:  # noqa: BLE001 - (state made later in the trace): nothing read
        return
    if [r.escape_count for r in recorders] != before:
        raise FloatWrittenToState(
            "a runtime scalar (an optimizer's hyper-parameter) reads a value the function "
            "computed from a float argument and stored in Python state (g['lr'] = lr): a "
            "replay would not repeat that write")
