"""Which argument dimensions a compiled function binds to the symbol ``s0`` at a call.

``dynamic=None`` binds a dimension that changed size since an earlier call of the same
signature, ``dynamic=True`` the leading dimensions from the first call, and
``mark_dynamic(t, dim)`` the dimensions named ahead of time (NOTE (one symbol) in
``dynamic.py``, which fits and serves the programs for them).
"""
from __future__ import annotations

from .._tensor import Tensor
from .fit_checks import _changed_dims


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


def candidate_dims(mode, key, leaves, previous: list, bound=None
                   ) -> tuple[list[tuple[frozenset, int]], str | None]:
    """Sets of (leaf, dim) pairs to try binding to ``s0``, with their size, and a note
    saying which dims stay specialised beside them and why (NOTE (dims that change
    together)), or None.  With ``dynamic=True`` the dims of the first call's size include
    those equal by coincidence (a square input, a bias as long as the batch), which would
    then have to stay equal: the leading dims of the arguments come first, then the first
    argument's alone, then all of them."""
    dims, n, note = choose_dims(mode, key, leaves, previous, bound)
    if not dims:
        return [], note
    leading = frozenset((i, d) for i, d in dims if d == 0)
    marked = any(x.__dict__.get("_dynamic_dims") for x in leaves if isinstance(x, Tensor))
    if not leading or marked:   # (dims marked with mark_dynamic: those first, as asked)
        return [(d, n) for d in dict.fromkeys([dims, leading]) if d], note
    if mode is not True:
        order = [dims, leading]
    else:
        order = [leading, frozenset([min(leading)]), dims]
    return [(d, n) for d in dict.fromkeys(order)], note


def sizes_served_by_dim(groups: dict, key) -> dict:
    """(leaf, dim) -> the most sizes a group of signatures like ``key`` binding it to ``s0``
    served (``groups``: symbolic key -> SymbolicGroup)."""
    served: dict = {}
    for skey, group in list(groups.items()):   # (another thread may add one)
        if _changed_dims(skey, key) is not None:
            for d in group.dims:
                served[d] = max(served.get(d, 0), len(group.sizes_served))
    return served


def choose_dims(mode, key, leaves, previous: list, bound=None
                ) -> tuple[frozenset, int, str | None]:
    """The (leaf, dim) pairs to bind to ``s0`` at this call, their size (0: none) and the
    note on dims kept specialised (or None); ``bound``: the dims an earlier group of this
    function binds to ``s0`` (NOTE (dims that change together))."""
    parts = key[1]
    shapes = {i: p[0] for i, p in enumerate(parts) if isinstance(p, tuple)}
    marked = {(i, d) for i in shapes for d in leaves[i].__dict__.get("_dynamic_dims", ())}
    if marked:
        dims, n = _same_size(marked, shapes)
        if dims or len({shapes[i][d] for i, d in marked}) < 2:
            return dims, n, None
        # dims of different sizes (NOTE (dims that change together)): those chosen as
        # without mark_dynamic, if marked
        dims, n, _ = _changed_since(previous, key, shapes, bound)
        chosen = dims if dims and dims <= marked else frozenset()
        sizes = ", ".join(f"{_dims_text([m])} = {shapes[m[0]][m[1]]}" for m in sorted(marked))
        return chosen, n if chosen else 0, (
            f"mark_dynamic named dims of different sizes ({sizes}); only one symbolic size "
            f"(s0) per signature is supported: "
            + (f"{_dims_text(chosen)} chosen as s0 (as without mark_dynamic), the others "
               f"stay specialised" if chosen else
               "each stays specialised until one of them changes alone since the latest "
               "call"))
    if mode is True and previous:
        # NOTE: a dim that changed since an earlier call first, as with dynamic=None: the
        # leading dims the first call bound may never change (a transformer's batch of 2
        # over many sequence lengths compiled once per length)
        changed = _changed_since(previous, key, shapes, bound)
        if changed[0]:
            return changed
        note = changed[2]
    else:
        note = None
    if mode is True:
        first = next((i for i, s in shapes.items() if s), None)
        if first is None:
            return frozenset(), 0, note
        n = shapes[first][0]
        return (*_same_size({(i, d) for i, s in shapes.items() for d, m in enumerate(s)
                             if m == n}, shapes), note)
    if mode is None:
        return _changed_since(previous, key, shapes, bound)
    return frozenset(), 0, None


