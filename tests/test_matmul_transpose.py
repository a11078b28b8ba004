"""codegen/matmul_transpose.py: a MATMUL read only through its transpose computes the
transpose itself (b.T @ a.T), so no copy kernel transposes it; values as before."""
import re

import numpy as np
import pytest

import tracegrad
import tracegrad.nn as nn
from tracegrad.codegen.ops import Op
from tracegrad.codegen.schedule import ExternStep, plan
from tracegrad.runtime.cpu_program import CompiledProgram
from codegen_testing import Builder, eval_graph, extern_eval
from compile_step_testing import make_step

rng = np.random.default_rng(0)


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def _matmul_shapes(program):
    return [s.node.shape for s in program.steps
            if isinstance(s, ExternStep) and s.node.op is Op.MATMUL]


def _run(graph, inputs):
    p = plan(graph)
    got = CompiledProgram(p, extern_eval)(inputs)
    for a, want in zip(got, eval_graph(graph, inputs)):
        np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-5)
    return p


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("transposed_operand", [False, True])
def test_a_matmul_read_through_its_transpose_computes_the_transpose(dtype, transposed_operand):
    b = Builder()
    x, g = b.input((16, 12), dtype), b.input((16, 9), dtype)
    a = b.permute(x, perm=(1, 0)) if transposed_operand else b.input((12, 16), dtype)
    m = b.matmul(a, g) if transposed_operand else b.matmul(a, b.input((16, 9), dtype))
    t = b.permute(m, perm=(1, 0))
    graph = b.graph(b.exp(t), b.mul(t, b.const(2.0, dtype)))
    np_dtype = np.dtype(dtype)
    inputs = [randn(*b.g.node(i).shape).astype(np_dtype) for i in b.g.inputs]
    p = _run(graph, inputs)
    assert _matmul_shapes(p) == [(9, 12)]
    # one kernel per result, reading the matmul as it is: no copy kernel transposes it
    assert [k.name.split("_", 1)[1] for k in p.kernels] == ["exp", "mul"]


def test_a_matmul_also_read_as_it_is_stays():
    b = Builder()
    x, w = b.input((6, 4)), b.input((4, 5))
    m = b.matmul(x, w)
    graph = b.graph(b.exp(b.permute(m, perm=(1, 0))), b.neg(m))
    p = _run(graph, [randn(6, 4), randn(4, 5)])
    assert _matmul_shapes(p) == [(6, 5)]


def test_a_matmul_that_is_a_result_stays():
    b = Builder()
    x, w = b.input((6, 4)), b.input((4, 5))
    m = b.matmul(x, w)
    graph = b.graph(m, b.exp(b.permute(m, perm=(1, 0))))
    p = _run(graph, [randn(6, 4), randn(4, 5)])
    assert _matmul_shapes(p) == [(6, 5)]


def test_linear_weight_grads_need_no_transpose_kernel_and_train_as_eager():
    def run(compile_it):
        tracegrad.manual_seed(0)
        model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 4))
        opt = tracegrad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        step = make_step(model, opt)
        fn = tracegrad.compile(step, fullgraph=True) if compile_it else step
        data = np.random.default_rng(3)
        for _ in range(10):
            fn(tracegrad.from_numpy(data.standard_normal((16, 20)).astype(np.float32)),
               tracegrad.from_numpy(data.integers(0, 4, 16)))
        return fn, model

    compiled, got = run(True)
    _, want = run(False)
    for p, q in zip(got.parameters(), want.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-6)
    (entry,) = compiled._cache.values()
    shapes = _matmul_shapes(entry.forward_plan)
    assert (32, 20) in shapes and (4, 32) in shapes   # the weight grads, as the weights
    # copy kernels (no op in their name) remain for the bias grads only, never a weight's
    copied = [re.search(r"float32\[(\d+)\] out", k.loop_ir).group(1)
              for k in entry.forward_plan.kernels if k.name.endswith("_")]
    assert not {"640", "128"} & set(copied), copied


def test_docstring_example_runs():
    import doctest
    import importlib
    result = doctest.testmod(importlib.import_module("tracegrad.codegen.matmul_transpose"))
    assert result.attempted > 0 and result.failed == 0
