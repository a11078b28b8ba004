"""NOTE (length parameters): a sum over leading dims and a reordering copy load their
lengths from a ``lens`` buffer, so one kernel text serves every length; values against
NumPy, the kernel with its constants back equals the one planned without parameters."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.codegen import schedule
from tracegrad.codegen.graph import Graph
from tracegrad.codegen.interp import run_kernel
from tracegrad.codegen.ops import Op
from tracegrad.codegen.schedule import Storage, plan, without_lengths
from tracegrad.runtime.cpu_program import CompiledProgram


def _column_sum(rows: int, cols: int = 6) -> Graph:
    g = Graph()
    x = g.add(Op.INPUT, (), (rows, cols), "float32", index=0)
    g.outputs = [g.add(Op.SUM, (x.id,), (cols,), "float32", axes=(0,), keepdim=False).id]
    return g


def _time_major(batch: int, steps: int, feat: int = 5) -> Graph:
    """(B, T, F) -> (T, B, F) made contiguous, then scaled (the copy stays a kernel)."""
    g = Graph()
    x = g.add(Op.INPUT, (), (batch, steps, feat), "float32", index=0)
    p = g.add(Op.PERMUTE, (x.id,), (steps, batch, feat), "float32", perm=(1, 0, 2))
    r = g.add(Op.RESHAPE, (p.id,), (steps * batch, feat), "float32",
              shape=(steps * batch, feat))
    w = g.add(Op.INPUT, (), (feat, 3), "float32", index=1)
    g.outputs = [g.add(Op.MATMUL, (r.id, w.id), (steps * batch, 3), "float32").id]
    return g


def _body(step) -> str:
    return step.loop_ir.split("\n", 1)[1]


def _sized(program):
    return [k for k in program.kernels if any(a.name == "lens" for a in k.kernel.buffers)]


def test_a_sum_over_leading_dims_has_one_text_for_every_row_count():
    texts = set()
    rng = np.random.default_rng(0)
    for rows in (8, 24, 40):
        program = plan(_column_sum(rows))
        (step,) = _sized(program)
        texts.add(_body(step))
        lens = program.buffers[step.buffers[-1]]
        assert lens.storage is Storage.CONSTANT and list(lens.value) == [rows]
        x = rng.standard_normal((rows, 6)).astype(np.float32)
        (got,) = CompiledProgram(program, None)([x])
        np.testing.assert_allclose(got, x.sum(0), rtol=1e-5, atol=1e-6)
    assert len(texts) == 1, texts


def test_a_time_major_copy_has_one_text_for_every_length():
    texts = set()
    rng = np.random.default_rng(1)
    for steps in (3, 7, 12):
        program = plan(_time_major(4, steps))
        (step,) = _sized(program)
        texts.add(_body(step))
        x = rng.standard_normal((4, steps, 5)).astype(np.float32)
        w = rng.standard_normal((5, 3)).astype(np.float32)
        (got,) = CompiledProgram(program, lambda *a: None)([x, w])
        want = x.transpose(1, 0, 2).reshape(-1, 5) @ w
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert len(texts) == 1, texts


@pytest.mark.parametrize("graph", [_column_sum(24), _time_major(4, 7)])
def test_inlined_lengths_give_back_the_kernel_planned_without_them(graph, monkeypatch):
    program = plan(graph)
    (step,) = _sized(program)
    monkeypatch.setattr(schedule, "with_lengths", lambda *a: None)
    plain = {k.name: k for k in plan(graph).kernels}[step.name]
    inlined = without_lengths(step, program.buffers)
    assert str(inlined.kernel) == str(plain.kernel)
    assert inlined.buffers == plain.buffers
    # and the interpreter agrees with the lens buffer bound
    rng = np.random.default_rng(2)
    bufs = {}
    for arg, name in zip(step.kernel.buffers, step.buffers):
        info = program.buffers[name]
        bufs[arg.name] = (info.value.copy() if info.value is not None
                          else np.zeros(arg.size, arg.dtype) if arg.is_output
                          else rng.standard_normal(arg.size).astype(arg.dtype))
    ref = {a.name: bufs[a.name].copy() for a in inlined.kernel.buffers}
    run_kernel(step.kernel, bufs)
    run_kernel(inlined.kernel, ref)
    out = next(a.name for a in step.kernel.buffers if a.is_output)
    np.testing.assert_array_equal(bufs[out], ref[out])


def test_trailing_reductions_and_elementwise_kernels_keep_their_constants():
    g = Graph()
    x = g.add(Op.INPUT, (), (6, 8), "float32", index=0)
    s = g.add(Op.SUM, (x.id,), (6,), "float32", axes=(1,), keepdim=False)
    g.outputs = [s.id, g.add(Op.EXP, (x.id,), (6, 8), "float32").id]
    assert not _sized(plan(g))


def test_compiled_bias_gradient_over_batch_sizes_matches_eager():
    torch.manual_seed(0)
    lin = torch.nn.Linear(5, 3)
    step = torch.compile(lambda x: lin(x).tanh().sum())
    for batch in (4, 9, 16):
        x = torch.randn(batch, 5)
        lin.zero_grad()
        step(x).backward()
        got = lin.bias.grad.numpy().copy()
        lin.zero_grad()
        lin(x).tanh().sum().backward()
        np.testing.assert_allclose(got, lin.bias.grad.numpy(), rtol=1e-5, atol=1e-6)
