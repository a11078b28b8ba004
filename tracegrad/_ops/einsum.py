"""``einsum`` as broadcasting products and sums: each operand is permuted and reshaped onto
one shared list of subscript letters (size 1 where it lacks a letter), the products are
taken with broadcasting, and the letters missing from the output are summed. Ellipses
stand for broadcast dims (right-aligned, as in PyTorch) and a letter repeated within one
operand takes that operand's diagonal (``einsum('ii', x)`` is the trace)."""
from __future__ import annotations

import string

from .._tensor import Tensor
from .reduce import sum as rsum
from .shape import diagonal, permute, reshape


def _ellipsis_letters(terms: list, rhs: str, operands) -> str:
    """Letters the equation does not use, one per broadcast dim its ellipses stand for."""
    counts = [x.ndim - (len(t) - 3) for t, x in zip(terms, operands) if "..." in t]
    if any(n < 0 for n in counts):
        raise RuntimeError(f"einsum(): an operand has fewer dims than the subscripts of "
                           f"{'->'.join([','.join(terms), rhs])!r} name")
    used = set("".join(terms) + rhs)
    free = [c for c in string.ascii_letters if c not in used]
    return "".join(free[:max(counts, default=0)])


def _take_diagonals(term: str, x: Tensor) -> tuple[str, Tensor]:
    """A letter repeated within ``term`` as one dim: the diagonal over its positions."""
    for ch in term:
        if term.count(ch) > 1:
            i = term.index(ch)
            j = term.index(ch, i + 1)
            x = diagonal(x, 0, i, j)    # (the diagonal goes last)
            term = term[:i] + term[i + 1:j] + term[j + 1:] + ch
            return _take_diagonals(term, x)
    return term, x


def einsum(equation: str, *operands) -> Tensor:
    """Sum of products over the subscripts of ``equation``.

    >>> import tracegrad as torch
    >>> torch.einsum("...ij,...jk->...ik", torch.ones(2, 3, 4), torch.ones(4, 5)).shape
    tracegrad.Size([2, 3, 5])
    >>> torch.einsum("ii", torch.eye(3))
    tensor(3.)
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    lhs, arrow, rhs = equation.replace(" ", "").partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: {len(terms)} terms in {equation!r} but {len(operands)} operands")
    ell = _ellipsis_letters(terms, rhs, operands)
    terms = [t.replace("...", ell[len(ell) - (x.ndim - (len(t) - 3)):]) if "..." in t else t
             for t, x in zip(terms, operands)]
    for term, x in zip(terms, operands):
        if len(term) != x.ndim:
            raise RuntimeError(f"einsum(): the subscripts {term!r} of {equation!r} name "
                               f"{len(term)} dims of an operand of shape {tuple(x.shape)}")
    if arrow:
        rhs = rhs.replace("...", ell)
    else:   # implicit output: the broadcast dims, then the letters used once, sorted
        joined = "".join(terms)
        rhs = ell + "".join(sorted(ch for ch in set(joined) if joined.count(ch) == 1
                                   and ch not in ell))
    operands = list(operands)
    for k, (term, x) in enumerate(zip(terms, operands)):
        terms[k], operands[k] = _take_diagonals(term, x)
    letters = []
    for term in terms:
        for ch in term:
            if ch not in letters:
                letters.append(ch)
    total = None
    for term, x in zip(terms, operands):
        order = [term.index(ch) for ch in letters if ch in term]
        x = permute(x, order) if order != list(range(len(order))) else x
        it = iter(x.shape)
        x = reshape(x, tuple(next(it) if ch in term else 1 for ch in letters))
        total = x if total is None else total * x
    contracted = tuple(i for i, ch in enumerate(letters) if ch not in rhs)
    out = rsum(total, contracted) if contracted else total
    kept = [ch for ch in letters if ch in rhs]
    return permute(out, [kept.index(ch) for ch in rhs]) if kept != list(rhs) else out


__all__ = ["einsum"]
