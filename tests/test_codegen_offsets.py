"""Hoisted buffer offsets (NOTE (hoisted offsets) in codegen.offsets): the kernel an
unrolled loop makes at every step lowers to one text, the slice it reads or writes moves
into ``BufferArg.offset``, and every executor (interpreter, LLVM program) applies it."""
import numpy as np
import pytest

import tracegrad
from tracegrad.codegen.ops import Op
from tracegrad.codegen.interp import run_kernel
from tracegrad.codegen.loop_ir import INDEX, BufferArg, KernelBuilder
from tracegrad.codegen.offsets import hoist_offsets
from tracegrad.codegen.schedule import plan
from tracegrad.runtime.cpu_program import CompiledProgram, _canonical

from codegen_testing import Builder, eval_graph, extern_eval, run_interp

B, T, F = 3, 5, 8


def _body(loop_ir: str) -> str:
    return loop_ir.split("\n", 1)[1]


def _slice_program(t: int):
    b = Builder()
    x, w = b.input((B, T, F)), b.input((F,))
    xt = b.slice(x, index=(slice(None), slice(t, t + 1), slice(None)))
    y = b.tanh(b.mul(b.reshape(xt, shape=(B, F)), w))
    return b.graph(y), [np.random.default_rng(t).standard_normal(s).astype(np.float32)
                        for s in ((B, T, F), (F,))]


def test_two_slices_lower_to_one_kernel_with_their_offsets():
    kernels, programs = [], []
    for t in (1, 3):
        g, inputs = _slice_program(t)
        p = plan(g)
        (k,) = p.kernels
        kernels.append(k)
        programs.append((g, p, inputs))
        bound = dict(zip(k.buffers, k.kernel.buffers))
        assert bound["in0"].offset == t * F and bound["in1"].offset == 0
        assert bound["in0"].size == B * T * F  # the whole buffer is bound
    assert _body(kernels[0].loop_ir) == _body(kernels[1].loop_ir)
    assert _canonical(kernels[0])[0] == _canonical(kernels[1])[0]
    for g, p, inputs in programs:
        want = eval_graph(g, inputs)[0]
        np.testing.assert_allclose(run_interp(p, inputs)[0].reshape(want.shape), want, rtol=1e-6)
        np.testing.assert_allclose(CompiledProgram(p, extern_eval)(inputs)[0], want, rtol=1e-6)
        assert f"in0+{p.kernels[0].kernel.buffers[0].offset}" in str(p)


def test_hoisted_store_offset_in_the_interpreter_and_the_program():
    """A kernel writing a slice: pad makes the consumer read at a constant offset."""
    b = Builder()
    x = b.input((4, 6))
    y = b.exp(b.slice(x, index=(slice(2, 4), slice(1, 5))))
    g = b.graph(y)
    p = plan(g)
    x0 = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    (k,) = p.kernels
    assert k.kernel.buffers[0].offset == 2 * 6 + 1
    np.testing.assert_allclose(run_interp(p, [x0])[0].reshape(2, 4), np.exp(x0[2:4, 1:5]),
                               rtol=1e-6)
    np.testing.assert_allclose(CompiledProgram(p, extern_eval)([x0])[0], np.exp(x0[2:4, 1:5]),
                               rtol=1e-6)


def test_hand_built_kernel_loads_and_stores_at_offsets():
    k = KernelBuilder("k", outer=4)
    o = k.var_outer
    four = k.const(4, INDEX)
    src = k.emit(Op.ADD, (k.emit(Op.MUL, (o, k.const(2, INDEX)), INDEX), k.const(5, INDEX)), INDEX)
    val = k.emit(Op.NEG, (k.emit(Op.LOAD, ("buf0", src), np.float64),), np.float64)
    k.store("buf1", k.emit(Op.ADD, (o, four), INDEX), val)
    kernel = hoist_offsets(k.finish([BufferArg("buf0", np.dtype("float64"), 16, False),
                                     BufferArg("buf1", np.dtype("float64"), 8, True)]))
    assert [a.offset for a in kernel.buffers] == [5, 4]
    assert "CONST(5)" not in str(kernel) and "CONST(4)" not in str(kernel)
    x, out = np.arange(16, dtype=np.float64), np.zeros(8)
    run_kernel(kernel, {"buf0": x, "buf1": out})
    np.testing.assert_array_equal(out, np.r_[np.zeros(4), -x[5:13:2]])


