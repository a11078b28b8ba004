"""autograd.Function: custom forward/backward, checked against finite differences."""
import warnings

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.autograd import Function, gradcheck, gradgradcheck, once_differentiable


class LegendrePolynomial3(Function):  # the PyTorch tutorial's example
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 0.5 * (5 * x ** 3 - 3 * x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * x ** 2 - 1)


class ClampWithStraightThrough(Function):
    """A clamp whose backward passes the gradient through unchanged (a custom rule that
    differs from the true derivative, so the test sees that backward was the user's)."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        return x.clamp(lo, hi)

    @staticmethod
    def backward(ctx, g):
        return g, None, None


class ScaleAndShift(Function):
    """Several tensor inputs, a non-tensor input, needs_input_grad."""

    @staticmethod
    def forward(ctx, x, w, shift: float):
        ctx.save_for_backward(x, w)
        ctx.shift = shift
        return x * w + shift

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        gx = g * w if ctx.needs_input_grad[0] else None
        gw = (g * x).sum(0) if ctx.needs_input_grad[1] else None
        return gx, gw, None


class SinCos(Function):
    """Two differentiable outputs."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin(), x.cos()

    @staticmethod
    def backward(ctx, gs, gc):
        (x,) = ctx.saved_tensors
        return gs * x.cos() - gc * x.sin()


def randn(*shape):
    return torch.tensor(np.random.default_rng(0).standard_normal(shape), requires_grad=True)


def test_legendre_values_and_gradient_match_finite_differences():
    x = randn(5)
    y = LegendrePolynomial3.apply(x)
    xs = x.detach().numpy()
    np.testing.assert_allclose(y.detach().numpy(), 0.5 * (5 * xs ** 3 - 3 * xs))
    assert y.grad_fn.name() == "LegendrePolynomial3Backward"
    assert gradcheck(LegendrePolynomial3.apply, (x,))
    # the backward is tensor code: second derivatives work too
    assert gradgradcheck(LegendrePolynomial3.apply, (x,))


def test_custom_backward_is_the_one_used():
    x = torch.tensor([-2.0, 0.5, 3.0], requires_grad=True)
    y = ClampWithStraightThrough.apply(x, -1.0, 1.0)
    assert y.tolist() == [-1.0, 0.5, 1.0]
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [1.0, 2.0, 3.0]  # the true clamp derivative would zero 0 and 2


def test_several_inputs_non_tensor_argument_and_needs_input_grad():
    x, w = randn(4, 3), randn(3)
    assert gradcheck(lambda x, w: ScaleAndShift.apply(x, w, 0.5), (x, w))
    seen = []

    class Spy(ScaleAndShift):
        @staticmethod
        def backward(ctx, g):
            seen.append(ctx.needs_input_grad)
            return ScaleAndShift.backward(ctx, g)

    Spy.apply(x, w.detach(), 2.0).sum().backward()
    assert seen == [(True, False, False)]


def test_two_outputs_gradients_are_combined():
    x = randn(6)
    assert gradcheck(lambda x: SinCos.apply(x), (x,))
    s, c = SinCos.apply(x)
    (s * 2).sum().backward()  # only one output used: the other gets materialized zeros
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.cos(x.detach().numpy()))


def test_set_materialize_grads_false_passes_none():
    got = []

    class TwoOut(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            got.append((ga is None, gb is None))
            return ga * 2 if ga is not None else gb * 3

    x = randn(3)
    TwoOut.apply(x)[1].sum().backward()
    assert got == [(True, False)] and x.grad.tolist() == [3.0, 3.0, 3.0]


def test_saved_tensor_modified_in_place_is_detected():
    x = randn(3)
    y = x * 1
    out = LegendrePolynomial3.apply(y)
    with torch.no_grad():
        y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*"
                                           "LegendrePolynomial3Backward.*version 1"):
        out.sum().backward()


