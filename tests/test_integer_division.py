"""Integer floor/trunc division, remainder and fmod in exact integer arithmetic, checked
against NumPy, and PyTorch's error for a zero divisor. Before: the quotient went through
float32 (16777217 // 1 gave 16777216, (2**40 + 3) % 3 gave -32765) and a zero divisor gave
INT64_MIN."""
import warnings

import numpy as np
import pytest

import tracegrad as tg

BIG = np.array([16777217, 7, -7, 2**40 + 3, -(2**53) - 1, 0, 2**62 + 5], dtype=np.int64)
DIVISORS = [1, 2, -3, 7, -(2**31)]


@pytest.mark.parametrize("d", DIVISORS)
def test_floor_divide_remainder_fmod_are_exact(d):
    a = tg.tensor(BIG)
    np.testing.assert_array_equal((a // d).numpy(), BIG // d)
    np.testing.assert_array_equal((a % d).numpy(), np.remainder(BIG, d))
    np.testing.assert_array_equal(tg.fmod(a, d).numpy(), np.fmod(BIG, d))
    trunc = tg.div(a, tg.tensor(np.full_like(BIG, d)), rounding_mode="trunc")
    toward_zero = [abs(v) // abs(d) * (1 if (v < 0) == (d < 0) else -1) for v in BIG.tolist()]
    np.testing.assert_array_equal(trunc.numpy(), toward_zero)
    assert (a // d).dtype == tg.int64


def test_dtype_and_scalar_sides_as_pytorch():
    x = tg.tensor([7, -7], dtype=tg.int32)
    assert (x // 2).dtype == tg.int32
    np.testing.assert_array_equal((x // 2).numpy(), [3, -4])
    np.testing.assert_array_equal((7 // tg.tensor([2, -2])).numpy(), [3, -4])
    assert (tg.tensor([7]) // 2.5).dtype == tg.float32   # a float operand: float division


@pytest.mark.parametrize("op", [lambda a, b: a // b, lambda a, b: a % b,
                                lambda a, b: tg.div(a, b, rounding_mode="trunc")])
def test_zero_divisor_raises_as_pytorch(op):
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        op(tg.tensor([7, 1]), tg.tensor([2, 0]))


def test_compiled_integer_division_runs_eagerly_and_matches():
    f = tg.compile(lambda a, b: a // b + a % b)
    a, b = tg.tensor(BIG), tg.tensor(np.full_like(BIG, -3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = f(a, b)
    np.testing.assert_array_equal(out.numpy(), BIG // -3 + np.remainder(BIG, -3))
    with pytest.raises(RuntimeError, match="ZeroDivisionError"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f(a, tg.zeros_like(b))


@pytest.mark.parametrize("name, op", [
    ("floor_divide", lambda a, b: a // b), ("remainder", lambda a, b: a % b),
    ("fmod", tg.fmod), ("div", lambda a, b: tg.div(a, b, rounding_mode="trunc"))])
def test_errors_name_the_op_the_user_called(name, op):
    """A zero divisor names the op and operands (was the bare word); float shapes that do
    not broadcast name % and // (they named fmod, the primitive they are built on)."""
    with pytest.raises(RuntimeError, match=f"ZeroDivisionError: {name} .*\\(2,\\) int64"):
        op(tg.tensor([7, 1]), tg.tensor([2, 0]))
    with pytest.raises(RuntimeError, match=f"^{name}: shapes \\(3,\\) and \\(4,\\)"):
        op(tg.ones(3), tg.ones(4))
