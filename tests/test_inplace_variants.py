"""Every ``_`` form of a PyTorch Tensor method whose out-of-place form exists here: writes
into the same storage, bumps the version, records history; view forms change the shape
in place. Plus ``set_default_device`` and ``tracegrad.accelerator``."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
from tracegrad._ops.inplace_variants import _ELEMENTWISE

# methods of PyTorch 2.x's Tensor with a ``_`` form (a subset: those whose out-of-place
# form tracegrad has); every one must exist
PYTORCH_INPLACE = """abs_ absolute_ acos_ acosh_ add_ addcdiv_ addcmul_ arccos_ arccosh_ arcsin_
arcsinh_ arctan_ arctan2_ arctanh_ asin_ asinh_ atan_ atan2_ atanh_ bernoulli_ bitwise_and_
bitwise_not_ bitwise_or_ bitwise_xor_ ceil_ clamp_ clamp_max_ clamp_min_ clip_ copy_ cos_
cosh_ cumsum_ div_ divide_ eq_ erf_ exp_ exp2_ expm1_ exponential_ fill_ fix_ floor_
floor_divide_ fmod_ frac_ ge_ greater_ greater_equal_ gt_ index_add_ index_fill_ le_ lerp_
less_ less_equal_ log_ log10_ log1p_ log2_ logical_and_ logical_not_ logical_or_
logical_xor_ lt_ masked_fill_ mul_ multiply_ ne_ neg_ negative_ normal_ not_equal_ pow_
random_ reciprocal_ relu_ remainder_ round_ rsqrt_ scatter_ scatter_add_ sigmoid_ sign_
sin_ sinh_ sqrt_ square_ squeeze_ sub_ subtract_ swapaxes_ swapdims_ t_ tan_ tanh_
transpose_ tril_ triu_ true_divide_ trunc_ uniform_ unsqueeze_ zero_""".split()


@pytest.mark.parametrize("name", PYTORCH_INPLACE)
def test_method_exists(name):
    assert callable(getattr(torch.Tensor, name))


_BINARY = {"atan2_", "arctan2_", "bitwise_and_", "bitwise_or_", "bitwise_xor_", "divide_",
           "eq_", "floor_divide_", "fmod_", "ge_", "gt_", "le_", "lt_", "ne_", "greater_",
           "greater_equal_", "less_", "less_equal_", "not_equal_", "logical_and_",
           "logical_or_", "logical_xor_", "multiply_", "remainder_", "subtract_"}
_ARGS = {"clamp_min_": (0.2,), "clamp_max_": (0.2,), "cumsum_": (1,), "tril_": (), "triu_": ()}


@pytest.mark.parametrize("name", sorted(_ELEMENTWISE))
def test_elementwise_inplace_equals_out_of_place(name):
    integer = name.startswith("bitwise")
    base = rng_values(integer)
    args = (rng_values(integer) + (1 if integer else 0.5),) if name in _BINARY else _ARGS.get(name, ())
    expected = _ELEMENTWISE[name](torch.from_numpy(base.copy()), *[torch.from_numpy(a) if
                                                                  isinstance(a, np.ndarray) else a
                                                                  for a in args])
    x = torch.from_numpy(base.copy())
    storage = x.numpy()
    version = x._version[0]
    out = getattr(x, name)(*[torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args])
    assert out is x and x.numpy() is storage and x._version[0] > version
    np.testing.assert_allclose(x.numpy(), expected.numpy().astype(base.dtype), rtol=1e-6)


def rng_values(integer):
    rng = np.random.default_rng(0)
    if integer:
        return rng.integers(0, 8, (3, 4))
    return rng.uniform(0.1, 0.9, (3, 4))


@pytest.mark.parametrize("name,deriv", [("sin_", np.cos), ("log_", lambda v: 1 / v),
                                        ("sqrt_", lambda v: 0.5 / np.sqrt(v))])
def test_inplace_rule_that_reads_its_input_sees_the_old_value(name, deriv):
    x = torch.rand(4, requires_grad=True)
    y = x * 1
    getattr(y, name)()
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), deriv(x.detach().numpy()), rtol=1e-5)


def test_inplace_gradient_through_sin_():
    x = torch.rand(4, requires_grad=True)
    y = x * 1
    y.sin_()
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.cos(x.detach().numpy()), rtol=1e-6)
    with pytest.raises(RuntimeError, match="sin_: a leaf Variable that requires grad"):
        x.sin_()


@pytest.mark.parametrize("name,args,shape", [
    ("unsqueeze_", (0,), (1, 2, 3)), ("unsqueeze_", (-1,), (2, 3, 1)),
    ("t_", (), (3, 2)), ("transpose_", (0, 1), (3, 2)), ("swapdims_", (1, 0), (3, 2)),
])
def test_view_inplace_changes_the_shape_of_the_same_tensor(name, args, shape):
    a = np.arange(6.0).reshape(2, 3)
    x = torch.from_numpy(a)
    out = getattr(x, name)(*args)
    assert out is x and tuple(x.shape) == shape
    expected = getattr(torch.from_numpy(a), name[:-1])(*args)
    np.testing.assert_array_equal(x.numpy(), expected.numpy())
    assert np.shares_memory(x.numpy(), a)


def test_squeeze_in_place_and_gradient():
    x = torch.rand(2, 1, 3, requires_grad=True)
    y = x * 3
    y.squeeze_(1)
    assert tuple(y.shape) == (2, 3)
    y.unsqueeze_(0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3.0)


def test_set_default_device():
    try:
        torch.set_default_device("cpu")
        assert torch.get_default_device() == torch.device("cpu")
        assert torch.zeros(2).device == torch.device("cpu")
        if not torch.cuda.is_available():
            torch.set_default_device("cuda")
            assert torch.get_default_device() == torch.device("cuda:0")
            with pytest.raises(RuntimeError):
                torch.zeros(2)  # no GPU here: the move fails with the CUDA error
    finally:
        torch.set_default_device(None)
    assert torch.get_default_device() == torch.device("cpu")
    assert torch.ones(1).device == torch.device("cpu")


def test_accelerator_reports_cuda_or_nothing():
    if torch.cuda.is_available():
        assert torch.accelerator.is_available()
        assert torch.accelerator.current_accelerator().type == "cuda"
        assert torch.accelerator.device_count() == torch.cuda.device_count()
    else:
        assert not torch.accelerator.is_available()
        assert torch.accelerator.current_accelerator() is None
        assert torch.accelerator.device_count() == 0
    # the idiom of PyTorch's tutorials
    device = (torch.accelerator.current_accelerator().type
              if torch.accelerator.is_available() else "cpu")
    assert torch.ones(2, device=device).sum().item() == 2.0
