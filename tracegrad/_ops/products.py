"""Products and statistics over ``mv``/``outer``/``bmm``: ``vdot``, ``addmv``, ``addr``,
``addbmm``, ``cov``, ``corrcoef`` (composites: they trace and differentiate like their
parts). ``beta=0`` ignores ``input`` entirely (NaN in it does not propagate), as PyTorch."""
from __future__ import annotations

import numpy as np

from .._errors import ShapeError
from .math import _describe as describe
from .._tensor import Tensor
from . import division as D
from . import math as M
from . import reduce, shape
from .linalg import bmm, dot, mm, mv, outer


def vdot(input: Tensor, other: Tensor) -> Tensor:
    """``dot`` of two 1-D tensors (conjugating the first: a no-op for real dtypes)."""
    if input.ndim != 1 or other.ndim != 1:
        raise ShapeError(f"vdot: expected two 1-D tensors, got {describe(input)} and "
                         f"{describe(other)}")
    if input.dtype != other.dtype:
        raise TypeError(f"vdot: expected both tensors to have the same dtype, got "
                        f"{describe(input)} and {describe(other)}")
    return dot(input, other)


def inner(input: Tensor, other: Tensor) -> Tensor:
    """The sum over the last dims of the products: ``input.shape[:-1] + other.shape[:-1]``;
    a product when either is 0-d."""
    if input.ndim == 0 or other.ndim == 0:
        return M.mul(input, other)
    k = input.shape[-1]
    if other.shape[-1] != k:
        raise ShapeError(f"inner: the last dims of {describe(input)} and {describe(other)} "
                         f"must match")
    a = shape.reshape(input, (-1, k))
    b = shape.reshape(other, (-1, k))
    out_shape = tuple(input.shape[:-1]) + tuple(other.shape[:-1])
    return shape.reshape(mm(a, shape.t(b)), out_shape)


def chain_matmul(*matrices: Tensor) -> Tensor:
    """``matrices[0] @ matrices[1] @ ...`` of 2-D tensors (deprecated in PyTorch for
    ``linalg.multi_dot``); left to right."""
    if not matrices:
        raise ValueError("chain_matmul: expected at least one matrix")
    for m in matrices:
        if m.ndim != 2:
            raise ShapeError(f"chain_matmul: expected 2-D tensors, got {describe(m)}")
    out = matrices[0]
    for m in matrices[1:]:
        out = mm(out, m)
    return out if len(matrices) > 1 else shape.clone(out)


def _scaled_sum(op: str, input: Tensor, product: Tensor, beta, alpha) -> Tensor:
    if alpha != 1:
        product = M.mul(product, alpha)
    try:
        fits = np.broadcast_shapes(tuple(input.shape), tuple(product.shape)) == tuple(product.shape)
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(f"{op}: input {describe(input)} does not broadcast to the product's "
                         f"shape {tuple(product.shape)}")
    if beta == 0:
        return product
    return M.add(product, input if beta == 1 else M.mul(input, beta))


def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (mat @ vec)``."""
    return _scaled_sum("addmv", input, mv(mat, vec), beta, alpha)


def addr(input: Tensor, vec1: Tensor, vec2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * outer(vec1, vec2)``."""
    if vec1.ndim != 1 or vec2.ndim != 1:
        raise ShapeError(f"addr: expected 1-D vectors, got {describe(vec1)} and "
                         f"{describe(vec2)}")
    return _scaled_sum("addr", input, outer(vec1, vec2), beta, alpha)


def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * sum_i batch1[i] @ batch2[i]``."""
    if batch1.ndim != 3 or batch2.ndim != 3:
        raise ShapeError(f"addbmm: expected 3-D batches, got {describe(batch1)} and "
                         f"{describe(batch2)}")
    return _scaled_sum("addbmm", input, reduce.sum(bmm(batch1, batch2), 0), beta, alpha)


def cov(input: Tensor, *, correction: int = 1, fweights: Tensor | None = None,
        aweights: Tensor | None = None) -> Tensor:
    """The covariance matrix of the variables in ``input``'s rows (observations in columns).

    >>> import tracegrad as torch
    >>> torch.cov(torch.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]]))
    tensor([[ 1., -1.],
            [-1.,  1.]])
    """
    if input.ndim > 2:
        raise ShapeError(f"cov: expected input with at most 2 dims, got {describe(input)}")
    x = M._to_float(input)
    x = shape.reshape(x, (1, -1)) if x.ndim < 2 else x
    n = x.shape[1]
    w = None
    for name, v in (("fweights", fweights), ("aweights", aweights)):
        if v is None:
            continue
        if v.ndim > 1 or v.numel() != n:
            raise ShapeError(f"cov: {name} {describe(v)} must be 1-D with one weight per "
                             f"observation ({n})")
        if name == "fweights" and v._data.dtype.kind not in "iu":
            raise TypeError(f"cov: fweights must be integers, got {describe(v)}")
        v = M.cast(v, x._data.dtype)
        w = v if w is None else M.mul(w, v)
    if w is None:
        w_sum = float(n)
        mean = reduce.mean(x, 1, keepdim=True)
    else:
        w_sum = reduce.sum(w)
        mean = D.div(reduce.sum(M.mul(x, w), 1, keepdim=True), w_sum)
    if w is None:
        norm = w_sum - correction
    elif correction == 0:
        norm = w_sum
    elif aweights is None:
        norm = M.sub(w_sum, correction)
    else:
        aw = M.cast(aweights, x._data.dtype)
        norm = M.sub(w_sum, D.div(M.mul(reduce.sum(M.mul(w, aw)), correction), w_sum))
    if not isinstance(norm, Tensor):
        norm = max(norm, 0)
    else:
        norm = M.clamp(norm, min=0)
    centred = M.sub(x, mean)
    weighted = centred if w is None else M.mul(centred, w)
    out = D.div(mm(weighted, shape.t(centred)), norm)
    return shape.reshape(out, ()) if x.shape[0] == 1 else out   # one variable: 0-d


def corrcoef(input: Tensor) -> Tensor:
    """Pearson correlation coefficients of ``input``'s rows, clipped to [-1, 1]."""
    c = cov(input)
    if c.ndim == 0:
        return D.div(c, c)
    d = M.sqrt(shape.diagonal(c))
    c = D.div(D.div(c, shape.reshape(d, (-1, 1))), shape.reshape(d, (1, -1)))
    return M.clamp(c, -1, 1)


FUNCTION_ONLY = ("chain_matmul",)   # no Tensor method of that name in PyTorch
__all__ = ["chain_matmul", "inner", "vdot", "addmv", "addr", "addbmm", "cov", "corrcoef"]
