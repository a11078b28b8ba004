"""What keeps a loss over rows at one row kernel per direction: a per-row value stays in
its rows' kernel (NOTE (per-row values stay with their rows), codegen.fuse) and the
backward recomputes cheap large values instead of reading them saved (NOTE (recompute in
backward), tracegrad.compiler.partition)."""
import numpy as np
import pytest

import tracegrad
from codegen_testing import Builder, eval_graph, extern_eval, run_interp
from tracegrad.codegen.schedule import plan
from tracegrad.runtime import llvm_jit
from tracegrad.runtime.cpu_program import CompiledProgram

RNG = np.random.default_rng(5)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    llvm_jit.clear_memory_cache()


def test_sibling_row_sums_read_by_a_mean_share_one_row_kernel():
    # mean over rows of log(sum(exp(x - max))) - sum(x): before, the mean's kernel took the
    # per-row subtraction and the two row sums became a kernel each, x - max a temp
    b = Builder()
    x = b.input((6, 40))
    shifted = b.sub(x, b.max(x, axes=(1,), keepdim=True))
    lse = b.log(b.sum(b.exp(shifted), axes=(1,)))
    per_row = b.sub(lse, b.sum(shifted, axes=(1,)))
    g = b.graph(b.mul(b.sum(per_row, axes=(0,)), b.const(1 / 6)))
    p = plan(g)
    readers = [k for k in p.kernels if "in0" in k.buffers]
    assert len(readers) == 1 and len(p.kernels) == 2
    assert all(info.nbytes <= 6 * 4 for info in p.buffers.values() if info.kind == "temp")
    xs = [RNG.standard_normal((6, 40)).astype(np.float32)]
    ref = eval_graph(g, xs)[0]
    np.testing.assert_allclose(run_interp(p, xs)[0], ref, rtol=1e-5)
    np.testing.assert_allclose(CompiledProgram(p, extern_eval)(xs)[0], ref, rtol=1e-5)


def _saved(report, n_results=1):
    """(shape, kind) of each value the forward saves for the backward."""
    return [(tuple(o.shape), o.kind) for o in report.forward.outputs[n_results:]]


def test_backward_recomputes_exp_from_the_input_and_row_max():
    x = tracegrad.from_numpy(RNG.standard_normal((8, 32)).astype(np.float32)).requires_grad_()

    def lse_mean(a):
        m = a.amax(1, keepdim=True).detach()
        return tracegrad.log(tracegrad.exp(a - m).sum(1)).mean()
    cf = tracegrad.compile(lse_mean)
    report = cf.explain(x)
    big = [kind for shape, kind in _saved(report) if shape == (8, 32)]
    # exp(x - max), as eager mode saves it: x may change in place before backward (NOTE
    # (inputs read by backward) in compiler/partition.py)
    assert big == ["buffer"]
    # where the backward reads x anyway (the mul saves it), exp(x - max) is recomputed
    report = tracegrad.compile(lambda a: lse_mean(a) * (a * a).sum()).explain(x)
    big = [kind for shape, kind in _saved(report) if shape == (8, 32)]
    assert big == ["input"]          # x itself (an argument: no copy), not exp(x - max)
    assert len(report.backward.kernels) == 1
    loss = cf(x)
    (g,) = tracegrad.autograd.grad(loss, x)
    xe = tracegrad.from_numpy(x.detach().numpy()).requires_grad_()
    (ge,) = tracegrad.autograd.grad(lse_mean(xe), xe)
    np.testing.assert_allclose(g.numpy(), ge.numpy(), rtol=1e-5, atol=1e-8)


def test_random_masks_are_saved_never_redrawn():
    # recomputing a value that depends on a random draw would draw again: the mask is saved
    x = tracegrad.from_numpy(RNG.standard_normal((8, 32)).astype(np.float32)).requires_grad_()

    def masked_exp(a):
        keep = tracegrad.rand(8, 32) < 0.5
        return (tracegrad.exp(a) * keep).sum()
    cf = tracegrad.compile(masked_exp)
    loss = cf(x)
    (g,) = tracegrad.autograd.grad(loss, x)
    # d/dx sum(exp(x) * keep) = exp(x) * keep: the mask the forward drew, read back from g
    keep = g.numpy() != 0
    assert 0 < keep.mean() < 1
    np.testing.assert_allclose(loss.item(), (np.exp(x.detach().numpy()) * keep).sum(),
                               rtol=1e-5)


@pytest.mark.parametrize("fn", [lambda a, w: tracegrad.softmax(a @ w, -1).sum(),
                                lambda a, w: tracegrad.exp(a - a.amax(1, keepdim=True)
                                                           .detach()).sum() * (a * w[:4]).sum()])
def test_an_input_the_backward_reads_changed_in_place_raises(fn):
    # the backward reads arguments (a matmul's operands; x, which the mul saves and from
    # which it recomputes exp(x - max)): an in-place change between forward and backward
    # raises PyTorch's error (it raised AttributeError from the compiled node's name before)
    a = tracegrad.from_numpy(RNG.standard_normal((4, 6)).astype(np.float32)).requires_grad_()
    w = tracegrad.from_numpy(RNG.standard_normal((6, 6)).astype(np.float32)).requires_grad_()
    loss = tracegrad.compile(fn)(a, w)
    with tracegrad.no_grad():
        a.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
