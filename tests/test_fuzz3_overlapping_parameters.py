"""Two parameters that are overlapping ``detach()`` views of one storage whose base tensor
is gone: eagerly the optimizer updates them one after the other, so the second update
reads the overlap the first one wrote. A compiled step (horizontal fusion on or off)
updates both from the values at the call, 0.04 off eager after one SGD step, without a
warning. (With the base still alive the trace notices the alias and runs eagerly; disjoint
views of one storage match eager. A hand-written update, ``p.sub_(0.1 * p.grad)`` under
no_grad after backward, is off the same way, so the optimizers are not the cause.)"""
import numpy as np
import pytest

import tracegrad


def overlapping_parameters():
    base = tracegrad.from_numpy(np.arange(8, dtype=np.float32) / 8)
    return [base[:5].detach().requires_grad_(), base[2:].detach().requires_grad_()]


def train(compiled: bool, steps: int) -> np.ndarray:
    params = overlapping_parameters()
    opt = tracegrad.optim.SGD(params, lr=0.1)

    def step():
        opt.zero_grad()
        loss = (params[0] ** 2).sum() + (params[1] ** 2).sum() * 2
        loss.backward()
        opt.step()

    run = tracegrad.compile(step) if compiled else step
    for _ in range(steps):
        run()
    return np.concatenate([p.detach().numpy() for p in params])


@pytest.mark.xfail(strict=True, reason="a compiled step updates parameters that overlap in "
                   "one storage (base dropped) from the values at the call, not one after "
                   "the other as eager does")
@pytest.mark.parametrize("steps", [1, 3])
def test_overlapping_parameter_views_update_as_eagerly(steps):
    np.testing.assert_allclose(train(True, steps), train(False, steps), rtol=1e-6, atol=1e-7)
