"""A symbolic int argument used with a tensor gives eager's bits (NOTE (int arguments) in
tracegrad/compiler/int_args.py; NOTE (row reciprocal) in codegen/lower.py): the
compiled program is compared with eager bit for bit, dtype included, at every value."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch

# ints near float32's and float64's rounding edges: 2**24 + 1 rounds in float32;
# 2**60 + 2**36 + 1 rounds differently through float64 than straight to float32
INTS = [3, 7, 11, -9, 2**24 + 1, 2**25 + 3, 123456789, 2**53 + 1, 2**60 + 2**36 + 1]
EXPRESSIONS = {
    "x / i": lambda x, i: x / i,
    "i / x": lambda x, i: i / x,
    "x // i": lambda x, i: x // i,
    "x % i": lambda x, i: x % i,
    "i * 0.1 * x": lambda x, i: i * 0.1 * x,
    "float(i) / 3 * x": lambda x, i: float(i) / 3 * x,
    "x * (i / 3)": lambda x, i: x * (i / 3),
    "x / (i + 1)": lambda x, i: x / (i + 1),
    "x * i / 7": lambda x, i: x * i / 7,
    "x * i - i": lambda x, i: x * i - i,
}


def _same_bits(got, want):
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(np.ascontiguousarray(got).view(np.uint8),
                                  np.ascontiguousarray(want).view(np.uint8))


@pytest.mark.filterwarnings("ignore:compile.*signatures")  # (x // i: a program per value)
@pytest.mark.parametrize("name", list(EXPRESSIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_symbolic_int_with_a_float_tensor_is_eagers_bits(name, dtype):
    fn = EXPRESSIONS[name]
    x = torch.tensor((np.random.default_rng(0).standard_normal(300) * 10).astype(dtype))
    compiled = torch.compile(fn, dynamic=True)
    for i in INTS:
        _same_bits(compiled(x, i).numpy(), fn(x, i).numpy())


def test_division_by_an_int_in_a_two_loop_kernel():
    """A transposed argument makes a kernel with an inner loop: the int's value was
    hoisted as a reciprocal there and multiplied in, 1 ulp off eager's division."""
    x = torch.tensor(np.random.default_rng(1).standard_normal((40, 30)).astype(np.float32)).t()
    compiled = torch.compile(lambda x, i: x / i + x / 7.0, dynamic=True)
    for i in (3, 7, 11, 13):
        _same_bits(compiled(x, i).numpy(), (x / i + x / 7.0).numpy())


def test_an_int_past_an_int32_tensors_range_wraps_as_eagerly():
    # eager casts the int into int32 with wraparound, as PyTorch does (it raised before
    # test_probe_core_dtypes' fix); the compiled call traces again on the value and agrees
    x = torch.tensor(np.arange(4, dtype=np.int32))
    compiled = torch.compile(lambda x, i: x * i, dynamic=True)
    np.testing.assert_array_equal(compiled(x, 5).numpy(), (x * 5).numpy())
    wrapped = np.arange(4, dtype=np.int32) * np.int64(2**31 + 7).astype(np.int32)
    np.testing.assert_array_equal((x * (2**31 + 7)).numpy(), wrapped)
    np.testing.assert_array_equal(compiled(x, 2**31 + 7).numpy(), wrapped)
    np.testing.assert_array_equal(compiled(x, -3).numpy(), (x * -3).numpy())


def test_power_by_a_symbolic_int():
    x = torch.tensor((np.random.default_rng(2).standard_normal(300) * 10).astype(np.float32))
    compiled = torch.compile(lambda x, i: x ** i, dynamic=True)
    for i in (3, 5, 7):
        _same_bits(compiled(x, i).numpy(), (x ** i).numpy())
