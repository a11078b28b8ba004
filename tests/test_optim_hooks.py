"""Optimizer hooks (PyTorch's register_*_hook): step pre/post, global and per optimizer,
state_dict and load_state_dict pre/post; inside a compiled step, a hook is traced."""
import numpy as np
import pytest

import tracegrad
from compile_step_testing import Pair, first_config, make_step
from tracegrad.optim.optimizer import (register_optimizer_step_post_hook,
                                       register_optimizer_step_pre_hook)

optim = tracegrad.optim


def _sgd():
    w = tracegrad.tensor([1.0, -1.0], requires_grad=True)
    w.grad = tracegrad.tensor([1.0, 2.0])
    return w, optim.SGD([w], lr=0.5)


def test_step_hooks_run_in_pytorchs_order_and_can_be_removed():
    w, opt = _sgd()
    calls = []
    handles = [
        register_optimizer_step_pre_hook(lambda o, a, k: calls.append("global pre")),
        opt.register_step_pre_hook(lambda o, a, k: calls.append(("pre", w.tolist()))),
        opt.register_step_post_hook(lambda o, a, k: calls.append(("post", w.tolist()))),
        register_optimizer_step_post_hook(lambda o, a, k: calls.append("global post")),
    ]
    try:
        opt.step()
    finally:
        for h in handles:
            h.remove()
    assert calls == ["global pre", ("pre", [1.0, -1.0]), ("post", [0.5, -2.0]), "global post"]
    opt.step()
    assert len(calls) == 4


def test_a_pre_hook_may_replace_the_arguments_and_must_return_a_pair():
    w, opt = _sgd()
    closure_calls = []
    opt.register_step_pre_hook(lambda o, a, k: ((), {"closure": lambda: closure_calls.append(1)}))
    opt.step()
    assert closure_calls == [1]
    bad = opt.register_step_pre_hook(lambda o, a, k: "nonsense")
    with pytest.raises(RuntimeError, match="must return None or a tuple"):
        opt.step()
    bad.remove()


def test_lbfgs_runs_the_step_hooks_too():
    w = tracegrad.tensor([1.0, -1.0], requires_grad=True)
    opt = optim.LBFGS([w], max_iter=2)
    seen = []
    opt.register_step_post_hook(lambda o, a, k: seen.append(len(a) + len(k)))

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss
    opt.step(closure)
    assert seen == [1]


def test_state_dict_hooks():
    w, opt = _sgd()
    order = []
    opt.register_state_dict_pre_hook(lambda o: order.append("pre"))
    opt.register_state_dict_post_hook(lambda o, sd: {**sd, "extra": 1})
    opt.register_state_dict_post_hook(lambda o, sd: order.append("first") or None,
                                      prepend=True)
    sd = opt.state_dict()
    assert order == ["pre", "first"] and sd["extra"] == 1


def test_load_state_dict_hooks_edit_a_copy_and_run_after():
    w, opt = _sgd()
    saved = opt.state_dict()
    done = []

    def halve_lr(o, sd):
        sd["param_groups"] = [dict(g, lr=g["lr"] / 2) for g in sd["param_groups"]]
        return sd
    opt.register_load_state_dict_pre_hook(halve_lr)
    opt.register_load_state_dict_post_hook(lambda o: done.append(o.param_groups[0]["lr"]))
    opt.load_state_dict(saved)
    assert done == [0.25] and saved["param_groups"][0]["lr"] == 0.5


@pytest.mark.parametrize("name", ["SGD", "Adam", "RAdam"])
def test_a_hook_that_scales_gradients_is_traced_into_the_compiled_step(name):
    pair = Pair("mlp", name, first_config(name))
    traced_calls = []
    for opt in pair.opts:
        def halve(o, args, kwargs):
            traced_calls.append(o is pair.opts[1])
            for group in o.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad.mul_(0.5)
        opt.register_step_pre_hook(halve)
    info = pair.run(10, every_step=True)
    assert info.misses == 2
    # eagerly at every step; in the compiled step once per trace
    assert traced_calls.count(False) == 10 and traced_calls.count(True) == 2
    assert np.isfinite(pair.models[1][0].weight.detach().numpy()).all()


def test_hooks_docstring_example_runs():
    import doctest
    import importlib
    result = doctest.testmod(importlib.import_module("tracegrad.optim._hooks"))
    assert result.attempted > 0 and result.failed == 0


class LoggedAdam(optim.Adam):
    """A subclass whose own step calls Adam's: the hooks run once per step."""

    def step(self, closure=None):
        self.calls = getattr(self, "calls", 0) + 1
        return super().step(closure)


def test_hooks_run_once_when_a_subclass_step_calls_super():
    w = tracegrad.tensor([1.0], requires_grad=True)
    opt = LoggedAdam([w], lr=0.1)
    seen = []
    opt.register_step_pre_hook(lambda o, a, k: seen.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: seen.append("post"))
    w.grad = tracegrad.tensor([1.0])
    opt.step()
    assert seen == ["pre", "post"] and opt.calls == 1


def test_a_subclass_step_calling_super_compiles_and_trains_as_eager():
    pair = Pair("mlp", "Adam", dict(lr=1e-2))
    pair.opts = [LoggedAdam(m.parameters(), lr=1e-2) for m in pair.models]
    pair.eager = make_step(pair.models[0], pair.opts[0])
    pair.compiled = tracegrad.compile(make_step(pair.models[1], pair.opts[1]), fullgraph=True)
    info = pair.run(8, every_step=True)
    assert info.misses == 2
