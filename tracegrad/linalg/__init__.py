"""``tracegrad.linalg``: PyTorch's ``torch.linalg``, on NumPy's LAPACK, with gradients.

>>> import tracegrad as torch
>>> A = torch.tensor([[3.0, 1.0], [1.0, 2.0]])
>>> torch.linalg.solve(A, torch.tensor([9.0, 8.0]))
tensor([2., 3.])
"""
from .._ops.linalg import matmul
from .._ops.matrix import linalg_cross as cross
from ._decompositions import (cholesky, det, eigh, eigvalsh, inv, logdet, qr, slogdet, solve,
                              svd, svdvals)
from ._norms import matrix_norm, norm, vector_norm


def pinv(A, *, rtol=None, hermitian: bool = False):
    """The pseudo-inverse through the SVD (so it has the SVD's gradient)."""
    U, S, Vh = svd(A, full_matrices=False)
    if rtol is None:
        rtol = max(A.shape[-2], A.shape[-1]) * float(__import__("numpy").finfo(
            A._data.dtype).eps)
    cutoff = S.amax(-1, keepdim=True) * rtol
    keep = S > cutoff
    S_inv = (S.where(keep, 1.0) ** -1).where(keep, 0.0)
    return (Vh.transpose(-2, -1) * S_inv.unsqueeze(-2)) @ U.transpose(-2, -1)


def matrix_power(A, n: int):
    if n < 0:
        return matrix_power(inv(A), -n)
    from .._ops.creation import eye
    out = eye(A.shape[-1], dtype=A.dtype).expand(*A.shape) if n == 0 else None
    base = A
    while n:
        if n & 1:
            out = base if out is None else out @ base
        n >>= 1
        if n:
            base = base @ base
    return out


def vecdot(x, y, *, dim: int = -1):
    return (x * y).sum(dim)


__all__ = ["cholesky", "cross", "det", "eigh", "eigvalsh", "inv", "logdet", "matmul",
           "matrix_norm", "matrix_power", "norm", "pinv", "qr", "slogdet", "solve", "svd",
           "svdvals", "vecdot", "vector_norm"]
