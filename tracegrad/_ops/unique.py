"""``unique`` and ``unique_consecutive``: data-dependent sizes, so NumPy, no gradient."""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from .creation import from_numpy


def _int64(a) -> Tensor:
    return from_numpy(np.ascontiguousarray(a, dtype=np.int64))


def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
           return_counts: bool = False, dim: int | None = None):
    """The distinct values of ``input`` (of its slices along ``dim``), sorted.

    >>> import tracegrad as torch
    >>> torch.unique(torch.tensor([3, 1, 3, 2]), return_inverse=True, return_counts=True)
    (tensor([1, 2, 3]), tensor([2, 0, 2, 1]), tensor([1, 1, 2]))
    """
    # NOTE: like PyTorch on the CPU, the result is sorted even when sorted=False
    data = input.detach().numpy()
    if dim is not None:
        dim = dim % max(data.ndim, 1)
    values, inverse, counts = np.unique(data, return_inverse=True, return_counts=True, axis=dim)
    out = [from_numpy(np.ascontiguousarray(values))]
    if return_inverse:
        shape = data.shape if dim is None else (data.shape[dim],)
        out.append(_int64(inverse).reshape(shape))
    if return_counts:
        out.append(_int64(counts))
    return out[0] if len(out) == 1 else tuple(out)


def unique_consecutive(input: Tensor, return_inverse: bool = False,
                       return_counts: bool = False, dim: int | None = None):
    """Collapse runs of equal values (of equal slices along ``dim``) into one."""
    data = input.detach().numpy()
    if dim is None:
        flat = data.reshape(-1)
        starts = np.ones(flat.shape[0], dtype=bool)
        starts[1:] = flat[1:] != flat[:-1]
        values = flat[starts]
        shape = data.shape
    else:
        dim = dim % data.ndim
        moved = np.moveaxis(data, dim, 0).reshape(data.shape[dim], -1)
        starts = np.ones(moved.shape[0], dtype=bool)
        starts[1:] = (moved[1:] != moved[:-1]).any(axis=1)
        values = np.take(data, np.nonzero(starts)[0], axis=dim)
        shape = (data.shape[dim],)
    out = [from_numpy(np.ascontiguousarray(values))]
    if return_inverse:
        out.append(_int64(np.cumsum(starts) - 1).reshape(shape))
    if return_counts:
        out.append(_int64(np.diff(np.append(np.nonzero(starts)[0], starts.shape[0]))))
    return out[0] if len(out) == 1 else tuple(out)


__all__ = ["unique", "unique_consecutive"]
