"""Matrix functions with hand-written gradients: ``inv``, ``det``, ``slogdet``, ``solve``,
``svd``, ``qr``, ``cholesky``, ``eigh``.

Each forward is NumPy's LAPACK call; each backward is tracegrad tensor code written in
these same functions, so gradients of gradients work for ``inv``, ``det`` and ``solve``
(the SVD, QR, Cholesky and eigh rules read their saved factors as constants: they give
first derivatives and refuse ``create_graph=True`` rather than a wrong second one). They are ``autograd.Function``s,
so ``compile`` runs them eagerly (a graph break), as custom functions.
"""
from __future__ import annotations

import numpy as np

from .._ops.creation import from_numpy, tensor
from .._ops.matrix import diag_embed, tril
from .._tensor import Tensor
from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled


def _mT(x: Tensor) -> Tensor:
    return x.transpose(-2, -1)


def _square(name: str, A: Tensor) -> None:
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"linalg.{name}: A must be batches of square matrices, but they are "
                           f"{A.shape[-2] if A.ndim >= 2 else A.ndim} by "
                           f"{A.shape[-1] if A.ndim >= 1 else 0} matrices (shape {tuple(A.shape)})")


def _float(name: str, A: Tensor) -> None:
    if not A.is_floating_point():
        raise RuntimeError(f"linalg.{name}: Expected a floating point tensor as input. Got "
                           f"{A.dtype}")


def _lapack(name: str, fn, *arrays, **kwargs):
    try:
        return fn(*arrays, **kwargs)
    except np.linalg.LinAlgError as e:
        raise RuntimeError(f"linalg.{name}: {e} (input shapes "
                           f"{', '.join(str(a.shape) for a in arrays)}); the input is singular "
                           f"or not positive-definite") from None


def _first_order_only(name: str) -> None:
    """The rule reads its saved factors as constants: a second derivative through it would
    be silently wrong, so ``create_graph=True`` is refused."""
    if is_grad_enabled():
        raise RuntimeError(f"linalg.{name}: tracegrad computes first derivatives of {name} "
                           f"only; create_graph=True (a second derivative) is not supported yet")


def _wrap(a, like: Tensor) -> Tensor:
    return from_numpy(np.ascontiguousarray(a, dtype=like._data.dtype))


class LinalgInvEx(Function):
    @staticmethod
    def forward(ctx, A):
        Y = _wrap(_lapack("inv", np.linalg.inv, A.detach().numpy()), A)
        ctx.save_for_backward(A, Y.detach())
        return Y

    @staticmethod
    def backward(ctx, g):
        A, Y = ctx.saved_tensors
        if is_grad_enabled():  # create_graph: the inverse must stay a function of A
            Y = inv(A)
        Yt = _mT(Y)
        return -(Yt @ g @ Yt)


def inv(A: Tensor) -> Tensor:
    """The inverse of each square matrix in ``A`` (batched).

    >>> import tracegrad as torch
    >>> torch.linalg.inv(torch.tensor([[2.0, 0.0], [0.0, 4.0]]))
    tensor([[0.5000, 0.0000],
            [0.0000, 0.2500]])
    """
    _square("inv", A)
    _float("inv", A)
    return LinalgInvEx.apply(A)


class LinalgDet(Function):
    @staticmethod
    def forward(ctx, A):
        ctx.save_for_backward(A)
        return _wrap(np.linalg.det(A.detach().numpy()), A)

    @staticmethod
    def backward(ctx, g):
        (A,) = ctx.saved_tensors
        # NOTE: d det(A) = det(A) A^{-T}; a singular A raises here (PyTorch goes through
        # the SVD to give the adjugate there)
        return (g * det(A)).unsqueeze(-1).unsqueeze(-1) * _mT(inv(A))


def det(A: Tensor) -> Tensor:
    _square("det", A)
    _float("det", A)
    return LinalgDet.apply(A)


class LinalgSlogdet(Function):
    @staticmethod
    def forward(ctx, A):
        sign, logabs = np.linalg.slogdet(A.detach().numpy())
        ctx.save_for_backward(A)
        return _wrap(sign, A), _wrap(logabs, A)

    @staticmethod
    def backward(ctx, g_sign, g_logabs):
        (A,) = ctx.saved_tensors
        return g_logabs.unsqueeze(-1).unsqueeze(-1) * _mT(inv(A))


def slogdet(A: Tensor):
    """``(sign, logabsdet)`` of each square matrix in ``A``."""
    _square("slogdet", A)
    _float("slogdet", A)
    sign, logabsdet = LinalgSlogdet.apply(A)
    return _SlogdetResult(sign.detach(), logabsdet)