# the sizes a group must have served before its dim is chosen beside dims that changed
# with it (NOTE (dims that change together))
SERVED_BEFORE_CHOSEN = 4


def _changed_since(previous: list, key, shapes, bound=None
                   ) -> tuple[frozenset, int, str | None]:
    """The dims that changed since the latest earlier signature differing in sizes only
    (0: none); dims that changed to sizes of their own: NOTE (dims that change together)."""
    bound = bound or {}
    for old in reversed(previous):
        changed = _changed_dims(old, key)
        if not changed:
            continue
        classes = {}
        for i, d in changed:
            classes.setdefault((old[1][i][0][d], shapes[i][d]), set()).add((i, d))
        if len(classes) == 1:
            return (*_one_class(classes, shapes), None)
        note = (f"{show_class(classes)}: changed together to different sizes since the "
                f"latest call; only one symbolic size (s0) per signature is supported")
        served = {label: max(bound.get(d, 0) for d in dims)
                  for label, dims in classes.items() if min(label) >= 2}
        best = max(served, key=lambda label: (served[label], [-x for x in min(classes[label])]),
                   default=None)
        if best is not None and served[best] >= SERVED_BEFORE_CHOSEN:
            dims, n = _same_size(classes[best], shapes)
            if dims:
                others = "; ".join(_dims_text(c) for label, c in
                                   sorted(classes.items(), key=lambda c: min(c[1]))
                                   if label != best)
                return dims, n, (f"{note}: {_dims_text(dims)} chosen as s0 (a group binding "
                                 f"it served {served[best]} sizes); specialised: {others}")
        return frozenset(), 0, (f"{note}: no dim chosen, each stays specialised (a dim "
                                f"becomes s0 when it changes alone, or when a group binding "
                                f"it has served {SERVED_BEFORE_CHOSEN} sizes)")
    return frozenset(), 0, None


# NOTE (dims that change together): a group has one symbol (NOTE (one symbol) in
# dynamic.py), so dims that change to sizes of their own since the latest call (batch and
# sequence length of a DataLoader over variable-length sequences, two inputs of a cat)
# cannot all be symbolic, and cache_info, explain, the debug log and the recompile warning
# say so.  One class of dims that moved together is chosen when a group of this function
# binding it has served SERVED_BEFORE_CHOSEN sizes (the most served first): that dim is
# known to vary with the others fixed, so the group the fit builds with the others
# specialised at their new sizes is likely to serve again.  A loader of batches of 16 over
# lengths 10..40 with a last batch of 5: the last batch binds the length beside batch 5,
# and two epochs compile 3 times instead of 4.  Otherwise every dim stays specialised, as
# before: choosing at every such change (the dim with the most distinct sizes) fitted a
# group for nearly each new combination of batch 2..64 and length 10..40 at random, 21
# compiles instead of 28 over 30 calls but twice the time, a fit costing ~10 compiles of
# that small function.  The other dims are part of the group's key, checked at every call.
def _one_class(classes: dict, shapes) -> tuple[frozenset, int]:
    """The single class of ``classes`` ((old size, new size) -> set of (leaf, dim)) bound
    to ``s0`` with its size, or none where a size is 0 or 1."""
    ((old, _), dims), = classes.items()
    return _same_size(dims, shapes) if old >= 2 else (frozenset(), 0)


def show_class(classes: dict) -> str:
    return ", ".join(f"{_dims_text(dims)} {old} -> {new}"
                     for (old, new), dims in sorted(classes.items(), key=lambda c: min(c[1])))


def _dims_text(dims) -> str:
    return ", ".join(f"arg {i} dim {d}" for i, d in sorted(dims))


def _same_size(dims, shapes) -> tuple[frozenset, int]:
    sizes = {shapes[i][d] for i, d in dims}
    if len(sizes) != 1 or min(sizes) < 2:
        return frozenset(), 0   # NOTE (one symbol); 0 and 1 stay specialised
    return frozenset(dims), sizes.pop()
