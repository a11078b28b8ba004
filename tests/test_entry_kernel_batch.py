"""NOTE (one batch per entry), tracegrad.compiler.entry: a compiled function's forward and
backward kernels compile as one LLVM batch before either program is built; a later
process finds that batch on disk; the gradients still equal eager mode's; and a batch
that fails leaves each program to compile (and name) its own kernels."""
import numpy as np
import pytest

import tracegrad
from tracegrad.compiler import entry
from tracegrad.nn import functional as F
from tracegrad.runtime import cpu_program, llvm_jit

from test_compile_speed import private_cache  # noqa: F401 (autouse: a cache of each test's own)


@pytest.fixture
def batches(monkeypatch):
    """(sources, objects emitted) of each compile_llvm_many call of kernels (O3; the
    drivers are O0), and the objects emitted in all."""
    seen = {"batches": [], "emits": 0}
    real_many, real_emit = llvm_jit.compile_llvm_many, llvm_jit._emit

    def many(sources, name, opt_level=3):
        before = seen["emits"]
        try:
            return real_many(sources, name, opt_level)
        finally:
            if opt_level == 3:
                seen["batches"].append((len(sources), seen["emits"] - before))

    def emit(*args, **kw):
        seen["emits"] += 1
        return real_emit(*args, **kw)
    monkeypatch.setattr(llvm_jit, "compile_llvm_many", many)
    monkeypatch.setattr(entry, "compile_llvm_many", many)
    monkeypatch.setattr(cpu_program, "compile_llvm_many", many)
    monkeypatch.setattr(llvm_jit, "_emit", emit)
    return seen


def _data():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 48), dtype=np.float32)
    y = rng.integers(0, 48, 64)
    return x, tracegrad.from_numpy(y)


def _loss(t, y):
    return F.cross_entropy(tracegrad.tanh(t) * 3, y)


def _grad(fn, x_np, y):
    x = tracegrad.from_numpy(x_np).requires_grad_()
    loss = fn(x, y)
    loss.backward()
    return loss.item(), x.grad.numpy()


def test_forward_and_backward_kernels_compile_as_one_batch_and_load_from_disk(batches):
    x_np, y = _data()
    loss, grad = _grad(tracegrad.compile(_loss), x_np, y)
    eager_loss, eager_grad = _grad(_loss, x_np, y)
    np.testing.assert_allclose(loss, eager_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, eager_grad, rtol=1e-5, atol=1e-7)
    # one batch with every kernel of both programs; the programs then find theirs in memory
    (together, emitted), *programs = batches["batches"]
    assert together == sum(n for n, _ in programs) >= 2 and emitted >= 1
    assert [e for _, e in programs] == [0] * len(programs)
    emitted = batches["emits"]
    # a second process (empty memory cache, same disk cache): the batch loads, no LLVM
    llvm_jit.clear_memory_cache()
    cpu_program._RENDERED.clear()
    loss2, grad2 = _grad(tracegrad.compile(_loss), x_np, y)
    assert batches["emits"] == emitted
    np.testing.assert_array_equal(grad2, grad)


def test_without_a_backward_nothing_is_batched_ahead(batches):
    x_np, y = _data()
    with tracegrad.no_grad():
        tracegrad.compile(_loss)(tracegrad.from_numpy(x_np), y)
    # the forward program compiles its own kernels, once
    assert len(batches["batches"]) == 1 and batches["batches"][0][1] >= 1


def test_a_failing_batch_leaves_each_program_to_compile_its_own(monkeypatch, batches):
    def broken(sources, name, opt_level=3):
        raise RuntimeError("LLVM broke")
    monkeypatch.setattr(entry, "compile_llvm_many", broken)
    x_np, y = _data()
    loss, grad = _grad(tracegrad.compile(_loss), x_np, y)
    _, eager_grad = _grad(_loss, x_np, y)
    np.testing.assert_allclose(grad, eager_grad, rtol=1e-5, atol=1e-7)
    assert len(batches["batches"]) == 2   # the forward's kernels, then the backward's