def test_mark_non_differentiable_and_integer_outputs():
    class SortWithIndices(Function):
        @staticmethod
        def forward(ctx, x):
            idx = torch.tensor(np.argsort(x.detach().numpy()))
            sorted_x = x[idx]
            flag = sorted_x > 0
            ctx.mark_non_differentiable(flag)
            ctx.save_for_backward(idx)
            return sorted_x, idx, flag

        @staticmethod
        def backward(ctx, g, g_idx, g_flag):
            (idx,) = ctx.saved_tensors
            out = torch.zeros_like(g)
            out[idx] = g
            return out

    x = torch.tensor([3.0, -1.0, 2.0], requires_grad=True)
    s, idx, flag = SortWithIndices.apply(x)
    assert s.requires_grad and not idx.requires_grad and not flag.requires_grad
    (s * torch.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert x.grad.tolist() == [100.0, 1.0, 10.0]


def test_mark_dirty_in_place_function():
    class MulTwoInPlace(Function):
        @staticmethod
        def forward(ctx, x):
            x.mul_(2)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 2

    leaf = randn(3)
    y = leaf * 3
    out = MulTwoInPlace.apply(y)
    assert out is y and y.grad_fn.name() == "MulTwoInPlaceBackward"
    np.testing.assert_allclose(y.detach().numpy(), leaf.detach().numpy() * 6)
    y.sum().backward()
    assert leaf.grad.tolist() == [6.0, 6.0, 6.0]
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        MulTwoInPlace.apply(randn(2))


def test_returned_input_is_a_new_tensor_with_its_own_history():
    class Identity(Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 5

    x = randn(2)
    y = Identity.apply(x)
    assert y is not x and x.is_leaf and y.grad_fn is not None
    y.sum().backward()
    assert x.grad.tolist() == [5.0, 5.0]


def test_once_differentiable_refuses_double_backward():
    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @once_differentiable
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    x = randn(3)
    (gx,) = torch.autograd.grad(Square.apply(x).sum(), x)
    np.testing.assert_allclose(gx.numpy(), 2 * x.detach().numpy())
    v = torch.ones(3, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad(Square.apply(x), x, grad_outputs=v, create_graph=True)
    assert gx.requires_grad  # recorded, as PyTorch does, only to refuse differentiation
    with pytest.raises(RuntimeError, match="once_differentiable"):
        gx.sum().backward()


def test_wrong_number_and_shape_of_gradients_are_clear_errors():
    class TooFew(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RuntimeError, match="TooFewBackward returned an incorrect number of "
                                           r"gradients \(expected 2, got 1\)"):
        TooFew.apply(randn(2), randn(2)).sum().backward()

    class BadShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return torch.ones(7)

    with pytest.raises(RuntimeError, match=r"invalid gradient at index 0 - got \[7\] but "
                                           r"expected shape compatible with \[2\]"):
        BadShape.apply(randn(2)).sum().backward()


def test_no_grad_and_non_requiring_inputs_record_nothing():
    x = torch.tensor([1.0, 2.0])
    assert LegendrePolynomial3.apply(x).grad_fn is None
    with torch.no_grad():
        assert LegendrePolynomial3.apply(randn(2)).grad_fn is None


def test_legacy_instance_call_and_missing_backward():
    with pytest.raises(RuntimeError, match="Legacy autograd function"):
        LegendrePolynomial3()(randn(2))

    class NoBackward(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

    with pytest.raises(NotImplementedError, match="backward"):
        NoBackward.apply(randn(2)).sum().backward()


def test_non_tensor_output_gets_none_as_its_gradient():
    got = []

    class WithCount(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, 7

        @staticmethod
        def backward(ctx, g, g_count):
            got.append(g_count)
            return g * 2

    x = randn(2)
    y, count = WithCount.apply(x)
    assert count == 7
    y.sum().backward()
    assert got == [None] and x.grad.tolist() == [2.0, 2.0]


def test_backward_may_be_named_vjp():
    class Double(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def vjp(ctx, g):
            return g * 2

    x = randn(3)
    Double.apply(x).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_gradient_broadcast_to_the_input_is_summed_and_cast():
    class Broadcasting(Function):
        @staticmethod
        def forward(ctx, bias):
            return bias * 1

        @staticmethod
        def backward(ctx, g):
            return torch.ones(4, 3, dtype=torch.float32)  # (4, 3) for a (1, 3) input

    bias = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    Broadcasting.apply(bias).sum().backward()
    assert bias.grad.dtype == torch.float64 and bias.grad.tolist() == [[4.0, 4.0, 4.0]]


def test_setup_context_style():
    class Exp(Function):
        @staticmethod
        def forward(x):
            return x.exp()

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(output)

        @staticmethod
        def backward(ctx, g):
            (result,) = ctx.saved_tensors
            return g * result

    assert gradcheck(Exp.apply, (randn(4),))


def test_compile_falls_back_to_eager_with_a_warning():
    @torch.compile
    def f(x):
        return LegendrePolynomial3.apply(x) * 2

    x = torch.tensor([0.5, -1.5, 2.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = f(x)
    assert any("LegendrePolynomial3" in str(w.message) for w in caught)
    xs = x.numpy()
    np.testing.assert_allclose(got.numpy(), (5 * xs ** 3 - 3 * xs), rtol=1e-6)
