"""``tracegrad.linalg`` and the torch-level linear-algebra names: values against NumPy,
gradients against finite differences (float64), batched inputs, PyTorch's errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.autograd import gradcheck, gradgradcheck

rng = np.random.default_rng(7)


def leaf(*shape):
    return torch.from_numpy(rng.standard_normal(shape)).requires_grad_()


def well_conditioned(*shape):
    n = shape[-1]
    a = rng.standard_normal(shape) * 0.3 + np.eye(n) * 2
    return torch.from_numpy(a).requires_grad_()


def spd(*shape):
    a = rng.standard_normal(shape)
    return torch.from_numpy(a @ np.swapaxes(a, -1, -2) + np.eye(shape[-1]) * shape[-1])


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4)])
def test_inv_det_slogdet_values_and_gradients(shape):
    A = well_conditioned(*shape)
    a = A.detach().numpy()
    np.testing.assert_allclose(torch.linalg.inv(A).detach().numpy(), np.linalg.inv(a), rtol=1e-12)
    np.testing.assert_allclose(torch.inverse(A).detach().numpy(), np.linalg.inv(a), rtol=1e-12)
    np.testing.assert_allclose(torch.linalg.det(A).detach().numpy(), np.linalg.det(a), rtol=1e-12)
    np.testing.assert_allclose(A.det().detach().numpy(), np.linalg.det(a), rtol=1e-12)
    sign, logabs = torch.linalg.slogdet(A)
    ref_sign, ref_logabs = np.linalg.slogdet(a)
    np.testing.assert_allclose(sign.numpy(), ref_sign)
    np.testing.assert_allclose(logabs.detach().numpy(), ref_logabs, rtol=1e-12)
    assert gradcheck(torch.linalg.inv, (A,))
    assert gradcheck(torch.linalg.det, (A,))
    assert gradcheck(lambda x: torch.linalg.slogdet(x).logabsdet, (A,))
    assert gradgradcheck(torch.linalg.inv, (A,))
    assert gradgradcheck(torch.linalg.det, (A,))


def test_solve_matrix_vector_batched_and_right():
    A = well_conditioned(2, 3, 3)
    B = leaf(2, 3, 4)
    a, b = A.detach().numpy(), B.detach().numpy()
    np.testing.assert_allclose(torch.linalg.solve(A, B).detach().numpy(), np.linalg.solve(a, b),
                               rtol=1e-12)
    v = leaf(2, 3)  # a batch of vectors: A.ndim - 1 with A's leading shape
    np.testing.assert_allclose(torch.linalg.solve(A, v).detach().numpy(),
                               np.linalg.solve(a, v.detach().numpy()[..., None])[..., 0], rtol=1e-12)
    C = leaf(2, 4, 3)
    X = torch.linalg.solve(A, C, left=False)
    np.testing.assert_allclose((X @ A).detach().numpy(), C.detach().numpy(), atol=1e-12)
    assert gradcheck(torch.linalg.solve, (A, B))
    assert gradcheck(torch.linalg.solve, (A, v))
    assert gradgradcheck(torch.linalg.solve, (A, B))
    with pytest.raises(RuntimeError, match="Incompatible shapes"):
        torch.linalg.solve(A, leaf(2, 4, 2))


def test_singular_matrix_error_names_the_function():
    with pytest.raises(RuntimeError, match="linalg.inv: .*singular"):
        torch.linalg.inv(torch.ones(3, 3))
    with pytest.raises(RuntimeError, match=r"linalg.det: A must be batches of square matrices"):
        torch.linalg.det(torch.ones(2, 3))


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4), (2, 4, 3)])
@pytest.mark.parametrize("full", [False, True])
def test_svd_values(shape, full):
    A = leaf(*shape)
    U, S, Vh = torch.linalg.svd(A, full_matrices=full)
    ref = np.linalg.svd(A.detach().numpy(), full_matrices=full)
    np.testing.assert_allclose(S.detach().numpy(), ref[1], rtol=1e-12)
    assert tuple(U.shape) == ref[0].shape and tuple(Vh.shape) == ref[2].shape
    k = S.shape[-1]
    rebuilt = (U[..., :k] * S.unsqueeze(-2)) @ Vh[..., :k, :]
    np.testing.assert_allclose(rebuilt.detach().numpy(), A.detach().numpy(), atol=1e-12)


def _svd_invariants(A):
    """Losses that do not depend on the signs of singular-vector pairs."""
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    w1 = torch.from_numpy(np.linspace(-1, 1, U.shape[-2] * U.shape[-2]).reshape(U.shape[-2], -1))
    w2 = torch.from_numpy(np.linspace(1, 2, Vh.shape[-1] * Vh.shape[-1]).reshape(Vh.shape[-1], -1))
    return ((U * S.unsqueeze(-2) ** 2) @ Vh).sum() + (S ** 3).sum() + \
        ((U @ U.transpose(-2, -1)) * w1).sum() + ((Vh.transpose(-2, -1) @ Vh) * w2).sum()


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4), (2, 4, 3)])
def test_svd_gradient(shape):
    assert gradcheck(_svd_invariants, (leaf(*shape),))
    assert gradcheck(torch.linalg.svdvals, (leaf(*shape),))


def test_svd_gradient_with_full_matrices_uses_the_first_k_vectors():
    A = leaf(5, 3)

    def loss(x):
        U, S, Vh = torch.linalg.svd(x, full_matrices=True)
        return (U[:, :3] * S) @ Vh
    assert gradcheck(loss, (A,))


def test_torch_svd_returns_v_not_vh():
    A = leaf(4, 3)
    U, S, V = torch.svd(A)
    assert tuple(U.shape) == (4, 3) and tuple(V.shape) == (3, 3)
    np.testing.assert_allclose(((U * S) @ V.t()).detach().numpy(), A.detach().numpy(), atol=1e-12)
    U2, S2, V2 = A.svd()
    np.testing.assert_allclose(S2.detach().numpy(), S.detach().numpy())


@pytest.mark.parametrize("shape", [(5, 3), (4, 4), (2, 3, 3)])
def test_qr_values_and_gradient(shape):
    A = leaf(*shape)
    Q, R = torch.linalg.qr(A)
    q, r = np.linalg.qr(A.detach().numpy())
    np.testing.assert_allclose(Q.detach().numpy(), q, atol=1e-12)
    np.testing.assert_allclose(R.detach().numpy(), r, atol=1e-12)
    assert gradcheck(lambda x: torch.linalg.qr(x).Q, (A,))
    assert gradcheck(lambda x: torch.linalg.qr(x).R, (A,))
    Qc, Rc = torch.linalg.qr(A, mode="complete")
    assert tuple(Qc.shape) == np.linalg.qr(A.detach().numpy(), mode="complete")[0].shape
    with pytest.raises(RuntimeError, match="unrecognized mode 'thin'"):
        torch.linalg.qr(A, mode="thin")


def test_cholesky_values_and_gradient():
    A = spd(2, 4, 4)
    L = torch.linalg.cholesky(A)
    np.testing.assert_allclose(L.numpy(), np.linalg.cholesky(A.numpy()), rtol=1e-12)
    np.testing.assert_allclose(torch.linalg.cholesky(A, upper=True).numpy(),
                               np.swapaxes(np.linalg.cholesky(A.numpy()), -1, -2), rtol=1e-12)
    X = torch.from_numpy(rng.standard_normal((4, 4))).requires_grad_()
    # gradients through a symmetric input: A(X) = X X^T + 4 I
    assert gradcheck(lambda x: torch.linalg.cholesky(x @ x.t() + torch.eye(4, dtype=x.dtype) * 4),
                     (X,))
    with pytest.raises(RuntimeError, match="linalg.cholesky"):
        torch.linalg.cholesky(-torch.eye(3))


def test_eigh_values_and_gradient():
    A = spd(4, 4)
    w, V = torch.linalg.eigh(A)
    rw, rV = np.linalg.eigh(A.numpy())
    np.testing.assert_allclose(w.numpy(), rw, rtol=1e-12)
    np.testing.assert_allclose(np.abs(V.numpy()), np.abs(rV), atol=1e-10)
    X = torch.from_numpy(rng.standard_normal((4, 4))).requires_grad_()

    def loss(x):
        w, V = torch.linalg.eigh(x + x.t())
        return w.sum() * 0.5 + (w ** 2).sum() + ((V * V) @ torch.arange(4.0, dtype=x.dtype)).sum()
    assert gradcheck(loss, (X,))


@pytest.mark.parametrize("ord", [2, 1, 3, 0.5, math.inf, -math.inf, 0])
@pytest.mark.parametrize("dim", [None, 1, (0, 2)])
def test_vector_norm(ord, dim):
    x = leaf(3, 4, 5)
    ref = np.linalg.norm(x.detach().numpy().reshape(-1), ord) if dim is None else None
    out = torch.linalg.vector_norm(x, ord, dim)
    if dim is None:
        np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-12)
    else:
        a = np.abs(x.detach().numpy())
        axes = (dim,) if isinstance(dim, int) else dim
        expected = (a.max(axes) if ord == math.inf else a.min(axes) if ord == -math.inf
                    else (a != 0).sum(axes) if ord == 0 else (a ** ord).sum(axes) ** (1 / ord))
        np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12)
    if ord != 0:
        assert gradcheck(lambda t: torch.linalg.vector_norm(t, ord, dim), (x,))


def test_norm_of_zero_vector_has_zero_gradient():
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    torch.linalg.vector_norm(x).backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("ord", ["fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf])
def test_matrix_norm(ord, keepdim=False):
    A = leaf(2, 4, 3)
    expected = np.linalg.norm(A.detach().numpy(), ord, axis=(-2, -1))
    np.testing.assert_allclose(torch.linalg.matrix_norm(A, ord).detach().numpy(), expected,
                               rtol=1e-12)
    kept = torch.linalg.matrix_norm(A, ord, keepdim=True)
    assert tuple(kept.shape) == (2, 1, 1)
    assert gradcheck(lambda t: torch.linalg.matrix_norm(t, ord), (A,))


def test_norm_dispatch():
    A = leaf(3, 4)
    a = A.detach().numpy()
    np.testing.assert_allclose(torch.linalg.norm(A).detach().numpy(), np.linalg.norm(a), rtol=1e-12)
    np.testing.assert_allclose(torch.linalg.norm(A, "nuc").detach().numpy(),
                               np.linalg.norm(a, "nuc"), rtol=1e-12)
    np.testing.assert_allclose(torch.linalg.norm(A, 1).detach().numpy(), np.linalg.norm(a, 1),
                               rtol=1e-12)
    np.testing.assert_allclose(torch.linalg.norm(A, 3, dim=1).detach().numpy(),
                               np.linalg.norm(a, 3, axis=1), rtol=1e-12)
    with pytest.raises(RuntimeError, match="must be 1D or 2D"):
        torch.linalg.norm(leaf(2, 2, 2), 2)


def test_pinv_matrix_power_and_cross():
    A = leaf(5, 3)
    np.testing.assert_allclose(torch.linalg.pinv(A).detach().numpy(),
                               np.linalg.pinv(A.detach().numpy()), rtol=1e-10)
    assert gradcheck(torch.linalg.pinv, (A,))
    B = well_conditioned(3, 3)
    for n in (0, 1, 3, -2):
        np.testing.assert_allclose(torch.linalg.matrix_power(B, n).detach().numpy(),
                                   np.linalg.matrix_power(B.detach().numpy(), n), rtol=1e-10)
    a, b = leaf(4, 3), leaf(4, 3)
    np.testing.assert_allclose(torch.linalg.cross(a, b).detach().numpy(),
                               np.cross(a.detach().numpy(), b.detach().numpy()), rtol=1e-12)
    assert gradcheck(torch.linalg.cross, (a, b))


@pytest.mark.parametrize("fn", [lambda a: torch.linalg.svd(a, full_matrices=False).S,
                                lambda a: torch.linalg.qr(a).R,
                                lambda a: torch.linalg.cholesky(a @ a.t() + torch.eye(3, dtype=a.dtype)),
                                lambda a: torch.linalg.eigh(a + a.t()).eigenvalues])
def test_second_derivatives_through_factorizations_are_refused_not_wrong(fn):
    A = leaf(3, 3)
    (g,) = torch.autograd.grad(fn(A).sum(), A)  # first derivatives work
    assert tuple(g.shape) == (3, 3)
    with pytest.raises(RuntimeError, match="first derivatives .* only; create_graph=True"):
        torch.autograd.grad(fn(A).sum(), A, create_graph=True)
