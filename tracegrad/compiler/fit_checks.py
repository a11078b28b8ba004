"""Checks a symbolic fit makes of the programs it traced and planned (``dynamic.py``):
a graph that grows with the size (an unrolled loop) is refused early, a fitted program is
compared with a planned one node by node or, where they differ in form only, by values."""
from __future__ import annotations

import itertools

import numpy as np

from ..runtime.cpu_program import CompiledProgram
from .entry import Entry, extern_eval
from .symbolic import NotSymbolic, same


def _refuse_growing_graph(entries: dict, sizes) -> None:
    """Raise NotSymbolic when the graphs traced at ``sizes`` grow by the same number of
    nodes per unit of size: a Python loop over the size (an RNN unrolled over the sequence
    length), which no probe size makes fit.  The retry at prime sizes above every
    dimension would otherwise trace that loop at hundreds of steps (an LSTM over lengths
    4..16 traced at 257, 263, 269: 30,000-node graphs, 3.8 s per new length)."""
    traced = [entries[m].traced for m in sizes if m in entries]
    if len(traced) < 3:
        return
    counts = [len(t.nodes) for t in traced]
    (n0, n1, n2), (c0, c1, c2) = sizes, counts
    slope = c1 - c0
    if slope and (c2 - c1) == slope * (n2 - n1) // (n1 - n0):
        raise NotSymbolic(f"the traced graph grows with s0 ({c0}, {c1}, {c2} nodes at sizes "
                          f"{n0}, {n1}, {n2}): a Python loop over the size")


def _check_by_values(instance: Entry, real: Entry, n: int) -> None:
    """CHECK_INSTANCES where the planned program differs in form: the symbolic program and
    the planned one must give the same results on the same random inputs."""
    message = _differs_by_values(instance, real, n)
    if message is not None:
        raise AssertionError(message)


def _differs_by_values(instance: Entry, real: Entry, n: int) -> str | None:
    """How the symbolic program at size ``n`` and the planned one differ in their results
    on the same random inputs (None: they agree)."""
    rng = np.random.default_rng(n)
    for mine, plan in ((instance.forward, real.forward_plan),
                       (instance.backward, real.backward_plan)):
        if plan is None:
            continue
        inputs = []
        for name in plan.inputs:
            info = plan.buffers[name]
            values = rng.standard_normal(info.shape) if info.dtype.kind in "fc" else \
                np.zeros(info.shape)
            inputs.append(values.astype(info.dtype))
        want = CompiledProgram(plan, extern_eval)([x.copy() for x in inputs])
        got = mine([x.copy() for x in inputs])
        for k, (a, b) in enumerate(zip(got, want)):
            # NOTE: the two may sum in another order (a merged constant can change fusion)
            scale = max(1.0, float(np.max(np.abs(b), initial=0.0))) if b.size else 1.0
            if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=1e-4 * scale,
                                                     equal_nan=True):
                return (f"symbolic program at s0={n}: result {k} differs from the planned "
                        f"program's (max abs error "
                        f"{np.max(np.abs(a - b)) if a.shape == b.shape else 'shape'})")
    return None


def _same_graph(a, b) -> bool:
    """``same`` for two graphs, node by node through the dataclasses' own ``==`` where it
    can decide (a NaN constant or an array attribute makes it unable to: then the slow
    walk, for that node only).  The seed training step's graph: 9.1 -> 0.2 ms of CPU."""
    if a.inputs != b.inputs or a.outputs != b.outputs or len(a.nodes) != len(b.nodes):
        return False
    for x, y in zip(a.nodes, b.nodes):
        try:
            if x == y:
                continue
        except (TypeError, ValueError):
            pass
        if not same(x, y):
            return False
    return True


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


def _refuse_unrolled_early(compiled, dims, n: int, entry: Entry, at) -> None:
    """``_refuse_growing_graph`` from the earlier call that differed only in ``dims`` (at
    size ``m``) and one probe, at the smallest size ``s >= 2`` that is neither: a graph
    that grows by the same non-zero number of nodes per unit of size between both pairs
    of sizes, exactly, is a Python loop over the size. An LSTM over lengths 4, 8, 12, 16
    is then refused at 8 after tracing 2 (it traced 9 before, and 9 and 17 before that:
    the trace costs in proportion to the size). Where the two calls traced graphs of one
    size, or anything else that is not such growth, the fit's own probes decide."""
    keys = compiled._signatures
    if not keys or any(keys[-1][1][i][0][d] != n for i, d in dims):
        return
    for old in reversed(keys[:-1]):
        earlier = compiled._cache.get(old)
        if _changed_dims(old, keys[-1]) == set(dims) and earlier is not None \
                and earlier.traced is not None:
            olds = {old[1][i][0][d] for i, d in dims}
            m = olds.pop()
            at_m, at_n = len(earlier.traced.nodes), len(entry.traced.nodes)
            if olds or at_m == at_n:   # (no growth: the probes at n + 1... fit it)
                return
            s = next(k for k in itertools.count(2) if k not in (m, n))
            try:
                at_s = len(at(s, plan=False).traced.nodes)
            except NotSymbolic:   # (it raised at s: NOTE (probes that keep the guards))
                return
            (a, ca), (b, cb), (c, cc) = sorted(((s, at_s), (m, at_m), (n, at_n)))
            if cb != ca and (cb - ca) * (c - b) == (cc - cb) * (b - a):
                raise NotSymbolic(f"the traced graph grows with s0 ({ca}, {cb}, {cc} nodes "
                                  f"at sizes {a}, {b}, {c}): a Python loop over the size")
            return


