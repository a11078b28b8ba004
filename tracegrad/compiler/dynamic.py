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
from . import plan_cache
from .entry import Entry, build_entry, extern_eval
# mark_dynamic is public here too (tracegrad.compiler.dynamic.mark_dynamic)
from .dynamic_dims import candidate_dims, mark_dynamic, symbolic_key  # noqa: F401
from .fit_checks import (FailedRegions, _check_by_values, _differs_by_values,
                         _refuse_growing_graph, _refuse_unrolled_early, _same_graph,
                         sizes_keeping_guards)
from .guards import (aliases_at, made_inputs_differ, record_guards, residue_modulus,
                     residues_hold)
from .made_sizes import sources_at
from .symbolic import (NotSymbolic, _Object, fit, fitted_sizes, finish_program, instantiate,
                       same)
from .symbolic_eval import Evaluator
from .symbolic_params import parametrise


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
    """What a symbolic instance shares with its group beyond the fitted programs.  A
    captured tensor or a runtime scalar counts by its kind, not its identity: each trace
    may capture a tensor of its own (``backward()``'s implicit gradient of one) or read a
    scalar (an optimizer's lr) through a getter of its own, and an instance always reads
    what its own trace captured."""
    def ref(r):
        kind, x = r
        if kind == "scalar":    # (its getter, a 0-d array of its dtype): a getter per trace
            return (kind, x[1].dtype)
        if kind == "leaf_grad":  # a leaf's current .grad (NOTE (gradient reads), tracer.py)
            return (kind, x._data.ndim, x._data.dtype)
        if kind != "captured":
            return r
        # NOTE: its shape may follow s0 (a constant the trace made, cross_entropy's
        # zeros of the batch's shape); the graph's INPUT node holds it, and is fitted
        return (kind, x._data.ndim, x._data.dtype, x._requires_grad)
    return ([ref(r) for r in e.input_sources], e.n_outputs, e.out_treedef,
            [(ref(r), c) for r, c in e.writes], [ref(r) for r in e.diff_inputs],
            e.grad_present, e.saved_reads, e.saved_copies)


# Tests set this: every instance is then also planned for real at its size and must equal
# the fitted program, or (where equal constants merged differently: a size that equals
# another dimension) give the same results as the planned program on random inputs
CHECK_INSTANCES = False


# NOTE (guards instead of a retrace) in symint.py: False retraces every new size (for a
# function that inspects the type of a size, ``type(n) is int``: the one use the guard
# trace cannot see, since it then takes another path than a plain trace)
SERVE_ON_GUARDS = True
RETRACES_KEPT = 16   # reasons shown per group (a guard s0 != 64 may break at every call)


# NOTE (planned range): the largest size a fit plans to check its planner's choices above
# its probes (tracing there may build an s0 x s0 constant: 4099^2 float32 is 64 MiB)
MAX_PLANNED_CHECK = 4096
# ... and the size it plans at least up to (a batch of up to ~1000 is served on the guards)
PLANNED_TOP = 1024


def sizes_bound(tensors, dims, leaves) -> int:
    """The largest constant a kernel's index arithmetic is likely to compare with: every
    dimension, and each argument's element count apart from its dims bound to ``s0``."""
    bound = max([d for x in tensors for d in x._data.shape], default=0)
    for i in {i for i, _ in dims}:
        shape = leaves[i]._data.shape
        bound = max(bound, int(np.prod([m for d, m in enumerate(shape) if (i, d) not in dims])))
    return bound


def _primes_above(n: int, count: int) -> list[int]:
    """The ``count`` smallest primes above ``n``: probe sizes unlikely to equal another
    constant of the function (equal constants merge in a kernel body, which then no longer
    fits the body at other sizes)."""
    out: list[int] = []
    m = n
    while len(out) < count:
        m += 1
        if all(m % d for d in range(2, int(m ** 0.5) + 1)):
            out.append(m)
    return out


