"""NOTE (slot copies): the gradient of a stack an unrolled loop sliced is copied piece by
piece into its runs, compiled equal to eager; sums of pads that overlap or leave a gap
stay one kernel."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.codegen.graph import Graph
from tracegrad.codegen.ops import Op
from tracegrad.codegen.schedule import plan
from tracegrad.runtime.cpu_program import CompiledProgram


def _step_grads(compiled, fn, x_np, w):
    x = torch.tensor(x_np, requires_grad=True)
    compiled(x).backward()
    ref = torch.tensor(x_np, requires_grad=True)
    fn(ref).backward()
    return x.grad.numpy(), ref.grad.numpy()


def _copies(compiled):
    (entry,) = compiled._cache.values()
    return [k for k in entry.backward_plan.kernels if k.ops == ["PAD"]]


@pytest.mark.parametrize("steps", [3, 6])
def test_gradient_of_a_sliced_stack_is_copied_into_its_runs(steps):
    rng = np.random.default_rng(steps)
    w = torch.tensor(rng.standard_normal((8, 5)).astype(np.float32))

    def fn(x):
        return sum((x[t] @ w).tanh().sum() for t in range(steps))
    compiled = torch.compile(fn)
    x_np = rng.standard_normal((steps, 4, 8)).astype(np.float32)
    got, want = _step_grads(compiled, fn, x_np, w)
    wn = w.numpy().astype(np.float64)
    exact = np.stack([(1 - np.tanh(x_np[t] @ wn) ** 2) @ wn.T for t in range(steps)])
    np.testing.assert_allclose(want, exact, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    copies = _copies(compiled)
    assert sorted(k.kernel.buffers[1].offset for k in copies) == [32 * t for t in range(steps)]
    assert len({k.loop_ir.split("(", 1)[1] for k in copies}) == 1   # one text for all


def test_overlapping_slices_are_summed_not_copied():
    rng = np.random.default_rng(1)
    w = torch.tensor(rng.standard_normal((8, 5)).astype(np.float32))

    def fn(x):   # x[t:t+2] overlap: their gradients add where they meet
        return sum((x[t:t + 2] @ w).tanh().sum() for t in range(4))
    compiled = torch.compile(fn)
    got, want = _step_grads(compiled, fn, rng.standard_normal((5, 8)).astype(np.float32), w)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not _copies(compiled)


def _pad_sum(runs, total=6, row=4):
    """A graph adding, for each (start, count) in ``runs``, an input of ``count`` rows
    padded with zeros to ``total`` rows at ``start``."""
    g = Graph()
    acc = None
    for k, (start, count) in enumerate(runs):
        x = g.add(Op.INPUT, (), (count, row), "float32", index=k)
        p = g.add(Op.PAD, (x.id,), (total, row), "float32",
                  pads=((start, total - start - count), (0, 0)), value=0.0)
        acc = p if acc is None else g.add(Op.ADD, (acc.id, p.id), (total, row), "float32")
    g.outputs = [acc.id]
    return g


@pytest.mark.parametrize("runs,copied", [([(0, 2), (2, 1), (3, 3)], True),
                                         ([(3, 3), (0, 3)], True),
                                         ([(0, 2), (3, 3)], False),        # a gap
                                         ([(0, 3), (2, 4)], False)])       # an overlap
def test_pad_sums_plan_copies_only_when_they_tile(runs, copied):
    g = _pad_sum(runs)
    program = plan(g)
    kinds = [k.ops for k in program.kernels]
    assert (kinds == [["PAD"]] * len(runs)) is copied, kinds
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((n, 4)).astype(np.float32) for _, n in runs]
    want = np.zeros((6, 4), np.float32)
    for (start, n), x in zip(runs, xs):
        want[start:start + n] += x
    (got,) = CompiledProgram(program, None)([x.copy() for x in xs])
    np.testing.assert_array_equal(got, want)
