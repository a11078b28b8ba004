"""GATHER and SCATTER_ADD computed inside the generated driver (runtime.native_index):
equal to eager, bit for bit where eager's order is fixed, eager's IndexError for a bad
index, and NumPy's path for the layouts the native loop does not take."""
import warnings

import numpy as np
import pytest

import tracegrad
import tracegrad.nn as nn
from tracegrad.runtime.cpu_program import _DriverCall, _ExternCall
from compile_step_testing import make_step

rng = np.random.default_rng(0)


def _program(fn):
    (entry,) = fn._cache.values()
    return entry.forward


def _extern_ops(program):
    return [c.step.node.op.name for c in program._calls if isinstance(c, _ExternCall)]


def _index_calls(program):
    return [line for d in program.drivers for line in d.splitlines()
            if line.startswith("define internal i64 @tg_index")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index_dtype", [np.int64, np.int32])
@pytest.mark.parametrize("shape, dim, index_shape", [
    ((8, 10), 1, (8, 1)),      # cross-entropy's gather
    ((8, 10), 1, (8, 4)),
    ((6, 5), 0, (3, 5)),
    ((3, 4, 5), 1, (3, 7, 5)),  # an index longer than the data along dim
    ((3, 4, 5), -1, (3, 4, 2)),
])
def test_gather_and_scatter_add_equal_eager_bit_for_bit(dtype, index_dtype, shape, dim,
                                                        index_shape):
    size = shape[dim]
    x = tracegrad.from_numpy(rng.standard_normal(shape).astype(dtype))
    # negative indices count from the end, as eager mode's gather allows; repeats
    # make the scatter-add order matter
    idx = tracegrad.from_numpy(rng.integers(-size, size, index_shape).astype(index_dtype))
    src = tracegrad.from_numpy(rng.standard_normal(index_shape).astype(dtype))

    def fn(x, idx, src):
        g = tracegrad.gather(x, dim, idx)
        s = tracegrad.scatter_add(x * 2, dim, idx, src)
        return g * 3, s + 1

    compiled = tracegrad.compile(fn, fullgraph=True)
    for got, want in zip(compiled(x, idx, src), fn(x, idx, src)):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    program = _program(compiled)
    assert _extern_ops(program) == [] and len(_index_calls(program)) == 2
    assert [type(c) for c in program._calls] == [_DriverCall]


@pytest.mark.parametrize("view", ["expand", "transpose", "slice"])
def test_gather_reads_a_strided_or_broadcast_view_natively(view):
    w = tracegrad.from_numpy(rng.standard_normal(10).astype(np.float32))
    x = tracegrad.from_numpy(rng.standard_normal((12, 10)).astype(np.float32))
    idx = tracegrad.from_numpy(rng.integers(-10, 10, (8, 3)))

    def fn(w, x, idx):
        data = {"expand": lambda: w.expand(8, 10),   # cross-entropy's class weights
                "transpose": lambda: x.t()[:8],
                "slice": lambda: x[2:10, ::1]}[view]()
        return tracegrad.gather(data, 1, idx) * 2

    compiled = tracegrad.compile(fn)
    np.testing.assert_array_equal(compiled(w, x, idx).numpy(), fn(w, x, idx).numpy())
    assert _extern_ops(_program(compiled)) == []


def test_a_bad_index_raises_eagers_error_and_the_next_call_runs():
    x = tracegrad.from_numpy(rng.standard_normal((4, 5)).astype(np.float32))
    good = tracegrad.from_numpy(np.array([[0], [4], [-5], [2]]))
    compiled = tracegrad.compile(lambda x, i: tracegrad.gather(x.exp(), 1, i) * 2)
    want = compiled(x, good).numpy()
    for bad in (5, -6, 1 << 40):
        idx = tracegrad.from_numpy(np.array([[0], [1], [bad], [2]]))
        with pytest.raises(IndexError) as eager_error:
            tracegrad.gather(x.exp(), 1, idx)
        with pytest.raises(IndexError) as compiled_error:
            compiled(x, idx)
        assert str(compiled_error.value) == str(eager_error.value)
    np.testing.assert_array_equal(compiled(x, good).numpy(), want)
    assert _extern_ops(_program(compiled)) == []


def test_a_bad_scatter_index_raises_eagers_error():
    base = tracegrad.zeros(3, 4)
    src = tracegrad.ones(3, 2)
    idx = tracegrad.from_numpy(np.array([[0, 1], [2, 9], [3, 3]]))
    compiled = tracegrad.compile(lambda b, i, s: tracegrad.scatter_add(b + 1, 1, i, s))
    with pytest.raises(IndexError, match="scatter_add: index 9 is out of bounds"):
        compiled(base, idx, src)


def test_layouts_the_loop_does_not_take_stay_numpy_calls():
    x = tracegrad.from_numpy(rng.standard_normal((6, 5)).astype(np.float32))
    idx = tracegrad.from_numpy(rng.integers(0, 5, (3, 2)))   # narrower than x outside dim

    def fn(x, idx):
        return tracegrad.gather(x.t() * 1.5, 1, idx), tracegrad.gather(x, 1, idx)

    compiled = tracegrad.compile(fn)
    for got, want in zip(compiled(x, idx), fn(x, idx)):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert _extern_ops(_program(compiled)) == ["GATHER", "GATHER"]


def test_a_gathered_result_that_is_returned_is_a_fresh_array_each_call():
    x = tracegrad.from_numpy(rng.standard_normal((4, 5)).astype(np.float32))
    idx = tracegrad.from_numpy(rng.integers(0, 5, (4, 1)))
    compiled = tracegrad.compile(lambda x, i: tracegrad.gather(x, 1, i))
    first = compiled(x, idx).numpy().copy()
    kept = compiled(x, idx)
    compiled(x * 2, idx)
    np.testing.assert_array_equal(kept.numpy(), first)


def test_cross_entropy_training_step_is_one_native_call_and_trains_as_eager():
    def run(compile_it):
        tracegrad.manual_seed(0)
        model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 5))
        opt = tracegrad.optim.SGD(model.parameters(), lr=0.1)
        step = make_step(model, opt)
        fn = tracegrad.compile(step, fullgraph=True) if compile_it else step
        data = np.random.default_rng(1)
        for _ in range(20):
            fn(tracegrad.from_numpy(data.standard_normal((8, 12)).astype(np.float32)),
               tracegrad.from_numpy(data.integers(0, 5, 8)))
        return fn, [p.detach().numpy() for p in model.parameters()]

    compiled, got = run(True)
    _, want = run(False)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    program = _program(compiled)
    assert [type(c) for c in program._calls] == [_DriverCall]
    assert len(_index_calls(program)) >= 1   # the class-weight gather, native



def test_two_scatter_adds_in_one_driver_compile():
    """Each scatter_add's loop declared llvm.memcpy, and a driver with two was refused by
    LLVM's parser ('invalid redefinition'): the program ran eagerly with a warning (found
    through scatter_reduce(..., 'mean', include_self=False), whose backward has two)."""
    index = tracegrad.tensor([[1, 0, 1]])

    def f(a, b):
        out = a.scatter_reduce(0, index, b[:1], "mean", include_self=False)
        return (out * out).sum()

    a0, b0 = (rng.standard_normal((4, 3)).astype(np.float32) for _ in range(2))
    grads = []
    for fn in (f, tracegrad.compile(f)):
        a, b = (tracegrad.tensor(v, requires_grad=True) for v in (a0, b0))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fn(a, b).backward()
        grads.append((a.grad.numpy(), b.grad.numpy()))
    for got, want in zip(grads[1], grads[0]):
        np.testing.assert_array_equal(got, want)
