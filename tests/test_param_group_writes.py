"""NOTE (param groups written in a trace) in tracegrad/optim/param_group.py: a compiled
function that writes an optimizer's options (an lr schedule inside the step) used to replay
without the write and read the last trace's lr; it now runs that signature eagerly."""
import copy
import pickle
import warnings

import numpy as np
import pytest

import tracegrad as tg
from tracegrad._errors import TraceError


def _train(step_of, compile_options, calls):
    tg.manual_seed(0)
    model = tg.nn.Linear(3, 2)
    opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = tg.optim.lr_scheduler.StepLR(opt, 2, gamma=0.5)
    x = tg.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3))
    step = step_of(model, opt, sched, x)
    if compile_options is not None:
        step = tg.compile(step, **compile_options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for arg in calls:
            step(arg)
    return model.weight.detach().numpy().copy(), opt.param_groups[0]["lr"]


def _lr_from_epoch(model, opt, sched, x):
    def step(epoch):
        for group in opt.param_groups:
            group["lr"] = 0.1 * 0.5 ** epoch
        opt.zero_grad()
        (model(x) ** 2).sum().backward()
        opt.step()
    return step


def _scheduler_inside(model, opt, sched, x):
    def step(_):
        opt.zero_grad()
        (model(x) ** 2).sum().backward()
        opt.step()
        sched.step()
    return step


@pytest.mark.parametrize("step_of", [_lr_from_epoch, _scheduler_inside])
@pytest.mark.parametrize("options", [{}, {"dynamic": True}, {"dynamic": False},
                                     {"static_argnames": ("epoch",)}])
def test_a_step_that_writes_its_optimizers_options_trains_as_eager(step_of, options):
    if "static_argnames" in options and step_of is _scheduler_inside:
        options = {"static_argnames": ("_",)}
    calls = [0, 1, 2, 1, 3, 0, 2]
    want_w, want_lr = _train(step_of, None, calls)
    got_w, got_lr = _train(step_of, options, calls)
    np.testing.assert_allclose(got_w, want_w, rtol=1e-6, atol=1e-7)
    assert got_lr == want_lr


def test_the_write_is_named_under_fullgraph():
    tg.manual_seed(0)
    model = tg.nn.Linear(3, 1)
    opt = tg.optim.SGD(model.parameters(), lr=0.1)

    def step(x):
        opt.param_groups[0]["lr"] = 0.05
        (model(x) ** 2).sum().backward()
        opt.step()

    with pytest.raises(TraceError, match=r"param_group\['lr'\]"):
        tg.compile(step, fullgraph=True)(tg.ones(2, 3))


def test_groups_still_read_copy_and_pickle_as_dicts():
    opt = tg.optim.Adam(tg.nn.Linear(2, 2).parameters(), lr=1e-3)
    group = opt.param_groups[0]
    assert isinstance(group, dict) and group["lr"] == 1e-3
    group["lr"] = 2e-3                       # outside a trace: an ordinary write
    clone = copy.deepcopy(group)
    assert clone["lr"] == 2e-3 and clone["params"][0] is not group["params"][0]
    assert pickle.loads(pickle.dumps({k: v for k, v in group.items() if k != "params"})) \
        == {k: v for k, v in group.items() if k != "params"}
    state = opt.state_dict()
    opt.load_state_dict(state)
    assert opt.param_groups[0]["lr"] == 2e-3
    opt.param_groups[0]["lr"] = 3e-3        # the loaded group is one too
    assert opt.state_dict()["param_groups"][0]["lr"] == 3e-3


def test_an_optimizer_made_inside_the_function_still_compiles():
    tg.manual_seed(0)
    w = tg.tensor(np.ones(3, np.float32), requires_grad=True)

    def step(x):
        opt = tg.optim.SGD([w], lr=0.5)     # its group is written while it is built
        (w * x).sum().backward()
        opt.step()
        return w * 1

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = tg.compile(step)(tg.ones(3))
    np.testing.assert_allclose(out.numpy(), [0.5, 0.5, 0.5])
