"""The per-call path of a compiled function (compiler/function.py, entry.py,
python_guards.py, runtime/cpu_program.py): the shortcuts it takes must keep every answer
and every retrace of the plain path."""
import numpy as np

import tracegrad
from tracegrad.compiler.function import _dtype_str


def test_dtype_text_of_the_signature_keeps_byte_order_and_kind():
    for text in ("<f4", ">f4", "<f8", "|b1", "<i8", ">i4", "<c8", "<M8[ns]", "<M8[us]"):
        assert _dtype_str(np.dtype(text)) == np.dtype(text).str
    assert _dtype_str(np.dtype(">f4")) != _dtype_str(np.dtype("<f4"))


def test_a_new_dtype_or_shape_of_an_argument_retraces():
    f = tracegrad.compile(lambda a, b: a * b + 1)
    a32 = tracegrad.from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3))
    a64 = tracegrad.from_numpy(np.arange(6, dtype=np.float64).reshape(2, 3))
    b = tracegrad.from_numpy(np.full((2, 3), 2, np.float32))
    for a in (a32, a64, a32, a32.reshape(3, 2).t()):
        got = f(a, b)
        np.testing.assert_array_equal(got.numpy(), a.numpy() * b.numpy() + 1)
        assert got.dtype == (a * b).dtype
    assert f.misses >= 2


SCALE_TENSOR = tracegrad.ones(3)


def test_a_rebound_global_or_closure_tensor_is_read_anew():
    global SCALE_TENSOR
    shift = tracegrad.zeros(3)

    @tracegrad.compile
    def f(x):
        return x * SCALE_TENSOR + shift

    x = tracegrad.from_numpy(np.arange(3, dtype=np.float32))
    np.testing.assert_array_equal(f(x).numpy(), x.numpy())
    old = SCALE_TENSOR
    try:
        SCALE_TENSOR = tracegrad.full((3,), 2.0)
        np.testing.assert_array_equal(f(x).numpy(), x.numpy() * 2)
        shift = tracegrad.full((3,), 5.0)   # noqa: F841 - read by f through its closure
        np.testing.assert_array_equal(f(x).numpy(), x.numpy() * 2 + 5)
    finally:
        SCALE_TENSOR = old


def test_returned_structures_keep_their_shape_and_constants():
    x = tracegrad.from_numpy(np.arange(4, dtype=np.float32))
    cases = {
        "alone": (lambda a: a * 2, lambda got: got),
        "list of one": (lambda a: [a * 2], lambda got: got[0]),
        "tuple with a constant": (lambda a: (a * 2, 3), lambda got: got[0]),
        "dict": (lambda a: {"y": a * 2, "n": None}, lambda got: got["y"]),
    }
    for name, (fn, pick) in cases.items():
        f = tracegrad.compile(fn)
        for _ in range(2):
            got, want = f(x), fn(x)
            assert type(got) is type(want), name
            np.testing.assert_array_equal(pick(got).numpy(), x.numpy() * 2)
            if isinstance(want, tuple):
                assert got[1] == 3
            if isinstance(want, dict):
                assert list(got) == ["y", "n"] and got["n"] is None
