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


def candidate_dims(mode, key, leaves, previous: list) -> list[tuple[frozenset, int]]:
    """Sets of (leaf, dim) pairs to try binding to ``s0``, with their size.  With
    ``dynamic=True`` the dims of the first call's size include those equal by coincidence
    (a square input, a bias as long as the batch), which would then have to stay equal:
    the leading dims of the arguments come first, then the first argument's alone, then
    all of them."""
    dims, n = choose_dims(mode, key, leaves, previous)
    if not dims:
        return []
    leading = frozenset((i, d) for i, d in dims if d == 0)
    marked = any(x.__dict__.get("_dynamic_dims") for x in leaves if isinstance(x, Tensor))
    if not leading or marked:   # (dims marked with mark_dynamic: those first, as asked)
        return [(d, n) for d in dict.fromkeys([dims, leading]) if d]
    if mode is not True:
        order = [dims, leading]
    else:
        order = [leading, frozenset([min(leading)]), dims]
    return [(d, n) for d in dict.fromkeys(order)]


def choose_dims(mode, key, leaves, previous: list) -> tuple[frozenset, int]:
    """The (leaf, dim) pairs to bind to ``s0`` at this call and their size (0: none)."""
    parts = key[1]
    shapes = {i: p[0] for i, p in enumerate(parts) if isinstance(p, tuple)}
    marked = {(i, d) for i in shapes for d in leaves[i].__dict__.get("_dynamic_dims", ())}
    if marked:
        return _same_size(marked, shapes)
    if mode is True and previous:
        # NOTE: a dim that changed since an earlier call first, as with dynamic=None: the
        # leading dims the first call bound may never change (a transformer's batch of 2
        # over many sequence lengths compiled once per length)
        changed = _changed_since(previous, key, shapes)
        if changed[0]:
            return changed
    if mode is True:
        first = next((i for i, s in shapes.items() if s), None)
        if first is None:
            return frozenset(), 0
        n = shapes[first][0]
        return _same_size({(i, d) for i, s in shapes.items() for d, m in enumerate(s)
                           if m == n}, shapes)
    if mode is None:
        return _changed_since(previous, key, shapes)
    return frozenset(), 0


def _changed_since(previous: list, key, shapes) -> tuple[frozenset, int]:
    """The dims that changed since the latest earlier signature differing in sizes only
    (0: none, or not one size changed into another)."""
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


def _same_size(dims, shapes) -> tuple[frozenset, int]:
    sizes = {shapes[i][d] for i, d in dims}
    if len(sizes) != 1 or min(sizes) < 2:
        return frozenset(), 0   # NOTE (one symbol); 0 and 1 stay specialised
    return frozenset(dims), sizes.pop()