class _SlogdetResult(tuple):
    def __new__(cls, sign, logabsdet):
        out = super().__new__(cls, (sign, logabsdet))
        out.sign, out.logabsdet = sign, logabsdet
        return out


def logdet(A: Tensor) -> Tensor:
    sign, logabs = slogdet(A)
    return logabs + (sign < 0).to(logabs.dtype) * float("nan")


class LinalgSolve(Function):
    @staticmethod
    def forward(ctx, A, B):
        X = _wrap(_lapack("solve", np.linalg.solve, A.detach().numpy(), B.detach().numpy()), A)
        ctx.save_for_backward(A, B, X.detach())
        return X

    @staticmethod
    def backward(ctx, g):
        A, B, X = ctx.saved_tensors
        if is_grad_enabled():  # create_graph: X must stay a function of A and B
            X = LinalgSolve.apply(A, B)
        gB = solve(_mT(A), g)
        return -(gB @ _mT(X)), gB


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """``X`` with ``A @ X = B`` (``left=False``: ``X @ A = B``); ``B`` may be a vector
    (``B.ndim == 1`` or ``A.ndim - 1`` with ``A``'s leading shape), as in PyTorch."""
    _square("solve", A)
    if not left:
        return _mT(solve(_mT(A), _mT(B)))
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    if vector:
        return LinalgSolve.apply(A, B.unsqueeze(-1)).squeeze(-1)
    if A.shape[-1] != B.shape[-2]:
        raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation "
                           f"AX = B ({A.shape[-2]}x{A.shape[-1]} and {B.shape[-2]}x{B.shape[-1]})")
    return LinalgSolve.apply(A, B)


class LinalgSvd(Function):
    @staticmethod
    def forward(ctx, A, full_matrices):
        U, S, Vh = _lapack("svd", np.linalg.svd, A.detach().numpy(), full_matrices=full_matrices)
        U, S, Vh = _wrap(U, A), _wrap(S, A), _wrap(Vh, A)
        ctx.save_for_backward(U.detach(), S.detach(), Vh.detach())
        return U, S, Vh

    @staticmethod
    def backward(ctx, gU, gS, gVh):
        _first_order_only("svd")
        U, S, Vh = ctx.saved_tensors
        k = S.shape[-1]
        # full_matrices: only the first k singular vectors depend on A (PyTorch narrows too)
        U, gU = U[..., :k], gU[..., :k]
        Vh, gVh = Vh[..., :k, :], gVh[..., :k, :]
        return svd_backward(gU, gS, gVh, U, S, Vh), None


def svd_backward(gU, gS, gVh, U, S, Vh) -> Tensor:
    """PyTorch's formula for the reduced SVD of a real matrix:
    gA = U [(skew(U^T gU) S + S skew(V^T gV)) / E + diag(gS)] V^T
         + (I - U U^T) gU S^-1 V^T + U S^-1 gV^T (I - V V^T),
    with E_ij = s_j^2 - s_i^2 (1 on the diagonal); NOTE: infinite where singular values
    repeat, as in PyTorch."""
    m, n, k = U.shape[-2], Vh.shape[-1], S.shape[-1]
    skew_u = _mT(U) @ gU
    skew_u = skew_u - _mT(skew_u)
    skew_v = Vh @ _mT(gVh)
    skew_v = skew_v - _mT(skew_v)
    S2 = S * S
    E = S2.unsqueeze(-2) - S2.unsqueeze(-1) + tensor(np.eye(k), dtype=S.dtype)
    gA = (skew_u * S.unsqueeze(-2) + S.unsqueeze(-1) * skew_v) / E + diag_embed(gS)
    if m > k:
        gA = U @ gA
        gU_Sinv = gU / S.unsqueeze(-2)
        gA = (gA + gU_Sinv - U @ (_mT(U) @ gU_Sinv)) @ Vh
    elif n > k:
        gA = gA @ Vh
        Sinv_gVh = gVh / S.unsqueeze(-1)
        gA = U @ (gA + Sinv_gVh - (Sinv_gVh @ _mT(Vh)) @ Vh)
    else:
        gA = U @ gA @ Vh
    return gA


