"""Compiled functions that write into Python state outliving the call (NOTE (state
writes)): each compared with the same function run eagerly, call by call, values and the
state it leaves; where a replay cannot match eager mode the call runs eagerly, with a
warning (fullgraph=True raises)."""
from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

import tracegrad as torch
from tracegrad._errors import TraceError


def _run(fn, calls):
    """Each call's result as floats, the compiled function, or the eager one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return [fn(x).numpy().tolist() for x in calls]


def test_a_loss_log_of_traced_tensors_gets_real_tensors():
    for compiled in (True, False):
        losses, last = [], {}

        def step(x):
            loss = (x * 2).sum()
            losses.append(loss)
            last["loss"] = loss
            return loss
        fn = torch.compile(step) if compiled else step
        got = _run(fn, [torch.full((3,), float(i)) for i in range(4)])
        assert got == [0.0, 6.0, 12.0, 18.0]
        # old: one entry, the trace's placeholder (printing it raised TraceError)
        assert [t.item() for t in losses] == got
        assert last["loss"].item() == 18.0


def test_a_tensor_stored_on_a_plain_object_is_a_real_tensor():
    holder = SimpleNamespace(t=None)

    def f(x):
        holder.t = x * 2
        return x + 1
    c = torch.compile(f)
    for i in range(3):
        with pytest.warns(RuntimeWarning, match="stores a tensor computed") if i == 0 \
                else warnings.catch_warnings():
            c(torch.full((2,), float(i)))
        np.testing.assert_array_equal(holder.t.numpy(), [2.0 * i] * 2)


@pytest.mark.parametrize("form", ["assign", "augmented", "list", "dict item"])
def test_a_value_the_function_changes_and_reads_back_follows_each_call(form):
    ns, log, stats = SimpleNamespace(n=0), [], {"n": 0}

    def f(x):
        if form == "assign":
            ns.n = ns.n + 1
            return x + ns.n
        if form == "augmented":
            ns.n += 1
            return x + ns.n
        if form == "list":
            log.append(1)
            return x + len(log)
        stats["n"] += 1
        return x + stats["n"]
    got = _run(torch.compile(f), [torch.zeros(1)] * 4)
    # old: [[1.0]] * 4 (the trace's value replayed) and the state counted one trace
    assert got == [[1.0], [2.0], [3.0], [4.0]]
    assert (ns.n, len(log), stats["n"]) == {"assign": (4, 0, 0), "augmented": (4, 0, 0),
                                            "list": (0, 4, 0), "dict item": (0, 0, 4)}[form]


def test_fullgraph_raises_on_a_state_write_it_cannot_replay():
    log = []

    def f(x):
        log.append(x * 2)
        return x
    with pytest.raises(TraceError, match="stores a tensor computed"):
        torch.compile(f, fullgraph=True)(torch.ones(2))
    assert log == []   # the trace's placeholder taken out again


def test_a_list_or_dict_argument_the_function_changes_is_the_callers_own():
    def f(x, out, cfg):
        out.append(x * 2)
        cfg["seen"] = cfg.get("seen", 0) + 1
        return x + 1
    c = torch.compile(f)
    for i in range(3):
        out, cfg = [], {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            c(torch.full((2,), float(i)), out, cfg)
        # old: the function changed a copy: out == [] and cfg == {}
        assert len(out) == 1 and out[0].numpy().tolist() == [2.0 * i] * 2
        assert cfg == {"seen": 1}


def test_a_call_counter_that_is_never_read_back_still_compiles_once():
    class Counted:
        def __init__(self, fn):
            self.fn, self.calls = fn, 0

        def __call__(self, x):
            self.calls += 1
            return self.fn(x)
    counted = Counted(lambda x: x * 2.0)
    c = torch.compile(counted)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            np.testing.assert_array_equal(c(torch.ones(2)).numpy(), [2.0, 2.0])
    assert c.cache_info().misses == 1 and counted.calls == 1


def test_a_local_list_a_comprehension_reads_is_the_functions_own():
    # ``vals`` is a closure cell of the comprehension: still a local the trace made, so
    # appending traced tensors to it is no write into outside state (it compiles)
    def f(*xs):
        vals = []
        for k in range(len(xs)):
            vals.append(xs[k] * (k + 1))
            vals.append(sum([vals[i] for i in range(len(vals))]))
        return tuple(vals)
    c = torch.compile(f)
    xs = (torch.ones(2), torch.full((2,), 2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = c(*xs)
    for g, w in zip(got, f(*xs)):
        np.testing.assert_array_equal(g.numpy(), w.numpy())
    assert c.cache_info().misses == 1


def test_a_write_each_call_repeats_the_same_way_still_compiles():
    # ``self.cache = None`` then a read of it: the trace leaves the attribute as it found
    # it, so every call writes and reads the same value: no eager fallback
    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)
            self.cache = None

        def forward(self, x):
            self.cache = None
            y = self.lin(x)
            return y * 2 if self.cache is None else y
    layer = Layer()
    c = torch.compile(layer)
    x = torch.randn(3, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            np.testing.assert_allclose(c(x).detach().numpy(), layer(x).detach().numpy())
    assert c.cache_info().misses == 1


def test_a_trace_that_fails_leaves_no_writes_behind_for_the_eager_run_to_double():
    log, ns = [], SimpleNamespace(n=0, seen={})

    def f(x):
        log.append(1)
        ns.n += 1
        ns.seen["last"] = ns.n
        v = x.sum().item()   # not traceable: the call runs eagerly
        return x * v
    c = torch.compile(f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(3):
            np.testing.assert_array_equal(c(torch.ones(2)).numpy(), [2.0, 2.0])
    # old: 4 and 4 (the trace's writes, then the eager run's)
    assert (len(log), ns.n, ns.seen) == (3, 3, {"last": 3})
