"""Kernels around a convolution's matmul: elementwise ops run in the matmul's memory
order (NOTE (sink permutes), codegen/sink_permutes.py) and cheap values are recomputed
by each kernel that reads them (NOTE (recompute cheap values), codegen/recompute.py).
Values against NumPy on hand-built graphs (loop-IR interpreter and LLVM) and against
eager for CNN steps; kernel counts and index math show what each rewrite removed."""
import numpy as np
import pytest
from codegen_testing import Builder, eval_graph, extern_eval, run_interp

import tracegrad
from tracegrad.codegen.ops import Op
from tracegrad.codegen.schedule import plan
from tracegrad.codegen.sink_permutes import sink_permutes
from tracegrad.runtime.cpu_program import CompiledProgram

rng = np.random.default_rng(0)


def _check(graph, inputs):
    want = eval_graph(graph, inputs)
    program = plan(graph)
    for got in (run_interp(program, inputs),
                CompiledProgram(program, extern_eval)([x.copy() for x in inputs])):
        for g, w in zip(got, want):
            # atol scales with the values: a matmul of values ~100 that cancels to 0.3
            # rounds differently by a few 1e-6 (seen when the module's rng started
            # elsewhere, under a -k selection)
            scale = max(1.0, float(np.abs(w).max())) if w.size else 1.0
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6 * scale)
    return program


def _conv_like(b, with_backward=True):
    """mm (N*H*W, C) + bias, viewed as NCHW, through a ReLU; the backward where reads the
    mask; both permuted back to (N*H*W, C) for a matmul."""
    cols, w, bias = b.input((32, 9)), b.input((9, 4)), b.input((4,))
    g_in = b.input((2, 4, 4, 4))
    mm = b.matmul(cols, w)
    a = b.add(mm, bias)
    nchw = b.permute(b.reshape(a, shape=(2, 4, 4, 4)), perm=(0, 3, 1, 2))
    zero = b.const(0.0)
    mask = b.cmple(nchw, zero)
    relu = b.where(mask, zero, nchw)
    outs = [b.matmul(b.reshape(b.permute(relu, perm=(0, 2, 3, 1)), shape=(32, 4)),
                     b.input((4, 3)))]
    if with_backward:
        gb = b.where(mask, zero, g_in)
        flat = b.reshape(b.permute(gb, perm=(0, 2, 3, 1)), shape=(32, 4))
        outs.append(b.matmul(b.permute(flat, perm=(1, 0)), b.input((32, 5))))
    return outs


def _inputs(graph):
    return [rng.standard_normal(graph.node(i).shape).astype(np.float32) for i in graph.inputs]


def test_relu_of_a_permuted_matmul_is_one_contiguous_kernel():
    b = Builder()
    graph = b.graph(*_conv_like(b))
    program = _check(graph, _inputs(graph))
    # forward ReLU (bias, mask and where) and backward where: one kernel each; no kernel
    # materialises the bias add or the mask, none copies a permuted value
    assert len(program.kernels) == 2, [k.ops for k in program.kernels]
    # the forward one reads mm and bias and writes the ReLU as they lie (no index math);
    # the backward one reads the NCHW gradient input transposed, the mask's inputs not
    (forward,) = [k for k in program.kernels if len(k.kernel.buffers) == 3]
    assert "IDIV" not in forward.loop_ir and "MOD" not in forward.loop_ir, forward.loop_ir


def test_sink_permutes_moves_an_elementwise_op_below_the_permute_of_its_operand():
    b = Builder()
    x = b.input((3, 4, 5))
    y = b.exp(b.permute(x, perm=(2, 0, 1)))
    out = b.sum(b.permute(y, perm=(1, 2, 0)), axes=(2,))
    graph = b.graph(out)
    sunk = sink_permutes(graph)
    exp = next(n for n in sunk.nodes if n.op is Op.EXP)
    assert exp.shape == (3, 4, 5) and sunk.node(exp.inputs[0]).op is Op.INPUT
    _check(graph, _inputs(graph))


@pytest.mark.parametrize("case", ["output", "contiguous operand", "broadcast operand",
                                  "extern consumer"])
def test_sink_permutes_leaves_a_node_when_it_would_add_permutes(case):
    b = Builder()
    x = b.input((4, 6))
    xt = b.permute(x, perm=(1, 0))
    if case == "output":
        graph = b.graph(b.exp(xt))
    elif case == "contiguous operand":
        graph = b.graph(b.matmul(b.add(xt, b.input((6, 4))), b.input((4, 2))))
    elif case == "broadcast operand":
        graph = b.graph(b.sum(b.add(xt, b.input((1, 4))), axes=(0,)))
    else:
        graph = b.graph(b.matmul(b.exp(xt), b.input((4, 2))))
    assert sink_permutes(graph) is graph
    _check(graph, _inputs(graph))


def test_recompute_skips_costly_values_and_values_of_two_big_inputs():
    b = Builder()
    x, y = b.input((64, 16)), b.input((64, 16))
    e = b.exp(x)                       # costly: materialised once
    s = b.add(x, y)                    # two big inputs: materialised once
    graph = b.graph(b.matmul(b.mul(e, s), b.input((16, 3))),
                    b.sum(b.sub(e, s), axes=(1,)))
    program = _check(graph, _inputs(graph))
    ops = [k.ops for k in program.kernels]
    assert sum(o.count("EXP") for o in ops) == 1 and sum(o.count("ADD") for o in ops) == 1


def _cnn_step_program(batch=8):
    from compile_step_testing import make_cnn, make_step
    model = make_cnn()
    opt = tracegrad.optim.SGD(model.parameters(), lr=0.1)
    x = tracegrad.from_numpy(rng.standard_normal((batch, 1, 8, 8)).astype(np.float32))
    y = tracegrad.from_numpy(rng.integers(0, 10, batch))
    eager_model = make_cnn()
    eager_opt = tracegrad.optim.SGD(eager_model.parameters(), lr=0.1)
    eager = make_step(eager_model, eager_opt)
    step = tracegrad.compile(make_step(model, opt), fullgraph=True)
    for _ in range(3):
        np.testing.assert_allclose(step(x, y).item(), eager(x, y).item(), rtol=1e-5)
    for p, q in zip(model.parameters(), eager_model.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5,
                                   atol=1e-6)
    return next(iter(step._cache.values())).forward.program


def test_cnn_step_relus_are_single_kernels_without_layout_copies():
    program = _cnn_step_program()
    relus = [k for k in program.kernels if "CMPLE" in k.ops]
    # conv1's forward ReLU, conv2's (written straight into the flattened layout the
    # linear layer reads), and the two backward wheres that recompute the masks
    assert len(relus) == 4, [k.ops for k in program.kernels]
    assert not any(k.ops == ["CMPLE"] for k in program.kernels)
    # no kernel only permutes an activation or its gradient between NCHW and (N*H*W, C)
    n_act = 8 * 4 * 8 * 8
    assert not [k for k in program.kernels if set(k.ops) <= {"RESHAPE", "PERMUTE"}
                and any(a.size == n_act and a.is_output for a in k.kernel.buffers)]
