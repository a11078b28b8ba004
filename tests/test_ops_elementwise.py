"""Elementwise ops against NumPy: several shapes (0-d, empty, broadcasting), Python
scalars on either side, PyTorch's dtype promotion, and gradients through gradcheck."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tracegrad as torch
from tracegrad.autograd import gradcheck

SHAPES = [(), (0,), (5,), (3, 4), (2, 0, 3), (2, 3, 4)]
rng = np.random.default_rng(0)


def arr(shape, low=-2.0, high=2.0, dtype=np.float32):
    return rng.uniform(low, high, shape).astype(dtype)


def _erf(a):
    return np.vectorize(math.erf, otypes=[np.float64])(a).astype(a.dtype) if a.size else a


UNARY = {
    "neg": (np.negative, -2, 2), "exp": (np.exp, -2, 2), "log": (np.log, 0.1, 3),
    "sin": (np.sin, -3, 3), "cos": (np.cos, -3, 3), "sqrt": (np.sqrt, 0, 3),
    "rsqrt": (lambda a: 1 / np.sqrt(a), 0.1, 3), "tanh": (np.tanh, -3, 3),
    "sigmoid": (lambda a: 1 / (1 + np.exp(-a)), -5, 5), "abs": (np.abs, -2, 2),
    "sign": (np.sign, -2, 2), "floor": (np.floor, -3, 3), "ceil": (np.ceil, -3, 3),
    "round": (np.round, -3, 3), "reciprocal": (np.reciprocal, 0.5, 2),
    "log1p": (np.log1p, -0.5, 2), "expm1": (np.expm1, -2, 2), "erf": (_erf, -2, 2),
    "relu": (lambda a: np.maximum(a, 0), -2, 2), "trunc": (np.trunc, -3, 3),
    "square": (np.square, -2, 2), "log2": (np.log2, 0.1, 3), "log10": (np.log10, 0.1, 3),
    "tan": (np.tan, -1, 1), "frac": (lambda a: a - np.trunc(a), -3, 3),
}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_matches_numpy(name, shape):
    ref, low, high = UNARY[name]
    a = arr(shape, low, high)
    t = torch.from_numpy(a.copy())
    for out in (getattr(torch, name)(t), getattr(t, name)()):
        assert out.dtype == torch.float32 and tuple(out.shape) == shape
        np.testing.assert_allclose(out.numpy(), ref(a), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "sin", "sigmoid", "tanh"])
def test_float_unary_on_int_gives_float(name):
    t = torch.tensor([1, 2, 3])
    out = getattr(torch, name)(t)
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), UNARY[name][0](np.array([1., 2., 3.], np.float32)), rtol=1e-6)


def test_unary_keeps_float64():
    t = torch.tensor([0.5, 1.5], dtype=torch.float64)
    assert torch.exp(t).dtype == torch.float64
    np.testing.assert_allclose(torch.exp(t).numpy(), np.exp([0.5, 1.5]), rtol=1e-15)


def test_sigmoid_extremes_do_not_overflow():
    out = torch.sigmoid(torch.tensor([-1000.0, 0.0, 1000.0]))
    assert out.tolist() == [0.0, 0.5, 1.0]


def test_log_of_zero_is_inf_without_warnings():
    # pytest resets warning filters per test, so check in a fresh interpreter where
    # RuntimeWarnings are errors: PyTorch returns inf/nan silently, and so must we.
    import subprocess
    import sys
    code = ("import math, tracegrad as torch\n"
            "assert torch.log(torch.tensor([0.0])).item() == -math.inf\n"
            "assert math.isnan(torch.sqrt(torch.tensor([-1.0])).item())\n"
            "assert (torch.tensor([1.0]) / 0).item() == math.inf\n")
    subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code], check=True)


BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "maximum": np.maximum, "minimum": np.minimum, "pow": np.power,
    "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
    "eq": np.equal, "ne": np.not_equal,
}
BROADCAST_PAIRS = [((), ()), ((3,), ()), ((), (3,)), ((3, 4), (4,)), ((3, 1), (1, 4)),
                   ((2, 1, 4), (3, 1)), ((0,), (1,)), ((2, 0), (2, 1)), ((5,), (5,))]


@pytest.mark.parametrize("sa,sb", BROADCAST_PAIRS, ids=str)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_matches_numpy(name, sa, sb):
    low = 0.5 if name == "pow" else -2
    a, b = arr(sa, low, 2), arr(sb, -2 if name != "div" else 0.5, 2)
    if name in ("eq", "ne"):
        b = np.broadcast_to(a[..., :1] if a.ndim else a, np.broadcast_shapes(sa, sb)).copy() \
            if a.size and b.size else b
        sb = b.shape
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    out = getattr(torch, name)(ta, tb)
    expected = BINARY[name](a, b)
    assert tuple(out.shape) == expected.shape
    assert out.numpy().dtype == expected.dtype
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)


OPERATORS = [("+", np.add), ("-", np.subtract), ("*", np.multiply), ("/", np.true_divide),
             ("**", np.power), ("<", np.less), (">=", np.greater_equal), ("==", np.equal)]


@pytest.mark.parametrize("op,ref", OPERATORS, ids=[o for o, _ in OPERATORS])
def test_operators_with_python_scalars_on_both_sides(op, ref):
    a = arr((3, 2), 0.5, 2)
    t = torch.from_numpy(a)  # noqa: F841  (read by the eval below)
    left = eval(f"t {op} 1.5")
    right = eval(f"1.5 {op} t")
    np.testing.assert_allclose(left.numpy(), ref(a, np.float32(1.5)), rtol=1e-6)
    np.testing.assert_allclose(right.numpy(), ref(np.float32(1.5), a), rtol=1e-6)
    if left.dtype != torch.bool:
        assert left.dtype == torch.float32 and right.dtype == torch.float32


def test_operator_with_numpy_scalar_and_array():
    t = torch.tensor([1.0, 2.0])
    assert (t * np.float64(2.0)).dtype == torch.float32
    assert (t + np.array([1.0, 1.0])).tolist() == [2.0, 3.0]


def test_floor_divide_remainder_fmod_match_python_semantics():
    a = torch.tensor([7, -7, 7, -7])
    b = torch.tensor([2, 2, -2, -2])
    assert (a // b).tolist() == [3, -4, -4, 3]
    assert (a % b).tolist() == [1, 1, -1, -1]
    assert torch.fmod(a, b).tolist() == [1, -1, 1, -1]
    assert (a // b).dtype == torch.int64
    x = torch.tensor([5.5, -5.5])
    np.testing.assert_allclose((x % 2).numpy(), np.mod([5.5, -5.5], 2))


def test_div_rounding_modes():
    a, b = torch.tensor([7.0, -7.0]), torch.tensor([2.0, 2.0])
    assert torch.div(a, b, rounding_mode="floor").tolist() == [3.0, -4.0]
    assert torch.div(a, b, rounding_mode="trunc").tolist() == [3.0, -3.0]


# ---- dtype promotion (PyTorch's rules) ---------------------------------------------------

def test_int_tensor_plus_float_tensor_is_float32():
    assert (torch.tensor([1, 2]) + torch.tensor([1.0, 2.0])).dtype == torch.float32
    assert (torch.tensor([1, 2], dtype=torch.int32) * torch.ones(2, dtype=torch.float64)).dtype \
        == torch.float64


def test_float32_times_python_float_stays_float32():
    assert (torch.ones(2) * 2.5).dtype == torch.float32
    assert (2.5 * torch.ones(2, dtype=torch.float16)).dtype == torch.float16
    assert (torch.ones(2, dtype=torch.float64) + 1).dtype == torch.float64


def test_int_tensor_divided_by_int_is_float():
    out = torch.tensor([1, 2, 3]) / 2
    assert out.dtype == torch.float32 and out.tolist() == [0.5, 1.0, 1.5]
    assert (torch.tensor([4, 6]) / torch.tensor([2, 4])).dtype == torch.float32
    assert (1 / torch.tensor([2])).dtype == torch.float32


def test_int_tensor_times_python_float_is_default_float():
    assert (torch.tensor([1, 2]) * 0.5).dtype == torch.float32
    torch.set_default_dtype(torch.float64)
    try:
        assert (torch.tensor([1, 2]) * 0.5).dtype == torch.float64
    finally:
        torch.set_default_dtype(torch.float32)


def test_int_tensor_plus_python_int_keeps_dtype():
    assert (torch.tensor([1, 2], dtype=torch.int32) + 1).dtype == torch.int32
    assert (torch.tensor([1, 2], dtype=torch.uint8) * 3).dtype == torch.uint8


def test_zero_dim_float64_with_float32_tensor_is_float32():
    s = torch.tensor(2.0, dtype=torch.float64)
    assert (s * torch.ones(3)).dtype == torch.float32
    assert (torch.ones(3) + s).dtype == torch.float32
    # a 0-d float does lift an integer tensor to its category
    assert (torch.tensor([1, 2]) * s).dtype == torch.float64
    # two 0-d tensors promote normally
    assert (s + torch.tensor(1.0)).dtype == torch.float64


def test_bool_plus_int_scalar_is_int64():
    assert (torch.tensor([True, False]) + 1).dtype == torch.int64
    assert (torch.tensor([True, False]) + 1).tolist() == [2, 1]
    assert (torch.tensor([True]) + 1.5).dtype == torch.float32


def test_comparisons_give_bool():
    for out in (torch.ones(2) > 0, torch.tensor([1, 2]) == 1, torch.ones(2) != torch.zeros(2),
                torch.tensor([1, 2]) <= torch.tensor([1.5, 1.5])):
        assert out.dtype == torch.bool


def test_sum_of_int_is_int64():
    assert torch.tensor([1, 2], dtype=torch.int32).sum().dtype == torch.int64
    assert torch.tensor([True, True, False]).sum().dtype == torch.int64
    assert torch.tensor([True, True, False]).sum().item() == 2
    assert torch.tensor([1, 2], dtype=torch.uint8).cumsum(0).dtype == torch.int64


def test_promote_types():
    # (PyTorch's signature: dtypes in, a dtype out; test_probe_core_dtypes has the table)
    assert torch.promote_types(torch.int64, torch.float16) is torch.float16
    assert torch.promote_types(torch.uint8, torch.int8) is torch.int16


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_broadcasting_property(data):
    sa, sb = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=3)).input_shapes
    a = data.draw(hnp.arrays(np.float32, sa, elements=st.floats(-10, 10, width=32)))
    b = data.draw(hnp.arrays(np.float32, sb, elements=st.floats(-10, 10, width=32)))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    for op, ref in ((torch.add, np.add), (torch.mul, np.multiply), (torch.maximum, np.maximum),
                    (torch.gt, np.greater)):
        out = op(ta, tb)
        np.testing.assert_allclose(out.numpy(), ref(a, b), rtol=1e-6)
    # and the gradient is reduced back to each input's shape
    ga = ta.double().requires_grad_()
    gb = tb.double().requires_grad_()
    (ga * gb).sum().backward()
    assert tuple(ga.grad.shape) == sa and tuple(gb.grad.shape) == sb
    expected = np.broadcast_to(b.astype(np.float64), np.broadcast_shapes(sa, sb))
    lead = len(expected.shape) - len(sa)
    expected = expected.sum(axis=tuple(range(lead)))
    expected = expected.sum(axis=tuple(i for i, d in enumerate(sa) if d == 1), keepdims=True) \
        if sa else expected
    np.testing.assert_allclose(ga.grad.numpy(), expected.reshape(sa), rtol=1e-6, atol=1e-9)


# ---- composites and misc ---------------------------------------------------------------

def test_clamp_values_and_gradient_at_bounds():
    x = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0], requires_grad=True)
    y = x.clamp(-1, 1)
    assert y.tolist() == [-1.0, -1.0, 0.0, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    assert torch.clamp(torch.tensor([1, 5]), max=3).tolist() == [1, 3]
    assert torch.clip(torch.tensor([0.5]), min=1.0).tolist() == [1.0]
    lo, hi = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0])
    assert torch.clamp(torch.tensor([5.0, -5.0]), lo, hi).tolist() == [1.0, 1.0]


def test_clamp_gradient_at_nan_is_zero_like_pytorch():
    nan = float("nan")
    x = torch.tensor([nan, -2.0, -1.0, 0.0, 2.0], requires_grad=True)
    y = x.clamp(-1.0, 1.0)
    assert np.isnan(y.tolist()[0]) and y.tolist()[1:] == [-1.0, -1.0, 0.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]
    # tensor bounds: x keeps its gradient at the ends; a bound gets it where it is the value
    x.grad = None
    lo = torch.full((5,), -1.0, requires_grad=True)
    hi = torch.tensor(1.0, requires_grad=True)
    x.clamp(lo, hi).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]
    assert lo.grad.tolist() == [0.0, 1.0, 0.0, 0.0, 0.0] and hi.grad.item() == 1.0


def test_where_and_masked_fill():
    c = torch.tensor([True, False, True])
    assert torch.where(c, torch.ones(3), torch.zeros(3)).tolist() == [1.0, 0.0, 1.0]
    assert torch.where(c, 1.0, 0.0).tolist() == [1.0, 0.0, 1.0]
    assert torch.where(c, torch.ones(3), 5.0).tolist() == [1.0, 5.0, 1.0]
    assert torch.tensor([1.0, 2.0, 3.0]).masked_fill(c, -1).tolist() == [-1.0, 2.0, -1.0]
    assert [i.tolist() for i in torch.where(c)] == [[0, 2]]


def test_relu_sigmoid_tanh_pow_maximum_gradcheck():
    x = torch.tensor([[0.3, -0.7, 1.2], [0.9, -1.4, 0.2]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.5, 0.2, -0.3], dtype=torch.float64, requires_grad=True)
    fns = [torch.relu, torch.sigmoid, torch.tanh, lambda a: a.abs() ** 1.5,
           lambda a: torch.maximum(a, y), lambda a: torch.clamp(a, -0.5, 0.5),
           lambda a: torch.erf(a), lambda a: (a * a + 1).rsqrt(),
           lambda a: torch.where(a > 0, a * y, a / 2), lambda a: 2 ** a, lambda a: 1 / (a * a + 1),
           lambda a: torch.lerp(a, y, 0.3), lambda a: a.exp2(), lambda a: (a * a).log10()]
    for fn in fns:
        assert gradcheck(fn, (x,))


def test_isnan_isinf_isfinite():
    x = torch.tensor([1.0, float("nan"), float("inf"), -float("inf")])
    assert x.isnan().tolist() == [False, True, False, False]
    assert x.isinf().tolist() == [False, False, True, True]
    assert x.isfinite().tolist() == [True, False, False, False]
    assert torch.tensor([1, 2]).isfinite().tolist() == [True, True]


def test_logical_ops_and_bitwise_operators_on_bools():
    a, b = torch.tensor([True, False, True]), torch.tensor([True, True, False])
    assert (a & b).tolist() == [True, False, False]
    assert (a | b).tolist() == [True, True, True]
    assert (a ^ b).tolist() == [False, True, True]
    assert (~a).tolist() == [False, True, False]
    assert torch.logical_not(torch.tensor([0, 2])).tolist() == [True, False]


def test_allclose_equal_isclose():
    a = torch.tensor([1.0, 2.0])
    assert torch.equal(a, torch.tensor([1.0, 2.0]))
    assert not torch.equal(a, torch.tensor([1.0, 2.0, 3.0]))
    assert torch.allclose(a, a + 1e-9)
    assert torch.isclose(a, torch.tensor([1.0, 2.1])).tolist() == [True, False]


# ---- bitwise: integers bitwise, bool logical, floats rejected as in PyTorch ---------------

BITWISE = {"bitwise_and": ("&", np.bitwise_and), "bitwise_or": ("|", np.bitwise_or),
           "bitwise_xor": ("^", np.bitwise_xor)}


def test_bitwise_and_on_integers_is_bitwise():
    a, b = torch.tensor([6, 12, 5]), torch.tensor([3, 10, 1])
    assert (a & b).tolist() == [2, 8, 1]
    assert (a | b).tolist() == [7, 14, 5]
    assert (a ^ b).tolist() == [5, 6, 4]
    assert (~a).tolist() == [-7, -13, -6]
    assert (a & b).dtype == torch.int64


@pytest.mark.parametrize("name", sorted(BITWISE))
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_bitwise_ops_match_numpy(name, dtype):
    rng = np.random.default_rng(3)
    a = rng.integers(0, 200, (4, 5)).astype(dtype)
    b = rng.integers(0, 200, (5,)).astype(dtype)
    sym, ref = BITWISE[name]
    out_fn = getattr(torch, name)(torch.from_numpy(a), torch.from_numpy(b))
    out_op = eval(f"x {sym} y", {"x": torch.from_numpy(a), "y": torch.from_numpy(b)})
    for out in (out_fn, out_op):
        np.testing.assert_array_equal(out.numpy(), ref(a, b))
        assert out.numpy().dtype == np.dtype(dtype)
    assert getattr(torch.from_numpy(a), name)(torch.from_numpy(b)).tolist() == ref(a, b).tolist()


def test_bitwise_with_python_ints_and_bool_promotion():
    a = torch.tensor([6, 12, 5])
    assert (a & 4).tolist() == [4, 4, 4]
    assert (3 | a).tolist() == [7, 15, 7]
    assert (torch.tensor([True, False, True]) & a).tolist() == [0, 0, 1]  # bool -> int64
    assert (~torch.tensor([True, False])).tolist() == [False, True]


@pytest.mark.parametrize("name", sorted(BITWISE))
def test_bitwise_on_floats_raises_pytorchs_error(name):
    x = torch.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match=f'"{name}_cpu" not implemented for \'Float\''):
        getattr(torch, name)(x, x)
    with pytest.raises(RuntimeError, match=f'"{name}_cpu" not implemented for \'Double\''):
        eval(f"x {BITWISE[name][0]} x", {"x": x.double()})
    with pytest.raises(RuntimeError, match=f'"{name}_cpu" not implemented for \'Float\''):
        getattr(torch, name)(torch.tensor([1, 2]), 1.5)  # the scalar promotes to float
    with pytest.raises(RuntimeError, match='"bitwise_not_cpu" not implemented for \'Float\''):
        ~x


def test_logical_ops_keep_logical_semantics_on_integers():
    a, b = torch.tensor([6, 0, 5]), torch.tensor([3, 10, 0])
    assert torch.logical_and(a, b).tolist() == [True, False, False]
    assert torch.logical_or(a, b).tolist() == [True, True, True]
    assert torch.logical_xor(a, b).tolist() == [False, True, True]
    assert torch.logical_not(a).tolist() == [False, True, False]
    assert torch.logical_and(torch.tensor([0.5, 0.0]), 1).tolist() == [True, False]


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_bitwise_compiled_equals_eager(dtype):
    rng = np.random.default_rng(4)
    a = torch.from_numpy(rng.integers(0, 120, (6, 7)).astype(dtype))
    b = torch.from_numpy(rng.integers(0, 120, (7,)).astype(dtype))

    def f(x, y):
        return ((x & y) | (x ^ ~y)) ^ (x | y)

    np.testing.assert_array_equal(torch.compile(f, fullgraph=True)(a, b).numpy(), f(a, b).numpy())
    expected = ((a.numpy() & b.numpy()) | (a.numpy() ^ ~b.numpy())) ^ (a.numpy() | b.numpy())
    np.testing.assert_array_equal(f(a, b).numpy(), expected)


def test_bitwise_on_floats_raises_under_compile():
    f = torch.compile(lambda x: x & x, fullgraph=True)
    with pytest.raises(RuntimeError, match='"bitwise_and_cpu" not implemented for \'Float\''):
        f(torch.tensor([1.0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_accurate_over_its_whole_range(dtype):
    """The eager sigmoid (codegen.scalar_ops' row) within 3 ulp of a longdouble
    reference wherever the result is a normal float; 0 and 1 at the ends; NaN stays NaN."""
    x = np.concatenate([np.linspace(-100, 100, 200_001), [-1e4, 1e4]]).astype(dtype)
    ref = 1 / (1 + np.exp(-x.astype(np.longdouble)))
    out = torch.from_numpy(x).sigmoid().numpy()
    assert out.dtype == dtype
    normal = ref >= np.finfo(dtype).tiny
    ulp = np.spacing(ref[normal].astype(dtype)).astype(np.longdouble)
    assert np.max(np.abs(out[normal] - ref[normal]) / ulp) <= 3  # the old sign-split form: 2.9
    assert np.all(out[~normal] <= np.finfo(dtype).tiny)
    assert out[-2] == 0 and out[-1] == 1
    assert np.isnan(torch.tensor([np.nan], dtype=torch.float32).sigmoid().item())
