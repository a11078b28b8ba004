"""The mismatches tests/test_fuzz6_dtype_programs.py found, one case each: eager against
PyTorch, compiled against eager (dtype, shape, values to the bit, signed zeros)."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg

torch = pytest.importorskip("torch")

EDGES = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e38, -1e38, 3.0, -2.5, 0.5, 7.0, -7.0, 5.99,
         -5.23, 1e-40, 0.1, -0.3, 1e20, 123456.7]


def _same_bits(got, want, what):
    """Equal values, NaN where NaN, and the same sign on zeros."""
    same = ((got == want) & (np.signbit(got) == np.signbit(want))) | (
        np.isnan(got) & np.isnan(want))
    assert same.all(), f"{what}: {got[~same][:6]} != {want[~same][:6]}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["floor_divide", "remainder", "fmod"])
def test_float_floor_division_and_remainder_match_torch_at_the_edges(name, dtype):
    # before: -5.23 // inf gave -0.0 (torch -1), inf // -0.0 gave inf (torch -inf),
    # -2.5 % -inf gave NaN (torch -2.5), 3.0 // 0.1 gave 30 (torch 29: 0.1 is above a
    # tenth), as floor(a / b) and a - floor(a / b) * b
    a, b = (v.ravel().astype(dtype) for v in np.meshgrid(EDGES, EDGES))
    rng = np.random.default_rng(0)
    a = np.concatenate([a, (rng.standard_normal(2000) * 100).astype(dtype)])
    b = np.concatenate([b, rng.standard_normal(2000).astype(dtype)])
    # past 2**mantissa torch's vectorised float32 fmod gives NaN (fmod(1e38, 1e-40)); its
    # scalar kernel is C's, as tracegrad (tests/test_fmod_primitive.py holds those)
    with np.errstate(all="ignore"):
        held = ~(np.abs(a / b) >= 2.0 ** np.finfo(dtype).nmant)
    want = getattr(torch, name)(torch.tensor(a), torch.tensor(b)).numpy()
    eager = getattr(tg, name)(tg.tensor(a), tg.tensor(b)).numpy()
    compiled = tg.compile(getattr(tg, name))(tg.tensor(a), tg.tensor(b)).numpy()
    _same_bits(eager[held], want[held], f"eager {name}")
    _same_bits(compiled, eager, f"compiled {name}")
    scalar = getattr(tg, name)(tg.tensor(a), 0.1).numpy()
    want = getattr(torch, name)(torch.tensor(a), 0.1).numpy()
    with np.errstate(all="ignore"):
        held = ~(np.abs(a / np.array(0.1, dtype)) >= 2.0 ** np.finfo(dtype).nmant)
    _same_bits(scalar[held], want[held], f"{name} 0.1")


def test_float_remainder_of_a_huge_quotient_is_exact():
    a = np.array([1e38, -1e38], np.float32)
    want = torch.remainder(torch.tensor(a), 3.0).numpy()
    np.testing.assert_array_equal(tg.remainder(tg.tensor(a), 3.0).numpy(), want)


def test_remainder_gradients_match_torch():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(7) * 5, rng.standard_normal(7)
    grads = []
    for mod in (torch, tg):
        x, y = mod.tensor(a, requires_grad=True), mod.tensor(b, requires_grad=True)
        (mod.remainder(x, y) * mod.tensor(np.arange(7.0))).sum().backward()
        grads.append((x.grad.numpy(), y.grad.numpy()))
    np.testing.assert_array_equal(grads[1][0], grads[0][0])
    np.testing.assert_array_equal(grads[1][1], grads[0][1])


def test_integer_division_by_zero_in_an_empty_result_does_not_raise():
    # before: ZeroDivisionError, though no element divides (torch gives an empty tensor)
    for mod in (torch, tg):
        out = mod.tensor(np.zeros((2, 0), np.int32)) // mod.tensor([[False], [False]])
        assert tuple(out.shape) == (2, 0) and "int32" in str(out.dtype)


@pytest.mark.parametrize("x, y", [(2.5, 1), (2, 1), (True, False), (np.inf, 1)])
def test_where_of_two_python_scalars_takes_torchs_dtype(x, y):
    # before: NumPy's rule, float64 for where(cond, 2.5, 1) (torch: float32)
    cond = [True, False]
    want = torch.where(torch.tensor(cond), x, y)
    got = tg.where(tg.tensor(cond), x, y)
    assert str(got.dtype).split(".")[1] == str(want.dtype).split(".")[1]
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    compiled = tg.compile(lambda c: tg.where(c, x, y))(tg.tensor(cond))
    assert compiled.dtype == got.dtype


def test_bool_powers_and_squares_take_torchs_dtype():
    # before: bool ** True gave int8 eager (bool compiled), square(bool) gave bool
    b = [True, False]
    for exponent in (True, False):
        want = (torch.tensor(b) ** exponent).numpy()
        got = tg.tensor(b) ** exponent
        compiled = tg.compile(lambda t: t ** exponent)(tg.tensor(b))
        assert got.dtype == compiled.dtype == tg.bool
        np.testing.assert_array_equal(got.numpy(), want)
        np.testing.assert_array_equal(compiled.numpy(), want)
    with pytest.raises(NotImplementedError, match="pow"):
        tg.tensor(b) ** tg.tensor(b)
    got = tg.square(tg.tensor(b))
    assert got.dtype == tg.int64
    np.testing.assert_array_equal(got.numpy(), torch.square(torch.tensor(b)).numpy())


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "trunc"])
def test_rounding_a_bool_tensor_raises_as_torch(name):
    # before: round(bool) gave float16 eager and bool compiled; torch raises for all four
    with pytest.raises(NotImplementedError, match=name):
        getattr(torch, name)(torch.tensor([True]))
    with pytest.raises(NotImplementedError, match=name):
        getattr(tg, name)(tg.tensor([True]))


def test_cumsum_of_a_0d_tensor_is_0d():
    # before: shape (1,) eager, and the compiled kernel's extern call raised
    x = tg.tensor(0.63, requires_grad=True)
    for out in (tg.cumsum(x, 0), tg.compile(lambda t: tg.cumsum(t, -1))(x)):
        assert tuple(out.shape) == () and float(out) == pytest.approx(0.63)
    tg.cumsum(x, 0).backward()
    assert float(x.grad) == 1.0
    with pytest.raises(IndexError, match="cumsum"):
        tg.cumsum(x, 1)


def test_sign_of_nan_matches_torch():
    x = [np.nan, -1.0]
    np.testing.assert_array_equal(tg.sign(tg.tensor(x)).numpy(),
                                  torch.sign(torch.tensor(x)).numpy())


def test_integer_to_negative_integer_tensor_powers_match_torch():
    # before: NumPy's "Integers to negative integer powers are not allowed" (torch: 1 ** n
    # = 1, (-1) ** n by parity, else 0); a negative Python int exponent raises in both
    base = np.array([0, 1, -1, 2, -2, 3, 7, 1, -1, 5])
    exponent = np.array([-1, -2, -3, -1, -1, 2, 0, -5, -4, 3])
    want = (torch.tensor(base) ** torch.tensor(exponent)).numpy()
    got = tg.tensor(base) ** tg.tensor(exponent)
    assert got.dtype == tg.int64
    np.testing.assert_array_equal(got.numpy(), want)
    with pytest.raises(RuntimeError, match="negative integer powers"):
        tg.tensor(base) ** -1
    for dtype in (np.int32, np.int64):   # the dtype holds, 0-d too
        b = np.array(-2, dtype)
        got = tg.tensor(b) ** tg.tensor(b)
        assert got.dtype == tg.tensor(b).dtype and int(got) == 0


def test_sign_of_a_bool_tensor_is_itself():
    # before: NumPy's sign has no bool loop and raised
    got = tg.sign(tg.tensor([True, False]))
    assert got.dtype == tg.bool
    np.testing.assert_array_equal(got.numpy(), torch.sign(torch.tensor([True, False])).numpy())


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(0,), (2, 0), (0, 3)])
def test_softmax_over_an_empty_tensor_is_empty(name, shape):
    # before: amax over the empty dimension raised ShapeError
    want = getattr(torch, name)(torch.zeros(shape), -1)
    got = getattr(tg, name)(tg.zeros(shape), -1)
    assert tuple(got.shape) == tuple(want.shape) and got.dtype == tg.float32


BOOL_REJECTED = {   # name: (program, what tracegrad's error names)
    "sub": (lambda m, b: b - 1, "Subtraction"), "rsub": (lambda m, b: 1 - b, "Subtraction"),
    "sub bools": (lambda m, b: b - b, "Subtraction"),
    "sub True": (lambda m, b: b.float() - True, "Subtraction"),
    "rsub True": (lambda m, b: True - b.long(), "Subtraction"), "relu": (lambda m, b: m.relu(b), "relu"),
    "abs": (lambda m, b: m.abs(b), "abs"), "argmax": (lambda m, b: b.argmax(), "argmax"),
    "argmin": (lambda m, b: m.argmin(b, 0), "argmin"),
}


@pytest.mark.parametrize("name", sorted(BOOL_REJECTED))
def test_ops_torch_rejects_for_bool_raise(name):
    # before: each computed a value where PyTorch raises
    fn, message = BOOL_REJECTED[name]
    with pytest.raises(RuntimeError):
        fn(torch, torch.tensor([True, False]))
    with pytest.raises(RuntimeError, match=message):
        fn(tg, tg.tensor([True, False]))


SIGNED_ZERO_CONSTANTS = {
    "x * 0.0, x / -0.0": lambda x: (x * 0.0, x / -0.0),
    "where(x > 0, x, -0.0)": lambda x: tg.where(x > 0, x, -0.0),
    "where(x > 0, 0.0, -0.0)": lambda x: tg.where(x > 0, 0.0, -0.0),
    "x // inf": lambda x: x // float("inf"),
}


@pytest.mark.parametrize("name", sorted(SIGNED_ZERO_CONSTANTS))
def test_compiled_keeps_minus_zero_constants_apart_from_zero(name):
    # before: the trace's constants and the kernel builder's keyed 0.0 and -0.0 as one
    # (0.0 == -0.0), so x / -0.0 after x * 0.0 gave -inf for a positive x, and
    # where(x > 0, x, -0.0) gave +0.0 (x > 0 had made the constant 0.0 first)
    fn = SIGNED_ZERO_CONSTANTS[name]
    x = tg.tensor(np.array([-3.72, 2.0, -0.0, 0.0], np.float32))
    want, got = fn(x), tg.compile(fn)(x)
    for g, w in zip(got if isinstance(got, tuple) else (got,),
                    want if isinstance(want, tuple) else (want,)):
        _same_bits(g.numpy(), w.numpy(), name)


def test_compiled_fmod_by_a_reduced_divisor_matches_eager():
    # before: -1e38 % (-1e38).sum() gave -1e38 compiled (-0.0 eager): the kernel divides by
    # a row-invariant value as a * (1 / b) (NOTE (row reciprocal)), a / b came out
    # 0.99999.., and the quotient's undershoot was not stepped back
    y = tg.tensor(np.array([-1e38, 3e37, 7.5]))
    for fn in (lambda y: y % y[:1].sum(), lambda y: tg.fmod(y, y[:1].sum())):
        _same_bits(tg.compile(fn)(y).numpy(), fn(y).numpy(), "fmod by a sum")
