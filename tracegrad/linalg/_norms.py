"""``linalg.vector_norm``, ``linalg.matrix_norm`` and ``linalg.norm`` (PyTorch's dispatch
between them), composites of reductions and ``svdvals``."""
from __future__ import annotations

import math

from .._dtype import to_numpy_dtype
from .._ops import reduce as R
from .._ops.math import cast, where
from .._tensor import Tensor
from ._decompositions import svdvals


def _dims(dim, ndim):
    if dim is None:
        return None
    return (dim,) if isinstance(dim, int) else tuple(dim)


def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """``sum(|x|^ord)^(1/ord)`` over ``dim`` (all dims by default); ``inf``/``-inf``: the
    largest/smallest ``|x|``; 0: the number of non-zeros.

    >>> import tracegrad as torch
    >>> torch.linalg.vector_norm(torch.tensor([3.0, -4.0]))
    tensor(5.)
    """
    if dtype is not None:
        x = cast(x, to_numpy_dtype(dtype))
    if not x.is_floating_point():
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as "
                           f"input. Got {x.dtype}")
    dims = _dims(dim, x.ndim)
    a = x.abs()
    if ord == math.inf:
        return R.amax(a, () if dims is None else dims, keepdim)
    if ord == -math.inf:
        return R.amin(a, () if dims is None else dims, keepdim)
    if ord == 0:
        return R.sum((x != 0).to(x.dtype), dims, keepdim)
    if ord == 1:
        return R.sum(a, dims, keepdim)
    if ord == 2:
        total = R.sum(x * x, dims, keepdim)
        # NOTE: the gradient of sqrt at 0 is infinite; PyTorch gives a zero vector's norm
        # the subgradient 0, and so does this (the square root of a clamped total)
        zero = total == 0
        return where(zero, 0.0, where(zero, 1.0, total).sqrt())
    return R.sum(a ** ord, dims, keepdim) ** (1.0 / ord)


def matrix_norm(A: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None) -> Tensor:
    """Frobenius (``'fro'``), nuclear (``'nuc'``), spectral (2, -2), max column sum (1,
    -1) or max row sum (inf, -inf) norm of the matrices in ``dim``."""
    if dtype is not None:
        A = cast(A, to_numpy_dtype(dtype))
    if A.ndim < 2:
        raise RuntimeError(f"linalg.matrix_norm: The input tensor A must have at least 2 "
                           f"dimensions (got shape {tuple(A.shape)})")
    d0, d1 = (d % A.ndim for d in dim)
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        moved = A.movedim((d0, d1), (-2, -1))
        s = svdvals(moved)
        out = s.sum(-1) if ord == "nuc" else s.amax(-1) if ord == 2 else s.amin(-1)
        if keepdim:
            for d in sorted((d0, d1)):
                out = out.unsqueeze(d)
        return out
    if ord in (1, -1, math.inf, -math.inf):
        summed_dim, kept_dim = (d0, d1) if ord in (1, -1) else (d1, d0)
        sums = R.sum(A.abs(), summed_dim, True)
        pick = R.amax if ord in (1, math.inf) else R.amin
        out = pick(sums, kept_dim, True)
        return out if keepdim else out.squeeze((d0, d1))
    raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")


def norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """``matrix_norm`` when ``ord`` is a string, ``dim`` has two entries or (``dim`` None)
    ``A`` is a matrix with an ``ord``; ``vector_norm`` otherwise (of the flattened ``A``
    when neither is given)."""
    dims = _dims(dim, A.ndim)
    if isinstance(ord, str) or (dims is not None and len(dims) == 2) or \
            (dims is None and ord is not None and A.ndim == 2):
        return matrix_norm(A, "fro" if ord is None else ord, dims or (-2, -1), keepdim,
                           dtype=dtype)
    if dims is None and ord is not None and A.ndim != 1:
        raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be "
                           f"1D or 2D. Got {A.ndim}D.")
    return vector_norm(A, 2 if ord is None else ord, dims, keepdim, dtype=dtype)
