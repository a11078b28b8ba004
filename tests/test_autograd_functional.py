"""autograd.functional: jacobian/hessian/vjp/jvp/hvp/vhp against finite differences."""
import numpy as np
import pytest

import tracegrad as torch
from tracegrad.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp


def t(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


def f_np(x, y):
    return np.stack([np.sin(x[0]) * y[1], x[1] ** 2 + np.exp(y[0]), (x * x).sum() * y.sum()])


def f(x, y):
    return torch.stack([x[0].sin() * y[1], x[1] ** 2 + y[0].exp(), (x * x).sum() * y.sum()])


def numeric_jacobian(fn, args, i, eps=1e-6):
    args = [np.array(a, dtype=np.float64) for a in args]
    base = fn(*args)
    cols = []
    for k in range(args[i].size):
        plus = [a.copy() for a in args]
        minus = [a.copy() for a in args]
        plus[i].flat[k] += eps
        minus[i].flat[k] -= eps
        cols.append((fn(*plus) - fn(*minus)).ravel() / (2 * eps))
    return np.stack(cols, axis=-1).reshape(base.shape + args[i].shape)


X, Y = np.array([0.3, -1.2]), np.array([0.7, 2.0])


def test_jacobian_two_inputs_matches_finite_differences():
    jx, jy = jacobian(f, (t(X), t(Y)))
    np.testing.assert_allclose(jx.numpy(), numeric_jacobian(f_np, (X, Y), 0), rtol=1e-6)
    np.testing.assert_allclose(jy.numpy(), numeric_jacobian(f_np, (X, Y), 1), rtol=1e-6)
    assert not jx.requires_grad


def test_jacobian_shapes_for_matrix_input_and_tuple_outputs():
    x = t(np.arange(6.0).reshape(2, 3))
    out = jacobian(lambda x: (x.sum(1), x * 2), x)
    assert isinstance(out, tuple) and tuple(out[0].shape) == (2, 2, 3)
    assert tuple(out[1].shape) == (2, 3, 2, 3)
    np.testing.assert_allclose(out[1].numpy().reshape(6, 6), 2 * np.eye(6))


def test_vjp_and_jvp_against_the_jacobian():
    x, y = t(X), t(Y)
    J = np.concatenate([numeric_jacobian(f_np, (X, Y), 0), numeric_jacobian(f_np, (X, Y), 1)], 1)
    v = np.array([1.0, -2.0, 0.5])
    out, (gx, gy) = vjp(f, (x, y), t(v))
    np.testing.assert_allclose(out.numpy(), f_np(X, Y))
    np.testing.assert_allclose(np.concatenate([gx.numpy(), gy.numpy()]), v @ J, rtol=1e-6)
    u = np.array([0.2, 1.0, -1.0, 3.0])
    out, jv = jvp(f, (x, y), (t(u[:2]), t(u[2:])))
    np.testing.assert_allclose(jv.numpy(), J @ u, rtol=1e-6)


def test_hessian_hvp_vhp_analytic():
    a = np.array([[2.0, 1.0], [1.0, 3.0]])

    def quartic(x):  # 0.5 x^T A x + sum(x^4)
        return 0.5 * (x * (t(a) @ x)).sum() + (x ** 4).sum()

    x0 = np.array([0.5, -1.0])
    H = a + np.diag(12 * x0 ** 2)
    np.testing.assert_allclose(hessian(quartic, t(x0)).numpy(), H, rtol=1e-10)
    v = np.array([1.0, 2.0])
    val, hv = hvp(quartic, t(x0), t(v))
    np.testing.assert_allclose(hv.numpy(), H @ v, rtol=1e-10)
    np.testing.assert_allclose(float(val), 0.5 * x0 @ a @ x0 + (x0 ** 4).sum())
    np.testing.assert_allclose(vhp(quartic, t(x0), t(v))[1].numpy(), v @ H, rtol=1e-10)


def test_hessian_of_two_inputs_is_nested():
    h = hessian(lambda x, y: (x * x * y).sum(), (t([1.0, 2.0]), t([3.0, 4.0])))
    np.testing.assert_allclose(h[0][0].numpy(), np.diag([6.0, 8.0]))
    np.testing.assert_allclose(h[0][1].numpy(), np.diag([2.0, 4.0]))
    np.testing.assert_allclose(h[1][1].numpy(), np.zeros((2, 2)))


def test_create_graph_keeps_gradients_flowing_to_the_inputs():
    x = t([1.0, 2.0]).requires_grad_()
    j = jacobian(lambda x: x ** 3, x, create_graph=True)
    assert j.requires_grad
    j.sum().backward()  # d/dx sum(diag(3x^2)) = 6x
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 12.0])


def test_strict_and_unused_inputs():
    x, y = t([1.0]), t([2.0])
    jx, jy = jacobian(lambda x, y: x * 2, (x, y))
    assert jy.tolist() == [[0.0]]
    with pytest.raises(RuntimeError, match="independent of input 1"):
        jacobian(lambda x, y: x * 2, (x, y), strict=True)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(RuntimeError, match="v can only be None"):
        vjp(lambda x: x * 2, t([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="invalid size"):
        vjp(lambda x: x * 2, t([1.0, 2.0]), t([1.0]))
    with pytest.raises(RuntimeError, match="single element"):
        hessian(lambda x: x * 2, t([1.0, 2.0]))
    with pytest.raises(TypeError, match="must be a Tensor"):
        jacobian(lambda x: x, [1.0, 2.0])
