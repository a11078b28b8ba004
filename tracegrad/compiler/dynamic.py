"""Which dimensions become symbolic, and the compiled group that serves them (``s0``).

``compile(fn, dynamic=None)`` (PyTorch's automatic dynamic shapes): a dimension that
changes size between calls with otherwise the same signature is tried as a symbolic size
the second time it changes; ``dynamic=True`` tries the leading dimension of the first
tensor argument (and every argument dimension of the same size) from the first call;
``mark_dynamic(t, dim)`` names one ahead of time; ``dynamic=False`` specialises.

NOTE (one symbol): a group has a single symbol ``s0``; the dimensions bound to it must be
equal at every call (that equality is part of the group's key).  Sizes 0 and 1 are always
specialised.  Whether a program can be symbolic at all is decided by fitting programs
planned at three sizes (NOTE (symbolic programs by fitting) in ``symbolic.py``); when it
cannot, the function is specialised per size as before and ``cache_info().symbolic``
says why.
"""
from __future__ import annotations

import copy
import time

import numpy as np

from .._tensor import Tensor, _wrap
from ..runtime.cpu_program import CompiledProgram
from .entry import Entry, build_entry, extern_eval
from .symbolic import NotSymbolic, fit, fitted_sizes, finish_program, instantiate, same


def mark_dynamic(t: Tensor, dim: int) -> None:
    """Mark dimension ``dim`` of ``t`` as symbolic for the compiled functions it is passed to.

    >>> import tracegrad as torch
    >>> x = torch.randn(8, 3)
    >>> torch.compiler.mark_dynamic(x, 0)
    """
    if not isinstance(t, Tensor):
        raise TypeError(f"mark_dynamic: expected a Tensor, got {type(t).__name__}")
    ndim = t._data.ndim
    if not -ndim <= dim < ndim or ndim == 0:
        raise IndexError(f"mark_dynamic: dimension out of range (expected to be in range of "
                         f"[{-ndim}, {ndim - 1}], but got {dim})")
    marked = set(t.__dict__.get("_dynamic_dims", ()))
    marked.add(dim % ndim)
    t.__dict__["_dynamic_dims"] = frozenset(marked)


def symbolic_key(key, dims) -> tuple:
    """``key`` with every (leaf, dim) in ``dims`` replaced by the symbol ``"s0"``."""
    treedef, parts, grad_mode = key
    parts = list(parts)
    for leaf in {i for i, _ in dims}:
        shape, *rest = parts[leaf]
        shape = tuple("s0" if (leaf, d) in dims else n for d, n in enumerate(shape))
        parts[leaf] = (shape, *rest)
    return (treedef, tuple(parts), grad_mode)


def candidate_dims(mode, key, leaves, previous: list) -> list[tuple[frozenset, int]]:
    """Sets of (leaf, dim) pairs to try binding to ``s0``, widest first, with their size.
    Dims equal by coincidence (a square input) may not fit together: the leading dims of
    the arguments alone come next."""
    dims, n = choose_dims(mode, key, leaves, previous)
    if not dims:
        return []
    leading = frozenset((i, d) for i, d in dims if d == 0)
    return [(dims, n)] + ([(leading, n)] if leading and leading != dims else [])


def choose_dims(mode, key, leaves, previous: list) -> tuple[frozenset, int]:
    """The (leaf, dim) pairs to bind to ``s0`` at this call and their size (0: none)."""
    parts = key[1]
    shapes = {i: p[0] for i, p in enumerate(parts) if isinstance(p, tuple)}
    marked = {(i, d) for i in shapes for d in leaves[i].__dict__.get("_dynamic_dims", ())}
    if marked:
        return _same_size(marked, shapes)
    if mode is True:
        first = next((i for i, s in shapes.items() if s), None)
        if first is None:
            return frozenset(), 0
        n = shapes[first][0]
        return _same_size({(i, d) for i, s in shapes.items() for d, m in enumerate(s)
                           if m == n}, shapes)
    if mode is None:
        for old in reversed(previous):
            changed = _changed_dims(old, key)
            if changed is not None:
                if not changed:
                    continue
                olds = {old[1][i][0][d] for i, d in changed}
                if len(olds) == 1 and min(olds) >= 2:
                    return _same_size(changed, shapes)
                return frozenset(), 0
    return frozenset(), 0


def _changed_dims(old, key):
    """Dims whose size differs between two signatures alike in everything else (or None)."""
    if old[0] != key[0] or old[2] != key[2] or len(old[1]) != len(key[1]):
        return None
    changed = set()
    for i, (a, b) in enumerate(zip(old[1], key[1])):
        if not isinstance(a, tuple) or not isinstance(b, tuple):
            if a != b:
                return None
            continue
        if a[1:] != b[1:] or len(a[0]) != len(b[0]):
            return None
        changed |= {(i, d) for d, (x, y) in enumerate(zip(a[0], b[0])) if x != y}
    return changed


def _same_size(dims, shapes) -> tuple[frozenset, int]:
    sizes = {shapes[i][d] for i, d in dims}
    if len(sizes) != 1 or min(sizes) < 2:
        return frozenset(), 0   # NOTE (one symbol); 0 and 1 stay specialised
    return frozenset(dims), sizes.pop()


