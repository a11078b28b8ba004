"""A compiled whole training step in steady state maps no new memory: parameters, grads,
optimizer state and temporaries come from planned or recycled buffers
(``tracegrad.runtime.memory_stats()``)."""
import numpy as np
import pytest

import tracegrad
import tracegrad.nn as nn
from tracegrad.runtime import memory_stats
from compile_step_testing import make_step


@pytest.mark.parametrize("make_opt", [
    lambda ps: tracegrad.optim.SGD(ps, lr=1e-3, momentum=0.9),
    lambda ps: tracegrad.optim.Adam(ps, lr=1e-3),
])
def test_whole_step_steady_state_allocates_nothing(make_opt):
    tracegrad.manual_seed(0)
    # big enough that the weights, their grads and the state are pooled (>= 64 KiB)
    model = nn.Sequential(nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = make_opt(model.parameters())
    step = tracegrad.compile(make_step(model, opt), fullgraph=True)

    rng = np.random.default_rng(0)
    x = tracegrad.from_numpy(rng.standard_normal((64, 256)).astype(np.float32))
    y = tracegrad.from_numpy(rng.integers(0, 10, 64))
    for _ in range(4):
        step(x, y)
    before = memory_stats()
    for _ in range(10):
        step(x, y)
    after = memory_stats()
    assert after["misses"] == before["misses"]
    assert after["mapped_bytes"] == before["mapped_bytes"]
    assert after["allocated_bytes"] == before["allocated_bytes"]
    # not even a pool request: the new grads are the arrays the step's zero_grad let go
    # (NOTE (recycled results) in runtime/cpu_program.py)
    assert after["hits"] == before["hits"]
    assert step.cache_info().misses <= 2     # first step, then lazily made state
