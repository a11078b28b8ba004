"""A program's drivers that no cache holds compile as one LLVM module at O0 (runtime
cpu_program ``_compile_drivers``, llvm_jit's NOTE (one module per batch)): one object for
all of them, each still under its own O0 key, and the program's answers unchanged."""
import numpy as np
import pytest

import tracegrad
import tracegrad.nn as nn
from tracegrad.runtime import llvm_jit

from test_compile_speed import FILL
from test_compile_speed import private_cache  # noqa: F401 (autouse: a cache of each test's own)


@pytest.fixture
def builds(monkeypatch):
    """Objects emitted, and single-source builds by opt level."""
    seen = {"emits": 0, "single": []}
    real_emit, real_build = llvm_jit._emit, llvm_jit._build

    def emit(*args, **kw):
        seen["emits"] += 1
        return real_emit(*args, **kw)

    def build(source, key, opt_level):
        seen["single"].append(opt_level)
        return real_build(source, key, opt_level)
    monkeypatch.setattr(llvm_jit, "_emit", emit)
    monkeypatch.setattr(llvm_jit, "_build", build)
    return seen


def test_a_batch_at_o0_is_one_object_with_each_source_under_its_o0_key(builds):
    sources = [FILL.replace("VALUE", v) for v in ("2.5", "-4.0", "7.0")]
    modules = llvm_jit.compile_llvm_many(sources, "fill", opt_level=0)
    assert builds["emits"] == 1 and builds["single"] == []
    for source, module, value in zip(sources, modules, (2.5, -4.0, 7.0)):
        assert module.key == llvm_jit.cache_key(source, 0)
        assert "<4 x double>" not in module.optimized_ir   # O0: no pass ran, no vector loop
        out = np.zeros(5)
        module.functions["fill"](5, [out])
        np.testing.assert_array_equal(out, np.full(5, value))
    # the same sources again: found in memory, nothing compiles
    assert llvm_jit.compile_llvm_many(sources, "fill", opt_level=0) == modules
    assert builds["emits"] == 1


def test_an_lstm_programs_drivers_compile_together(builds):
    tracegrad.manual_seed(0)
    lstm, head = nn.LSTM(4, 8, num_layers=2, batch_first=True), nn.Linear(8, 2)

    def loss(x, y):
        return nn.functional.cross_entropy(head(lstm(x)[0][:, -1]), y)
    f = tracegrad.compile(loss)
    x, y = tracegrad.randn(3, 5, 4), tracegrad.randint(0, 2, (3,))
    got = f(x, y)
    got.backward()
    grads = [p.grad.numpy().copy() for p in lstm.parameters()]
    (entry,) = f._cache.values()
    assert len(entry.forward.drivers) >= 2
    # no driver compiled on its own: the backward's only driver (one native run, its
    # matmuls all 2-D gemms) joins the forward's batch (NOTE (one driver module per entry))
    assert len(entry.backward.drivers) >= 1
    assert builds["single"].count(0) == 0, builds
    for p in lstm.parameters():
        p.grad = None
    want = loss(x, y)
    want.backward()
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5, atol=1e-6)
    for g, p in zip(grads, lstm.parameters()):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_the_forward_and_backward_drivers_compile_as_one_module(builds, monkeypatch):
    """NOTE (one driver module per entry), runtime.driver_call: the seed step's two
    programs have a driver each; both compile in one O0 batch, none on its own."""
    batches = []
    real_batch = llvm_jit._build_batch

    def batch(pending, opt_level=3):
        batches.append((opt_level, len(pending)))
        return real_batch(pending, opt_level)
    monkeypatch.setattr(llvm_jit, "_build_batch", batch)
    tracegrad.manual_seed(0)
    x, y = tracegrad.randn(64, 100), tracegrad.randn(64, 10)
    w1 = (tracegrad.randn(100, 50) * 0.1).requires_grad_()
    w2 = (tracegrad.randn(50, 10) * 0.1).requires_grad_()

    def loss(x, y, w1, w2):
        return (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()
    f = tracegrad.compile(loss)
    got = f(x, y, w1, w2)
    got.backward()
    grads = [w1.grad.numpy().copy(), w2.grad.numpy().copy()]
    (entry,) = f._cache.values()
    assert entry.forward.drivers and entry.backward.drivers
    assert [n for level, n in batches if level == 0] == [2]
    assert builds["single"].count(0) == 0
    w1.grad = w2.grad = None
    want = loss(x, y, w1, w2)
    want.backward()
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5)
    for g, w in zip(grads, (w1, w2)):
        np.testing.assert_allclose(g, w.grad.numpy(), rtol=1e-4, atol=1e-6)