class SymbolicGroup:
    """Compiled programs for every size ``s0 >= 2`` of the dims in ``dims``: one fit per
    distinct trace.  A second fit serves a trace the first does not: a training step's
    first call (no ``.grad`` yet) traces otherwise than the steps after it, and a Python
    branch on the size takes the other way above some size."""

    MAX_FITS = 3

    def __init__(self, compiled, dims, n: int, entry: Entry, treedef, leaves) -> None:
        self.dims = dims
        self.guard_failures: list[str] = []   # sizes traced again and not served
        self.traced_again: list[str] = []     # sizes traced again (a guard broke), served
        self.sizes_served: set[int] = {n}
        self.fits = [_Fit(compiled, dims, n, entry, treedef, leaves)]
        self._refit_failed = False
        self._failed = FailedRegions()
        self._kept: dict = {}   # signature -> None: the sizes' programs held, oldest first
        self.served_without_retrace = 0   # sizes whose guards held (NOTE in symint.py)

    @property
    def traced(self):
        return self.fits[0].traced

    @property
    def parametrised(self) -> int:
        return self.fits[0].parametrised

    def add_fit(self, compiled, n: int, entry: Entry, treedef, leaves) -> None:
        """Fit the programs of ``entry`` (a size whose trace no fit serves) as well; after
        MAX_FITS fits, or a failure whose sizes no guard bounds, such sizes stay
        specialised without trying; after a failure in a region bounded by guards (sizes
        2 and 3 below a branch on ``s0 > 3``), only that region's sizes do
        (``FailedRegions``)."""
        if self._refit_failed or len(self.fits) >= self.MAX_FITS or self._failed.holds(n):
            return
        try:
            self.fits.append(_Fit(compiled, self.dims, n, entry, treedef, leaves))
        except Exception as e:  # noqa: BLE001 - not symbolic: that trace stays specialised
            self._refit_failed = not self._failed.add(e)
            self.note_retrace(f"s0={n}: no further fit ({e})")
            return
        self.sizes_served.add(n)

    # NOTE (programs kept per size): each size a group serves is a cached entry of the
    # compiled function (a dict lookup at the next call there), holding that size's
    # temps; a function called at every batch size of a server would keep them all.
    # Beyond MAX_KEPT sizes the oldest is dropped: a later call there is a new size again
    # (a trace and the fit's evaluation, ~2 ms; no LLVM, NOTE (size table)).
    MAX_KEPT = 64

    def keep(self, key, cache: dict) -> None:
        """``cache[key]`` now holds this group's program at a size; drop the oldest such
        entry from ``cache`` beyond MAX_KEPT."""
        self._kept.pop(key, None)
        self._kept[key] = None
        while len(self._kept) > self.MAX_KEPT:
            oldest = next(iter(self._kept))
            del self._kept[oldest]
            cache.pop(oldest, None)

    def describe(self) -> str:
        dims = ", ".join(f"arg {i} dim {d}" for i, d in sorted(self.dims))
        sizes = "; ".join(fitted_sizes(self.traced)[:6])
        params = (f"; {self.parametrised} kernel(s) take size parameters"
                  if self.parametrised else "")
        fits = f"; {len(self.fits)} fits" if len(self.fits) > 1 else ""
        guards = self.fits[0].guarded.describe() + "".join(
            f"; fit {k + 2}{f.guarded.describe()}" for k, f in enumerate(self.fits[1:]))
        return (f"s0 = {dims} (guards: s0 >= 2, those dims equal{guards}; sizes 0 and 1 are "
                f"specialised; {sizes}){params}{fits}")

    def _check_without_retrace(self, compiled, treedef, leaves, n: int, f, e: Entry) -> None:
        """CHECK_INSTANCES: a size served on its guards must be the one a retrace gives."""
        traced = build_entry(compiled, treedef, leaves, (), {}, compile_code=False)
        if _metadata(traced) != _metadata(f.entry) or not _same_graph(
                instantiate(f.traced, n), traced.traced):
            raise AssertionError(f"s0={n}: the guards held ({f.guarded.describe()}) but the "
                                 f"retrace differs from the fitted graph")
        if not f._matches(n, traced):
            _check_by_values(e, traced, n)

    def instance(self, compiled, treedef, leaves, n: int) -> Entry | None:
        """An entry for size ``n``, or None when a guard breaks (the reason is kept)."""
        start = time.perf_counter()
        broken = []
        for f in self.fits:
            e = f.without_retrace(n)
            if e is not None:
                if CHECK_INSTANCES:
                    self._check_without_retrace(compiled, treedef, leaves, n, f, e)
                e.compile_seconds = time.perf_counter() - start
                self.sizes_served.add(n)
                self.served_without_retrace += 1
                return e
            if f.broken_guard is not None:
                broken.append(f"guard {f.broken_guard} broke")
                f.broken_guard = None
        # outside the sizes a fit planned, its planner's choices are checked by planning
        # (NOTE (planned range)); inside, the trace is the guard
        outside = any(not f.planned(n) for f in self.fits)
        traced = build_entry(compiled, treedef, leaves, (), {}, compile_code=False,
                             plan_programs=CHECK_INSTANCES or outside)
        reason = "the trace differs from the symbolic one"
        for f in self.fits:
            if _metadata(traced) == _metadata(f.entry) and _same_graph(
                    instantiate(f.traced, n), traced.traced):
                if not (f.planned(n) or f._matches(n, traced)):
                    reason = (f"the program planned there is not the symbolic one (sizes "
                              f"{f.lo}..{f.hi} planned)")
                    continue
                e = f.instance(traced, n)
                e.compile_seconds = time.perf_counter() - start
                self.sizes_served.add(n)
                if broken:   # why this size was traced (served all the same)
                    self.traced_again.append(f"s0={n}: {'; '.join(broken)}")
                    del self.traced_again[:-RETRACES_KEPT]
                return e
        self.note_retrace(f"s0={n}: {'; '.join(broken + [reason])}")
        return None

    def note_retrace(self, why: str) -> None:
        """Keep why a size was traced again (cache_info, explain): the last few only."""
        self.guard_failures.append(why)
        del self.guard_failures[:-RETRACES_KEPT]


