"""Inside ``@tracegrad.compile``: a module with backward hooks falls back to eager with the
usual file:line warning (raises with fullgraph=True) and gives eager's answer, hooks run at
every call; and a trace that fails at ``print(loss)`` prints nothing (the eager rerun
prints the line once)."""
import re
import warnings

import numpy as np
import pytest

import tracegrad as torch
from tracegrad import nn
from tracegrad._errors import TraceError


def hooked_net(calls):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    net[0].register_full_backward_hook(lambda m, gi, go: (calls.append(1), (gi[0] * 2,))[1])
    return net


def step_of(net):
    def step(x):
        loss = (net(x) ** 2).sum()
        loss.backward()
        return loss
    return step


def test_backward_hook_module_falls_back_with_the_line_and_matches_eager():
    eager_calls, compiled_calls = [], []
    eager_net, compiled_net = hooked_net(eager_calls), hooked_net(compiled_calls)
    eager_step, compiled_step = step_of(eager_net), torch.compile(step_of(compiled_net))
    xs = [torch.randn(2, 3, requires_grad=True) for _ in range(2)]
    for i, x in enumerate(xs):
        x_eager = x.detach().clone().requires_grad_(True)
        eager_loss = eager_step(x_eager)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loss = compiled_step(x)
        if i == 0:
            messages = [str(w.message) for w in caught]
            assert any(re.search(r"cannot be traced at .*test_backward_hooks_compile\.py:\d+.*"
                                 r"Linear has backward hooks", m) for m in messages), messages
        np.testing.assert_allclose(loss.item(), eager_loss.item(), rtol=1e-6)
        np.testing.assert_allclose(x.grad.numpy(), x_eager.grad.numpy(), rtol=1e-6)
    for p, q in zip(compiled_net.parameters(), eager_net.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-6)
    assert len(compiled_calls) == len(eager_calls) == 2  # the hook ran at every call


def test_backward_hook_with_fullgraph_raises():
    net = hooked_net([])
    compiled = torch.compile(step_of(net), fullgraph=True)
    with pytest.raises(TraceError, match="Linear has backward hooks"):
        compiled(torch.randn(2, 3, requires_grad=True))


def test_backward_hook_module_compiles_under_no_grad():
    calls = []
    net = hooked_net(calls)
    compiled = torch.compile(net)
    x = torch.randn(2, 3)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback: no hook can run
        out = compiled(x)
        expected = net(x)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6)
    assert calls == []


def test_failed_trace_at_print_prints_the_line_once(capsys):
    @torch.compile
    def step(x):
        loss = (x * 2).sum()
        print("loss", loss)
        return loss

    with pytest.warns(RuntimeWarning, match="cannot be traced"):
        step(torch.ones(3))
    assert capsys.readouterr().out == "loss tensor(6.)\n"


def test_successful_trace_still_prints_once(capsys):
    @torch.compile
    def add_one(x):
        print("tracing", 1)
        return x + 1

    np.testing.assert_allclose(add_one(torch.ones(2)).numpy(), [2.0, 2.0])
    assert capsys.readouterr().out == "tracing 1\n"


def test_held_stdout_lets_other_threads_write_and_drops_on_failure(capsys):
    import threading

    from tracegrad.compiler.held_output import stdout_held_until_success

    with pytest.raises(ValueError), stdout_held_until_success():
        print("held then dropped")
        other = threading.Thread(target=print, args=("other thread",))
        other.start()
        other.join()
        raise ValueError
    assert capsys.readouterr().out == "other thread\n"


@pytest.mark.parametrize("register", ["forward", "backward", "global_backward"])
def test_hook_registered_after_compiling_runs_at_the_next_call(register):
    from tracegrad.nn.modules.module import register_module_full_backward_hook
    calls = []
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    step = torch.compile(step_of(net))
    x = torch.randn(2, 3)
    step(x)
    step(x)   # replayed: compiled
    if register == "forward":
        handle = net[0].register_forward_hook(lambda m, a, o: calls.append(1))
    elif register == "backward":
        handle = net[0].register_full_backward_hook(lambda m, gi, go: calls.append(1))
    else:
        handle = register_module_full_backward_hook(lambda m, gi, go: calls.append(1))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            step(x)
    finally:
        handle.remove()
    assert calls, "the compiled program replayed without the new hook"