def svd(A: Tensor, full_matrices: bool = True, *, driver=None):
    """``U, S, Vh`` with ``A = U diag(S) Vh`` (batched), singular values descending."""
    if A.ndim < 2:
        raise RuntimeError(f"linalg.svd: The input tensor A must have at least 2 dimensions "
                           f"(got shape {tuple(A.shape)})")
    _float("svd", A)
    U, S, Vh = LinalgSvd.apply(A, bool(full_matrices))
    return _named("SVD", U=U, S=S, Vh=Vh)


def svdvals(A: Tensor) -> Tensor:
    return svd(A, full_matrices=False).S


def _named(kind: str, **fields):
    from collections import namedtuple
    return namedtuple(f"torch_linalg_{kind}", list(fields))(**fields)


class LinalgQr(Function):
    @staticmethod
    def forward(ctx, A, mode):
        Q, R = _lapack("qr", np.linalg.qr, A.detach().numpy(), mode=mode)
        Q, R = _wrap(Q, A), _wrap(R, A)
        ctx.save_for_backward(Q.detach(), R.detach())
        ctx.mode = mode
        return Q, R

    @staticmethod
    def backward(ctx, gQ, gR):
        _first_order_only("qr")
        Q, R = ctx.saved_tensors
        m, n = Q.shape[-2], R.shape[-1]
        if ctx.mode != "reduced" or m < n:
            raise RuntimeError("linalg.qr: tracegrad computes the QR gradient for "
                               "mode='reduced' with m >= n only (as PyTorch's common case)")
        # NOTE: gA = (gQ + Q copyltu(M)) R^{-T}, M = R gR^T - gQ^T Q, copyltu copies the
        # lower triangle onto the upper one (Walter & Lehmann; TensorFlow's QrGrad).
        M = R @ _mT(gR) - _mT(gQ) @ Q
        low = tril(M, -1)
        copyltu = low + _mT(low) + diag_embed(M.diagonal(0, -2, -1))
        return _mT(solve(R, _mT(gQ + Q @ copyltu))), None


def qr(A: Tensor, mode: str = "reduced"):
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of "
                           f"'reduced' (default), 'r', or 'complete'")
    _float("qr", A)
    if mode == "r":
        R = _wrap(np.linalg.qr(A.detach().numpy(), mode="r"), A)
        return _named("QR", Q=tensor([], dtype=A.dtype), R=R)
    Q, R = LinalgQr.apply(A, mode)
    return _named("QR", Q=Q, R=R)


class LinalgCholesky(Function):
    @staticmethod
    def forward(ctx, A):
        L = _wrap(_lapack("cholesky", np.linalg.cholesky, A.detach().numpy()), A)
        ctx.save_for_backward(L.detach())
        return L

    @staticmethod
    def backward(ctx, gL):
        _first_order_only("cholesky")
        (L,) = ctx.saved_tensors
        # NOTE: PyTorch's rule: gA = L^-T Phi(L^T gL) L^-1 symmetrised, Phi = lower
        # triangle with the diagonal halved
        P = _mT(L) @ gL
        phi = tril(P, -1) + diag_embed(P.diagonal(0, -2, -1) * 0.5)
        Linv = inv(L)
        gA = _mT(Linv) @ phi @ Linv
        return (gA + _mT(gA)) * 0.5


def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:
    _square("cholesky", A)
    L = LinalgCholesky.apply(A)
    return _mT(L) if upper else L


class LinalgEigh(Function):
    @staticmethod
    def forward(ctx, A, uplo):
        w, V = np.linalg.eigh(A.detach().numpy(), UPLO=uplo)
        w, V = _wrap(w, A), _wrap(V, A)
        ctx.save_for_backward(w.detach(), V.detach())
        return w, V

    @staticmethod
    def backward(ctx, gw, gV):
        _first_order_only("eigh")
        w, V = ctx.saved_tensors
        k = w.shape[-1]
        # gA = V (diag(gw) + (V^T gV) / E) V^T, E_ij = w_j - w_i (off the diagonal; the
        # diagonal of V^T gV does not enter: eigenvectors have unit norm)
        E = w.unsqueeze(-2) - w.unsqueeze(-1) + tensor(np.eye(k), dtype=w.dtype)
        inner = (_mT(V) @ gV) / E * tensor(1 - np.eye(k), dtype=w.dtype)
        return V @ (diag_embed(gw) + inner) @ _mT(V), None


def eigh(A: Tensor, UPLO: str = "L"):
    _square("eigh", A)
    w, V = LinalgEigh.apply(A, UPLO)
    return _named("Eigh", eigenvalues=w, eigenvectors=V)


def eigvalsh(A: Tensor, UPLO: str = "L") -> Tensor:
    return eigh(A, UPLO).eigenvalues
