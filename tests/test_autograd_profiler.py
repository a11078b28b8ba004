"""autograd.profiler: op counts, nesting of times, record_function, and clean uninstall."""
import json
import threading
import time

import pytest

import tracegrad as torch
from tracegrad._primitives.registry import PRIMITIVES
from tracegrad.autograd.profiler import profile, record_function


def counts(prof):
    return {e.key: e.count for e in prof.key_averages()}


def test_counts_forward_and_backward_ops():
    x = torch.randn(3, 3, requires_grad=True)
    with profile() as prof:
        y = (x * x).exp().sum()
        y.backward()
    c = counts(prof)
    assert c["exp"] == 1 and c["sum"] == 1
    assert c["MulBackward"] == 1 and c["ExpBackward"] == 1 and c["SumBackward"] == 1
    assert c["mul"] >= 3  # x * x, then the rules' g * x twice and g * exp(x)


def test_record_function_nests_and_excludes_children_from_self_time():
    x = torch.randn(50, 50)

    def slow(t):
        time.sleep(0.02)
        return t

    with profile() as prof:
        with record_function("outer"):
            with record_function("inner"):
                slow(x @ x)
            x + x
    events = {e.key: e for e in prof.key_averages()}
    outer, inner = events["outer"], events["inner"]
    assert inner.cpu_time_total >= 20_000  # µs: it contains the sleep
    assert outer.cpu_time_total >= inner.cpu_time_total
    assert outer.self_cpu_time_total < outer.cpu_time_total - inner.cpu_time_total + 1
    assert events["matmul"].count == 1 and events["add"].count == 1
    # self time = total minus children; the µs sums round, so compare within 1 µs
    assert inner.self_cpu_time_total <= inner.cpu_time_total - events["matmul"].cpu_time_total + 1


def test_record_function_as_decorator_and_outside_a_profile():
    @record_function("my_step")
    def step(t):
        return t * 2

    assert step(torch.ones(2)).tolist() == [2.0, 2.0]  # no profile: a no-op
    with profile() as prof:
        step(torch.ones(2))
        step(torch.ones(2))
    assert counts(prof)["my_step"] == 2


def test_wrappers_are_removed_after_the_profile():
    before = {p: (p.eager, p.vjp) for p in PRIMITIVES.values()}
    with profile():
        with profile() as inner:  # nested profiles each see the ops
            torch.ones(2) + 1
        assert counts(inner)["add"] == 1
        assert any(p.eager is not before[p][0] for p in PRIMITIVES.values())
    assert {p: (p.eager, p.vjp) for p in PRIMITIVES.values()} == before


def test_record_shapes_table_and_chrome_trace(tmp_path):
    with profile(record_shapes=True) as prof:
        torch.ones(2, 3) @ torch.ones(3, 4)
        torch.ones(5, 5) @ torch.ones(5, 5)
    by_shape = [e for e in prof.key_averages(group_by_input_shape=True) if e.key == "matmul"]
    assert sorted(str(e.input_shapes) for e in by_shape) == ["[[2, 3], [3, 4]]",
                                                            "[[5, 5], [5, 5]]"]
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=5)
    assert "matmul" in table and "# of Calls" in table and "Self CPU time total" in table
    with pytest.raises(AttributeError, match="cannot sort by"):
        prof.key_averages().table(sort_by="bogus")
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    names = [e["name"] for e in json.loads(path.read_text())["traceEvents"]]
    assert names.count("matmul") == 2


def test_ops_on_other_threads_are_recorded_on_their_own_stack():
    def work():
        torch.ones(3).exp()

    with profile() as prof:
        with record_function("main"):
            t = threading.Thread(target=work)
            t.start()
            t.join()
    evs = prof.function_events
    exp = [e for e in evs if e.name == "exp"][0]
    main = [e for e in evs if e.name == "main"][0]
    assert exp.thread != main.thread
    assert main.self_cpu_time_total == main.cpu_time_total  # no child on its own thread


def test_custom_function_backward_is_an_event():
    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x ** 2

    x = torch.ones(3, requires_grad=True)
    with profile() as prof:
        Cube.apply(x).sum().backward()
    events = {e.key: e for e in prof.key_averages()}
    assert events["CubeBackward"].count == 1
    assert events["CubeBackward"].cpu_time_total > 0


def test_disabled_profile_records_nothing():
    with profile(enabled=False) as prof:
        torch.ones(2) + 1
    assert len(prof.function_events) == 0
