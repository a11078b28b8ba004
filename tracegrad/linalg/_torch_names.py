"""The ``torch.*`` names and Tensor methods of the linear-algebra functions (``torch.svd``
with its older ``(U, S, V)`` convention, ``torch.inverse``, ``x.det()``, ...)."""
from __future__ import annotations

from collections import namedtuple

from .._tensor import Tensor
from .._ops.matrix import cross
from . import _decompositions as D
from ._norms import norm as _linalg_norm

_SVD = namedtuple("torch_return_types_svd", ["U", "S", "V"])


def svd(input: Tensor, some: bool = True, compute_uv: bool = True):
    """``torch.svd``: ``(U, S, V)`` with ``input = U diag(S) V^T`` (V, not Vh)."""
    U, S, Vh = D.svd(input, full_matrices=not some)
    if not compute_uv:
        from .._ops.creation import zeros_like
        return _SVD(zeros_like(U), S, zeros_like(Vh).transpose(-2, -1))
    return _SVD(U, S, Vh.transpose(-2, -1))


def qr(input: Tensor, some: bool = True):
    return D.qr(input, "reduced" if some else "complete")


def cholesky(input: Tensor, upper: bool = False) -> Tensor:
    return D.cholesky(input, upper=upper)


def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:
    from . import pinv
    return pinv(input, rtol=rcond)


def matrix_power(input: Tensor, n: int) -> Tensor:
    from . import matrix_power as power
    return power(input, n)


det = D.det
inverse = D.inv
logdet = D.logdet
slogdet = D.slogdet

FUNCTIONS = {"svd": svd, "qr": qr, "cholesky": cholesky, "pinverse": pinverse,
             "matrix_power": matrix_power, "det": det, "inverse": inverse, "logdet": logdet,
             "slogdet": slogdet}
METHODS = dict(FUNCTIONS, cross=cross)


def install_methods() -> None:
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)


__all__ = ["FUNCTIONS", "install_methods", "_linalg_norm"]