def _leaves_at(leaves, dims, n: int) -> list:
    """Stand-ins for ``leaves`` with every dim in ``dims`` resized to ``n`` (the trace reads
    shapes, dtypes and requires_grad only)."""
    out = list(leaves)
    for i in {i for i, _ in dims}:
        t = leaves[i]
        shape = tuple(n if (i, d) in dims else m for d, m in enumerate(t._data.shape))
        s = _wrap(np.broadcast_to(np.zeros((), t._data.dtype), shape))
        s._requires_grad = t._requires_grad
        out[i] = s
    return out


def _metadata(e: Entry) -> tuple:
    """What a symbolic instance shares with its group beyond the fitted programs."""
    def ref(r):
        kind, x = r
        return (kind, id(x)) if kind == "captured" else r
    return ([ref(r) for r in e.input_sources], e.n_outputs, e.out_treedef,
            [(ref(r), c) for r, c in e.writes], [ref(r) for r in e.diff_inputs],
            e.grad_present, e.saved_reads)


# Tests set this: every instance is then also planned for real at its size and must equal
# the fitted program (the planner's affinity in the size, which the fit assumes)
CHECK_INSTANCES = False


class SymbolicGroup:
    """One compiled program for every size ``s0 >= 2`` of the dims in ``dims``."""

    def __init__(self, compiled, dims, n: int, entry: Entry, treedef, leaves) -> None:
        self.dims = dims
        self.entry = entry
        self.guard_failures: list[str] = []
        self.sizes_served: set[int] = {n}
        sizes = (n + 1, 2 * n + 1)
        # traces first (cheap): a graph that changes with the size (an unrolled loop over
        # it, a branch) fails here before any planning
        traces = [build_entry(compiled, treedef, _leaves_at(leaves, dims, m), (), {},
                              compile_code=False, plan_programs=False) for m in sizes]
        for p in traces:
            if _metadata(p) != _metadata(entry):
                raise NotSymbolic("the traced function's inputs or outputs change with s0")
        self.traced = fit(entry.traced, traces[0].traced, n, n + 1)
        if not same(instantiate(self.traced, sizes[1]), traces[1].traced):
            raise NotSymbolic(f"the graph traced at a third size ({sizes[1]}) is not the "
                              f"fitted one")
        probes = [build_entry(compiled, treedef, _leaves_at(leaves, dims, m), (), {},
                              compile_code=False) for m in sizes]
        self.forward = fit(entry.forward_plan, probes[0].forward_plan, n, n + 1)
        self.backward = (None if entry.backward_plan is None else
                         fit(entry.backward_plan, probes[0].backward_plan, n, n + 1))
        third = self._plans(2 * n + 1)
        if not same(third[0], probes[1].forward_plan) or (
                third[1] is not None and not same(third[1], probes[1].backward_plan)):
            raise NotSymbolic("the program at a third size is not the fitted one")

    def describe(self) -> str:
        dims = ", ".join(f"arg {i} dim {d}" for i, d in sorted(self.dims))
        sizes = "; ".join(fitted_sizes(self.traced)[:6])
        return f"s0 = {dims} (guards: s0 >= 2, those dims equal; {sizes})"

    def _plans(self, n: int):
        fwd = finish_program(instantiate(self.forward, n))
        bwd = None if self.backward is None else finish_program(instantiate(self.backward, n))
        return fwd, bwd

    def instance(self, compiled, treedef, leaves, n: int) -> Entry | None:
        """An entry for size ``n``, or None when a guard breaks (the reason is kept)."""
        start = time.perf_counter()
        traced = build_entry(compiled, treedef, leaves, (), {}, compile_code=False,
                             plan_programs=False)
        if _metadata(traced) != _metadata(self.entry) or not _same_graph(
                instantiate(self.traced, n), traced.traced):
            self.guard_failures.append(f"s0={n}: the trace differs from the symbolic one")
            return None
        e = copy.copy(traced)  # the exact trace: its inputs, writes and static outputs
        e.forward_plan, e.backward_plan = self._plans(n)
        if CHECK_INSTANCES:
            real = build_entry(compiled, treedef, leaves, (), {}, compile_code=False)
            if not same(e.forward_plan, real.forward_plan) or (
                    real.backward_plan is not None
                    and not same(e.backward_plan, real.backward_plan)):
                raise AssertionError(f"symbolic program at s0={n} differs from the planned one")
        e.forward = CompiledProgram(e.forward_plan, extern_eval, kernels_from=self.entry.forward)
        if e.backward_plan is not None:
            e.backward = CompiledProgram(e.backward_plan, extern_eval,
                                         kernels_from=self.entry.backward)
        e.compile_seconds = time.perf_counter() - start
        self.sizes_served.add(n)
        return e


def _same_graph(a, b) -> bool:
    """``same`` for two graphs, through the dataclasses' own ``==`` where it can decide
    (a NaN constant or an array attribute makes it unable to: then the slow walk)."""
    try:
        if a == b:
            return True
    except (TypeError, ValueError):
        pass
    return same(a, b)


def group_size(group: SymbolicGroup, key) -> int:
    """The size of ``s0`` in ``key`` if it fits ``group``'s dims (equal, >= 2), else 0."""
    parts = key[1]
    sizes = set()
    for i, d in group.dims:
        p = parts[i] if i < len(parts) else None
        if not isinstance(p, tuple) or d >= len(p[0]):
            return 0
        sizes.add(p[0][d])
    n = sizes.pop() if len(sizes) == 1 else 0
    return n if n >= 2 else 0