class _Fit:
    """One fitted program (NOTE (symbolic programs by fitting)) and its compiled kernels."""

    def _fit_at_primes(self, q: list, n: int, entry: Entry, at) -> None:
        """Fit at the primes ``q[:4]``, else at ``q[4:]``: a size-dependent constant can
        equal another constant at one prime and merge with it (BatchNorm's 1/(s0 - 1) is
        its momentum 0.1 at s0 = 11), so that probe's program has a node fewer."""
        first = None
        for p in (q[:4], q[4:]):
            try:
                self._fit((p[0], p[1], p[2]), p[3], at)
                if not same(instantiate(self.traced, n), entry.traced):
                    raise NotSymbolic(f"the graph traced at the call's size ({n}) is not "
                                      f"the one fitted at {p[0]}, {p[1]}, {p[2]}")
                return
            except NotSymbolic as e:
                first = first or e
        raise first   # the first set's reason

    def __init__(self, compiled, dims, n: int, entry: Entry, treedef, leaves) -> None:
        self.entry = entry
        # primes above every dimension of the arguments: no probe size then divides (or
        # equals) a product of the other dimensions
        tensors = [x for x in leaves if isinstance(x, Tensor)] + [
            ref for kind, ref in entry.input_sources if kind == "captured"]
        dims_seen = [d for x in tensors for d in x._data.shape]
        q = _primes_above(max([n, *dims_seen]), 8)
        entries: dict[int, Entry] = {n: entry}

        def at(m: int, plan: bool = True) -> Entry:
            e = entries.get(m)
            if e is None or (plan and e.forward_plan is None):
                try:
                    e = build_entry(compiled, treedef, _leaves_at(leaves, dims, m), (), {},
                                    compile_code=False, plan_programs=plan)
                except Exception as err:  # noqa: BLE001 - (x.view(s0 // 2, ...) at odd s0)
                    raise NotSymbolic(f"the function raised at s0={m} "
                                      f"({type(err).__name__}: {err})") from None
                entries[m] = e
                if _metadata(e) != _metadata(entry):
                    raise NotSymbolic("the traced function's inputs or outputs change with s0")
            return e
        _refuse_unrolled_early(compiled, dims, n, entry, at)
        # the sizes of the call and two probes; if their programs do not fit (the call's
        # size or a probe's may equal another dimension), three prime sizes, whose trace
        # must still be the call's at its size; then sizes that keep the guards
        guarded = None
        try:
            self._fit((n, n + 1, 2 * n + 1), 3 * n + 2, at)
            fitted_at_n = True
        except NotSymbolic:
            _refuse_growing_graph(entries, (n, n + 1, 2 * n + 1))
            try:
                self._fit_at_primes(q, n, entry, at)
                fitted_at_n = False
            except NotSymbolic as failed:
                # NOTE (probes that keep the guards)
                guarded = record_guards(compiled, treedef, leaves, dims)
                failed.recorder = guarded.recorder   # where it failed (FailedRegions)
                sizes = sizes_keeping_guards(guarded.recorder, n, dims_seen)
                if sizes is None or sizes == (n, n + 1, 2 * n + 1, 3 * n + 2):
                    raise
                try:
                    self._fit(sizes[:3], sizes[3], at, residue_modulus(guarded.recorder))
                except NotSymbolic as again:
                    again.recorder = guarded.recorder
                    raise
                fitted_at_n = True
        # NOTE (kernel parameters): kernels whose bodies depend on the size load those
        # values at run time; then the group compiles its own kernels once
        self.run_forward, params_fwd = parametrise(self.forward)
        self.run_backward, params_bwd = ((None, 0) if self.backward is None
                                         else parametrise(self.backward))
        self.run_forward, self.run_backward = map(_runnable, (self.run_forward,
                                                             self.run_backward))
        self.parametrised = params_fwd + params_bwd
        # the programs that run, evaluated at each new size (symbolic_eval's module doc)
        self._evaluators = [None if t is None else Evaluator(t)
                            for t in (self.run_forward, self.run_backward)]
        self.kernels_forward, self.kernels_backward = entry.forward, entry.backward
        if self.parametrised or not fitted_at_n:
            # the call's own kernels do not serve: they are specialised (or, fitted without
            # the call's size, may differ from the fitted bodies there)
            if not isinstance(entry.forward, CompiledProgram):
                raise NotSymbolic("kernel bodies that depend on the size run on the CPU only")
            fwd, bwd = self._run_plans(n)
            self.kernels_forward = CompiledProgram(fwd, extern_eval, size_table=True)
            if bwd is not None:
                self.kernels_backward = CompiledProgram(bwd, extern_eval, size_table=True)
        elif isinstance(entry.forward, CompiledProgram):
            # the call's kernels serve; its drivers hold its sizes: the group's drivers,
            # which read them from a size table (NOTE (size table)), compile now, once
            fwd, bwd = self._run_plans(n)
            self.kernels_forward = CompiledProgram(fwd, extern_eval, size_table=True,
                                                   kernels_from=entry.forward)
            if bwd is not None:
                self.kernels_backward = CompiledProgram(bwd, extern_eval, size_table=True,
                                                        kernels_from=entry.backward)
        self.broken_guard = None
        # NOTE (probes that keep the guards): a fit at one residue class was planned there
        self.residues = None if guarded is None else guarded.recorder
        self.guarded = guarded or record_guards(compiled, treedef, leaves, dims)
        self.guarded.check(self.traced)
        g = self.guarded.entry
        if g is not None and self.guarded.why_not is None:
            if _metadata(g) != _metadata(entry) or not g.guards_hold():
                self.guarded.why_not = "the trace with symbolic sizes reads other inputs"
            else:
                self.guarded.why_not = made_inputs_differ(g, list(entries.items()))
        self._extend_planned_range(sizes_bound(tensors, dims, leaves), at)
        # the probes' plans: a later process fits from the disk cache without planning
        # (their kernels compiled here as the fit's; sources are rendered when needed)
        for probe in entries.values():
            for program in (probe.forward_plan, probe.backward_plan):
                plan_cache.save(program, with_sources=False)

    def without_retrace(self, n: int) -> Entry | None:
        """The entry for size ``n`` when this fit's guard trace serves it: no escape, ``n``
        inside the planned range, the entry's own guards (train/eval, .grad, param_groups,
        requires_grad) and every recorded size guard hold.  A broken size guard is kept in
        ``broken_guard`` (the caller retraces)."""
        g = self.guarded
        if not SERVE_ON_GUARDS or g.why_not is not None or not g.entry.guards_hold():
            return None
        self.broken_guard = g.broken(n)
        if self.broken_guard is not None or not self.lo <= n <= self.hi:
            return None
        e = self.instance(g.entry, n)   # (unplanned: CHECK_INSTANCES checks it apart)
        e.input_sources = sources_at(e.input_sources, n)   # NOTE (tensors made from a size)
        if e.out_aliases:
            e.out_aliases = aliases_at(e.out_aliases, n)
        return e

    def planned(self, n: int) -> bool:
        """Whether ``n`` is among the sizes whose programs the fit planned around: inside
        ``[lo, hi]`` and, for a fit at sizes that keep a residue, in that residue class
        (elsewhere a trace equal to the fitted graph is served only if planned too)."""
        return self.lo <= n <= self.hi and (self.residues is None
                                            or residues_hold(self.residues, n))

    def _extend_planned_range(self, bound: int, at) -> None:
        """NOTE (planned range): the planner simplifies index arithmetic by comparing value
        ranges with constants (``x // 16`` is 0 while ``x < 16``; ``i // s0`` is 0 while
        ``i < 5 <= s0``), so a body fitted at a few sizes may be wrong at others: a flat
        prefix ``x.t().reshape(-1)[:s0]`` of a (16, s0) tensor fitted at 2, 3, 5, 8 read
        out of bounds at 17.  Such a comparison of a size-dependent range with a constant
        flips once as the size grows, so a program that is the planned one at its lowest
        planned size and at a size above every constant the index arithmetic can hold
        (``bound``: each argument's elements apart from ``s0``, or every dimension) is the
        planned one between them and above; the fit serves ``[lo, hi]`` on its trace alone
        and plans any other size, which must then equal the fitted program (or is
        specialised).  The lowest size, 2, often equals another dimension (equal constants
        merge, the plan differs in form): there the fitted program must give the planned
        program's results on random inputs (a folded ``i // s0`` reads other elements).
        ``bound`` above ``MAX_PLANNED_CHECK`` (the check traces at that size: an s0 x s0
        constant) is not planned: larger sizes are then planned when called."""
        self.lo, self.hi = min(self.sizes + (self.check,)), max(self.sizes + (self.check,))
        if bound <= MAX_PLANNED_CHECK:
            # NOTE: any planned top keeps the argument (the plans at both ends are
            # checked); a wide one lets the guards serve every batch size up to it.  It
            # must keep the guards, as the sizes it stands for do (a branch on s0 > 100)
            floor = max(bound, self.hi)
            for top in dict.fromkeys((self._kept_prime(max(floor, PLANNED_TOP), floor),
                                      _primes_above(floor, 1)[0])):
                if top is not None and self._plans_at(top, at):
                    self.hi = top
                    break
        # the smallest size served; its plan may differ in form only (2 equals another
        # dimension and equal constants merged): then the results must be the same
        low = next((m for m in range(2, self.lo) if self._keeps_guards(m)), None)
        if low is not None and self._plans_at(low, at, by_values=True):
            self.lo = low

    def _keeps_guards(self, m: int) -> bool:
        return self.guarded.why_not is not None or self.guarded.broken(m) is None

    def _kept_prime(self, top: int, floor: int) -> int | None:
        """The largest prime in ``(floor, p]`` (``p`` the first prime above ``top``) at
        which the recorded guards hold, else the largest size there at which they hold (a
        residue guard, ``s0 % 2 == 0``, keeps no prime), or None."""
        fallback = None
        for m in range(_primes_above(top, 1)[0], floor, -1):
            if not self._keeps_guards(m):
                continue
            if all(m % d for d in range(2, int(m ** 0.5) + 1)):
                return m
            fallback = fallback or m
        return fallback

    def _plans_at(self, m: int, at, by_values: bool = False) -> bool:
        """Whether the fit is the program planned at size ``m`` (or, ``by_values``, gives
        its results: a plan that differs in form only)."""
        try:
            e = at(m)
        except NotSymbolic:
            return False
        if not same(instantiate(self.traced, m), e.traced):
            return False
        return self._matches(m, e) or by_values and _differs_by_values(
            self._unchecked_instance(e, m), e, m) is None

    def _fit(self, sizes, check: int, at, modulus: int = 1) -> None:
        """Fit the programs at ``sizes`` (which keep a residue modulo ``modulus``, if
        above 1) and check the fit at size ``check``."""
        self.sizes, self.check = tuple(sizes), check
        # traces first (cheap): a graph that changes with the size (an unrolled loop over
        # it, a branch) fails here before any planning
        try:
            self.traced = fit([at(m, plan=False).traced for m in sizes], sizes, modulus)
        except NotSymbolic as e:
            raise NotSymbolic(f"the graphs traced at sizes {', '.join(map(str, sizes))} do "
                              f"not fit ({e})") from None
        probes = [at(m) for m in sizes]
        self.forward = fit([p.forward_plan for p in probes], sizes, modulus)
        self.backward = (None if probes[0].backward_plan is None else
                         fit([p.backward_plan for p in probes], sizes, modulus))
        fourth = at(check)
        if not same(instantiate(self.traced, check), fourth.traced):
            raise NotSymbolic(f"the graph traced at size {check} is not the fitted one "
                              f"(fitted at {', '.join(map(str, sizes))})")
        if not self._matches(check, fourth):
            raise NotSymbolic(f"the program at size {check} is not the fitted one (fitted at "
                              f"{', '.join(map(str, sizes))})")

    def _plans(self, n: int):
        """The fitted programs at size ``n``, every value a constant (what the planner gives)."""
        fwd = finish_program(instantiate(self.forward, n))
        bwd = None if self.backward is None else finish_program(instantiate(self.backward, n))
        return fwd, bwd

    def _run_plans(self, n: int):
        """The programs that run at size ``n``: parametrised kernels, their values for ``n``
        (``finish_program(instantiate(...))`` of the run templates, through closures)."""
        fwd, bwd = (None if e is None else e.finish(e(n)) for e in self._evaluators)
        return fwd, bwd

    def _matches(self, n: int, real: Entry) -> bool:
        fwd, bwd = self._plans(n)
        return same(fwd, real.forward_plan) and (
            real.backward_plan is None or same(bwd, real.backward_plan))

    def instance(self, traced: Entry, n: int) -> Entry:
        """The entry for size ``n`` from its trace (which this fit's graph matches)."""
        e = self._unchecked_instance(traced, n)
        if CHECK_INSTANCES and traced.forward_plan is not None and not self._matches(n, traced):
            _check_by_values(e, traced, n)
        return e

    def _unchecked_instance(self, traced: Entry, n: int) -> Entry:
        e = copy.copy(traced)  # the exact trace: its inputs, writes and static outputs
        e.forward_plan, e.backward_plan = self._run_plans(n)
        e.forward = CompiledProgram(e.forward_plan, extern_eval, size_table=True,
                                    kernels_from=self.kernels_forward)
        if e.backward_plan is not None:
            e.backward = CompiledProgram(e.backward_plan, extern_eval, size_table=True,
                                         kernels_from=self.kernels_backward)
        return e


def _runnable(template):
    """NOTE (instances carry no graphs): the fitted program that runs, without its graphs
    and fusion (``graph``, ``traced``, ``fusion``: None in every instance).  Nothing at run
    time reads them, and they were most of the template: a new length of the transformer
    layer instantiated ~2600 template objects, now ~850; ``explain()`` and dumps trace and
    plan programs of their own."""
    if not isinstance(template, _Object):
        return template   # None, or a program equal at every size: shared as it is
    return _Object(template.cls, {**template.fields, "graph": None, "traced": None,
                                  "fusion": None})


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