# NOTE (probes that keep the guards): a function that relies on a residue of the size
# (``x.view(x.size(0) // 2, 2, -1)``: the guard ``s0 % 2 == 0``) raises, or traces
# otherwise, at the probe sizes ``n + 1``, ``2n + 1`` and at primes.  Its guard trace knows
# the guards; the fit then probes at the sizes nearest those that keep them, where its
# values are polynomials with fractional coefficients (``s0/2``), integers at every size
# that keeps the residue (``symbolic._poly_fit``), and serves only sizes that keep them.
MAX_PROBE_SEARCH = 256


def sizes_keeping_guards(rec, n: int, avoid) -> tuple[int, ...] | None:
    """``n`` and, for each of the usual probe sizes ``n + 1, 2n + 1, 3n + 2``, the nearest
    larger size at which every guard of ``rec`` holds and that equals no dimension in
    ``avoid``; else (a branch on a size near ``n``: ``s0 > 6`` at 4) the three sizes
    nearest ``n`` that keep the guards, below it too, NOTE (a guard near the call's size);
    None where none is found within MAX_PROBE_SEARCH."""
    sizes = [n]
    for target in (n + 1, 2 * n + 1, 3 * n + 2):
        m = max(target, sizes[-1] + 1)
        while m in avoid or rec.broken(m) is not None:
            m += 1
            if m > target + MAX_PROBE_SEARCH:
                return _sizes_near(rec, n, avoid)
        sizes.append(m)
    return tuple(sizes)


# NOTE (a guard near the call's size): a Python branch on the size whose threshold lies
# near the call's size (``x.shape[0] > 6`` called at 4) leaves no usual probe size on the
# call's side; the fit then probes the sizes on that side nearest the call, below it as
# well (down to 2, the smallest size a group serves), the farthest one as the check.  The
# fit serves only sizes that keep the guards (``_Fit.planned``, ``without_retrace``); a
# size on the other side breaks one, is traced and compiled once, and gets a fit of its
# own (``SymbolicGroup.add_fit``): one program per side of the branch, as PyTorch's
# recorded guards give.
def _sizes_near(rec, n: int, avoid) -> tuple[int, ...] | None:
    def kept(sizes):
        return [m for m in sizes if m not in avoid and rec.broken(m) is None]
    near = kept(range(n + 1, n + MAX_PROBE_SEARCH))[:3]
    near += kept(range(n - 1, 1, -1))[:3 - len(near)]
    if len(near) < 3:   # a dimension's size too, rather than no fit at all
        near += [m for m in range(2, n + MAX_PROBE_SEARCH) if m != n and m not in near
                 and rec.broken(m) is None][:3 - len(near)]
    if len(near) < 3:
        return None
    near.sort(key=lambda m: abs(m - n))
    return (n, *near)


class FailedRegions:
    """Where fits failed, as the guards of a trace there: a size that keeps every guard
    of one failed region would fail the same way (a branch on ``s0 > 3`` leaves sizes 2
    and 3 on its lower side, too few to fit), one that breaks them may be fitted (the
    other side of the branch).  NOTE (a guard near the call's size)."""

    MAX = 3   # failed regions kept before every further size stays specialised

    def __init__(self) -> None:
        self.recorders: list = []

    def holds(self, n: int) -> bool:
        """Whether ``n`` lies in a region where a fit failed."""
        return any(rec.broken(n) is None for rec in self.recorders)

    def add(self, failure: Exception) -> bool:
        """Keep the region of a failed fit (the guards its trace recorded, kept on the
        exception by ``_Fit``); False when no guard bounds it (the fit failed before its
        guard trace, which escaped or recorded none: every size would fail) or MAX are
        kept."""
        rec = getattr(failure, "recorder", None)
        if rec is None or rec.escapes or not rec.guards or len(self.recorders) >= self.MAX:
            return False
        self.recorders.append(rec)
        return True
