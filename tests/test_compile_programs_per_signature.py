"""One signature keeps its last few traces, each with its own guards (NOTE (programs per
signature) in compiler/function.py): an option switched back and forth by hand between
steps replays the trace made for it instead of tracing again at every switch. Values are
compared with eager mode at every step."""
from __future__ import annotations

import numpy as np

import tracegrad
import tracegrad.nn as nn

optim = tracegrad.optim


def _model():
    tracegrad.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def _run(decays, name="Adam"):
    model_e, model_c = _model(), _model()
    opt_e = getattr(optim, name)(model_e.parameters(), lr=1e-2)
    opt_c = getattr(optim, name)(model_c.parameters(), lr=1e-2)
    step_c = tracegrad.compile(opt_c.step)
    x = tracegrad.randn(5, 3)
    for k, decay in enumerate(decays):
        for model, opt, step in ((model_e, opt_e, opt_e.step), (model_c, opt_c, step_c)):
            opt.param_groups[0]["weight_decay"] = decay
            opt.zero_grad()
            (model(x) ** 2).mean().backward()
            step()
        for pe, pc in zip(model_e.parameters(), model_c.parameters()):
            np.testing.assert_allclose(pc.detach().numpy(), pe.detach().numpy(),
                                       rtol=1e-5, atol=1e-6, err_msg=f"step {k}")
            for key, value in opt_e.state[pe].items():
                got = opt_c.state[pc][key]
                if isinstance(value, tracegrad.Tensor):
                    np.testing.assert_allclose(got.numpy(), value.numpy(), rtol=1e-5,
                                               atol=1e-6, err_msg=f"step {k}: {key}")
    return step_c.cache_info()


def test_switching_weight_decay_back_and_forth_replays():
    # at most: step 1 makes the state (a trace), steps 2 and 3 read it with decay 0.1
    # and 0; from then on each configuration has its trace (one program per signature:
    # 8 misses in 8 steps)
    info = _run([0.0, 0.1, 0.0, 0.1, 0.0, 0.1, 0.0, 0.1])
    assert info.misses <= 3, info
    assert info.hits >= 5


def test_sgd_switching_weight_decay_replays():
    info = _run([0.0, 0.0, 0.1, 0.0, 0.1, 0.1, 0.0, 0.1], name="SGD")
    assert info.misses <= 3, info


def test_more_configurations_than_kept_still_right():
    # five decays in turn: more than the traces kept; every step is still eager's
    info = _run([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.0, 0.1, 0.2, 0.3])
    assert info.misses + info.hits == 10