@pytest.mark.parametrize("index", [(slice(None), slice(None, None, -1)),     # flip: j -> 5 - j
                                   (slice(1, 3), slice(4, 0, -2)),
                                   (slice(None, None, -1), slice(2, 3))])
def test_negative_steps_stay_inside_the_buffer(index):
    b = Builder()
    x = b.input((4, 6))
    g = b.graph(b.sin(b.slice(x, index=index)))
    p = plan(g)
    x0 = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    want = np.sin(x0[index])
    got = run_interp(p, [x0])[0].reshape(want.shape)  # a negative index would wrap here
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(CompiledProgram(p, extern_eval)([x0])[0], want, rtol=1e-6)


def test_masked_view_is_left_alone():
    """A padded read's index is WHERE(valid, i, 0): its smallest value is 0, nothing hoists."""
    b = Builder()
    x = b.input((4, 6))
    g = b.graph(b.exp(b.pad(b.slice(x, index=(slice(2, 4), slice(None))),
                            pads=((1, 1), (0, 0)), value=0.5)))
    p = plan(g)
    assert all(a.offset == 0 for a in p.kernels[0].kernel.buffers)
    x0 = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)
    want = eval_graph(g, [x0])[0]
    np.testing.assert_allclose(CompiledProgram(p, extern_eval)([x0])[0], want, rtol=1e-6)


def _rnn_graph(steps: int):
    """h = tanh(x[:, t] + h @ U) over ``steps``: the matmuls are extern, so each step's
    elementwise part is its own kernel reading x at offset t*F."""
    b = Builder()
    x, u, h = b.input((B, steps, F)), b.input((F, F)), b.input((B, F))
    outs = []
    for t in range(steps):
        xt = b.reshape(b.slice(x, index=(slice(None), slice(t, t + 1), slice(None))),
                       shape=(B, F))
        h = b.tanh(b.add(xt, b.matmul(h, u)))
        outs.append(h)
    return b.graph(*outs)


def test_unrolled_steps_share_one_kernel_source_and_run_right():
    g = _rnn_graph(T)
    p = plan(g)
    assert len(p.kernels) == T
    assert len({_canonical(k)[0] for k in p.kernels}) == 1
    assert sorted(k.kernel.buffers[k.buffers.index("in0")].offset for k in p.kernels) == \
        [t * F for t in range(T)]
    rng = np.random.default_rng(3)
    program = CompiledProgram(p, extern_eval)
    for _ in range(2):  # fresh input arrays: the offset follows the new address
        inputs = [rng.standard_normal(s).astype(np.float32) for s in ((B, T, F), (F, F), (B, F))]
        want = eval_graph(g, inputs)
        for got, ref in zip(program(inputs), want):
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
        for got, ref in zip(run_interp(p, inputs), want):
            np.testing.assert_allclose(got.reshape(ref.shape), ref, rtol=1e-5, atol=1e-6)


def _rnn_distinct_sources(steps: int):
    tracegrad.manual_seed(0)
    cell = tracegrad.nn.LSTMCell(F, 6)

    def loss(x):
        h = c = tracegrad.zeros(B, 6)
        for t in range(steps):
            h, c = cell(x[:, t], (h, c))
        return h.pow(2).mean()
    x = tracegrad.from_numpy(np.random.default_rng(4).standard_normal((B, steps, F))
                             .astype(np.float32)).requires_grad_()
    compiled = tracegrad.compile(loss)
    report = compiled.explain(x)
    eager_x = tracegrad.from_numpy(x.detach().numpy().copy()).requires_grad_()
    loss(eager_x).backward()
    compiled(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), eager_x.grad.numpy(), rtol=1e-4, atol=1e-6)
    return len(report.kernels), len({k.source.replace(f'@"{k.name}"', "@K")
                                     for k in report.kernels})


def test_compiled_unrolled_loop_has_few_distinct_kernel_sources():
    n4, distinct4 = _rnn_distinct_sources(4)
    n8, distinct8 = _rnn_distinct_sources(8)
    assert n8 > n4
    assert distinct8 == distinct4           # more steps add no new kernels to compile
    assert distinct8 * 3 <= n8, (n8, distinct8)
