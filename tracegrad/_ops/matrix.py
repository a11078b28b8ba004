"""Matrix-structure composites: ``tril``/``triu`` (a mask and ``where``), ``cross``,
``diag``, ``diag_embed``, ``trace``. All differentiable through their parts."""
from __future__ import annotations

import numpy as np

from .._dispatch import made_from_sizes
from .._tensor import Tensor
from .creation import tensor
from .math import mul, promote, sub, where
from .reduce import sum
from .shape import diagonal, pad, stack, unbind


def _triangle(name: str, x: Tensor, diagonal: int, lower: bool) -> Tensor:
    if x.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions, got shape "
                           f"{tuple(x.shape)}")
    rows, cols = x.shape[-2], x.shape[-1]
    # (the sizes may be a compile guard trace's symbolic ones: NOTE (tensors made from a
    # size) in compiler/made_sizes.py)
    keep = made_from_sizes((rows, cols), _triangle_mask, rows, cols, diagonal, lower)
    return where(keep, x, tensor(0, dtype=x.dtype))


def _triangle_mask(rows: int, cols: int, diagonal: int, lower: bool) -> Tensor:
    if lower:
        return tensor(np.tri(rows, cols, k=diagonal, dtype=bool))
    return tensor(~np.tri(rows, cols, k=diagonal - 1, dtype=bool))


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (the rest zeroed), from ``diagonal`` down.

    >>> import tracegrad as torch
    >>> torch.tril(torch.ones(2, 3))
    tensor([[1., 0., 0.],
            [1., 1., 0.]])
    """
    return _triangle("tril", input, int(diagonal), lower=True)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (the rest zeroed), from ``diagonal`` up.

    >>> import tracegrad as torch
    >>> torch.triu(torch.ones(2, 3), diagonal=1)
    tensor([[0., 1., 1.],
            [0., 0., 1.]])
    """
    return _triangle("triu", input, int(diagonal), lower=False)


def linalg_cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:
    a, b = promote(input, other, "linalg.cross")
    if a.ndim != b.ndim:
        raise RuntimeError(f"linalg.cross: inputs must have the same number of dimensions "
                           f"(got shapes {tuple(a.shape)} and {tuple(b.shape)})")
    if a.shape[dim] != 3 or b.shape[dim] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got "
                           f"{a.shape[dim]} and {b.shape[dim]}")
    a0, a1, a2 = unbind(a, dim)
    b0, b1, b2 = unbind(b, dim)
    return stack([sub(mul(a1, b2), mul(a2, b1)), sub(mul(a2, b0), mul(a0, b2)),
                  sub(mul(a0, b1), mul(a1, b0))], dim % a.ndim if a.ndim else 0)


def cross(input: Tensor, other: Tensor, dim: int | None = None) -> Tensor:
    """The cross product of 3-vectors along ``dim`` (default: the first dim of size 3, as
    PyTorch's deprecated default).

    >>> import tracegrad as torch
    >>> torch.cross(torch.tensor([1.0, 0, 0]), torch.tensor([0.0, 1, 0]), dim=0)
    tensor([0., 0., 1.])
    """
    if dim is None:
        sizes = [i for i, n in enumerate(np.broadcast_shapes(tuple(input.shape), tuple(other.shape)))
                 if n == 3]
        if not sizes:
            raise RuntimeError(f"cross: no dimension of size 3 in input (shapes "
                               f"{tuple(input.shape)} and {tuple(other.shape)})")
        dim = sizes[0]
    return linalg_cross(input, other, dim=dim)


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices whose diagonal (``offset``) along the last two dims holds the last dim of
    ``input``. Only the default ``dim1``/``dim2`` are supported."""
    if (dim1, dim2) != (-2, -1):
        raise NotImplementedError("diag_embed: tracegrad does not support dim1/dim2 other than "
                                  "-2, -1 yet")
    n = input.shape[-1] + abs(offset)
    # row i of the result holds input[i] at column i + offset (above the diagonal), or
    # column j holds input[j] at row j - offset (below): broadcast, then keep the diagonal
    if offset >= 0:
        spread = _pad_last(input, 0, offset).unsqueeze(-1)
    else:
        spread = _pad_last(input, 0, -offset).unsqueeze(-2)
    return where(tensor(np.eye(n, k=offset, dtype=bool)), spread, tensor(0, dtype=input.dtype))


def _pad_last(x: Tensor, before: int, after: int) -> Tensor:
    return pad(x, (before, after)) if before or after else x


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-D input becomes a diagonal matrix; a 2-D input gives its diagonal.

    >>> import tracegrad as torch
    >>> torch.diag(torch.tensor([1.0, 2.0]))
    tensor([[1., 0.],
            [0., 2.]])
    """
    if input.ndim == 1:
        return diag_embed(input, diagonal)
    if input.ndim == 2:
        return diagonal_of(input, diagonal)
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")


def diagonal_of(x: Tensor, offset: int) -> Tensor:
    return diagonal(x, offset, 0, 1)


def trace(input: Tensor) -> Tensor:
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    return sum(diagonal(input, 0, 0, 1))


__all__ = ["cross", "diag", "diag_embed", "trace", "tril", "triu"]
