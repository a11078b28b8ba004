"""einsum with ellipses and repeated subscripts, and PyTorch's broadcasting helpers
(broadcast_shapes/broadcast_tensors, atleast_Nd, dstack, column_stack), checked against
NumPy's einsum and hand-written shapes; torch compared where installed."""
import numpy as np
import pytest

import tracegrad as tg

rng = np.random.default_rng(7)
A = rng.standard_normal((2, 3, 4)).astype(np.float32)
B = rng.standard_normal((2, 4, 5)).astype(np.float32)
C = rng.standard_normal((4, 5)).astype(np.float32)
SQ = rng.standard_normal((2, 3, 3)).astype(np.float32)

EQUATIONS = [
    ("...ij,...jk->...ik", (A, B)), ("...ij,jk->...ik", (A, C)), ("bij,bjk", (A, B)),
    ("ii->i", (SQ[0],)), ("ii", (SQ[0],)), ("bii->b", (SQ,)), ("bii->bi", (SQ,)),
    ("...ii->...i", (SQ,)), ("...i->...", (A,)), ("i...->...", (A,)), ("...", (A,)),
    ("b...,b...->b...", (A, A)), ("ij,ij->", (C, C)), ("bij,bkj->bik", (A, A)),
]


@pytest.mark.parametrize("equation,operands", EQUATIONS, ids=[e for e, _ in EQUATIONS])
def test_einsum_matches_numpy(equation, operands):
    # before: an ellipsis was read as a subscript letter and a repeated letter (a diagonal)
    # failed in reshape
    got = tg.einsum(equation, *[tg.tensor(o) for o in operands])
    want = np.einsum(equation, *[o.astype(np.float64) for o in operands])
    assert tuple(got.shape) == want.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-5)


def test_einsum_sums_ellipsis_dims_left_out_of_the_output():
    # PyTorch sums them (NumPy refuses the equation)
    got = tg.einsum("b...,b...->b", tg.tensor(A), tg.tensor(A))
    np.testing.assert_allclose(got.numpy(), (A.astype(np.float64) ** 2).sum((1, 2)), rtol=1e-5)


def test_einsum_diagonal_gradient():
    x = tg.tensor(SQ[0], requires_grad=True)
    tg.einsum("ii", x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.eye(3, dtype=np.float32))


def test_einsum_subscripts_must_fit_the_operand():
    with pytest.raises(RuntimeError, match="subscripts"):
        tg.einsum("ij->i", tg.zeros(2, 3, 4))


def test_broadcast_shapes_and_tensors():
    assert tg.broadcast_shapes((2, 1), (3,)) == (2, 3)
    assert type(tg.broadcast_shapes(3, (2, 1))) is tg.Size
    assert tg.broadcast_shapes() == ()
    with pytest.raises(RuntimeError):
        tg.broadcast_shapes((2,), (3,))
    a, b = tg.broadcast_tensors(tg.tensor([[1.0], [2.0]]), tg.tensor([10.0, 20.0, 30.0]))
    np.testing.assert_array_equal(a.numpy(), [[1, 1, 1], [2, 2, 2]])
    np.testing.assert_array_equal(b.numpy(), [[10, 20, 30], [10, 20, 30]])


def test_atleast_and_stacks():
    assert tg.atleast_1d(tg.tensor(1.0)).shape == (1,)
    assert tg.atleast_2d(tg.tensor([1.0, 2.0])).shape == (1, 2)
    assert tg.atleast_3d(tg.tensor([1.0, 2.0])).shape == (1, 2, 1)
    assert tg.atleast_3d(tg.zeros(2, 3)).shape == (2, 3, 1)
    assert [t.shape for t in tg.atleast_2d(tg.tensor(1.0), tg.tensor([1.0]))] == [(1, 1), (1, 1)]
    assert tg.dstack([tg.tensor([1, 2]), tg.tensor([3, 4])]).tolist() == [[[1, 3], [2, 4]]]
    assert tg.column_stack([tg.tensor([1, 2]), tg.tensor([3, 4])]).tolist() == [[1, 3], [2, 4]]


def test_shape_helpers_match_torch():
    torch = pytest.importorskip("torch")
    for equation, operands in EQUATIONS:
        want = torch.einsum(equation, *[torch.from_numpy(o) for o in operands])
        got = tg.einsum(equation, *[tg.tensor(o) for o in operands])
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)
    for fn in [lambda m: m.atleast_3d(m.tensor(1.0)), lambda m: m.atleast_3d(m.zeros(4)),
               lambda m: m.dstack([m.zeros(2, 3), m.ones(2, 3)]),
               lambda m: m.column_stack([m.zeros(3), m.ones(3, 2)])]:
        assert tuple(fn(tg).shape) == tuple(fn(torch).shape)
