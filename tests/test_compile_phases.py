"""Where compile time goes: ``codegen.phase_clock``, each compiled signature's
``phase_seconds`` and the dump index's table of them."""
import threading

import numpy as np

import tracegrad
from tracegrad.codegen import phase_clock
from tracegrad.runtime import llvm_jit


def test_phase_clock_counts_this_thread_only():
    before = phase_clock.totals()

    def elsewhere():
        with phase_clock.phase("render"):
            pass
    t = threading.Thread(target=elsewhere)
    t.start()
    t.join()
    with phase_clock.phase("lower"):
        sum(range(1000))
    spent = phase_clock.since(before)
    assert set(spent) == {"lower"} and spent["lower"] > 0


def _compile_once(x):
    f = tracegrad.compile(lambda t: tracegrad.softmax(t * 2.0, dim=-1).sum(-1))
    f(x)
    (entry,) = f._cache.values()
    return entry


def test_cold_compile_is_split_into_phases_and_a_warm_one_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    llvm_jit.clear_memory_cache()
    x = tracegrad.from_numpy(np.random.default_rng(0).standard_normal((8, 40), np.float32))
    cold = _compile_once(x).phase_seconds
    # a first call's fit only looks for dims that changed (none yet): no probes
    assert list(cold) == [*phase_clock.PHASES, phase_clock.FIT_PHASE]
    assert cold[phase_clock.FIT_PHASE] < 0.1 * sum(cold.values())
    for name in ("trace", "passes", "lower", "render", "llvm opt", "codegen"):
        assert cold[name] > 0, (name, cold)
    assert cold["load"] == 0
    llvm_jit.clear_memory_cache()  # the kernels now come from the disk cache
    entry = _compile_once(x)
    warm = entry.phase_seconds
    assert warm["load"] > 0 and warm["llvm opt"] == 0 and warm["codegen"] == 0
    assert sum(warm.values()) <= entry.compile_seconds


def test_dump_index_has_a_row_of_phases_per_signature(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TRACEGRAD_DUMP", str(tmp_path / "dump"))
    llvm_jit.clear_memory_cache()
    f = tracegrad.compile(lambda t: (t.exp() + 1).log())
    for n in (3, 5):
        f(tracegrad.ones(n, 4))
    index = (tmp_path / "dump" / "index.md").read_text()
    table = index.split("## where compile time goes (ms)")[1].split("## kernels")[0]
    header, _, *rows = [ln for ln in table.splitlines() if ln.startswith("|")]
    columns = (*phase_clock.PHASES, phase_clock.FIT_PHASE)
    assert header == "| folder | " + " | ".join(columns) + " | total |"
    assert len(rows) == 2
    fits = []
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        numbers = [float(c) for c in cells[1:]]
        assert len(numbers) == len(columns) + 1
        assert sum(numbers[:-1]) <= numbers[-1] + 0.2  # phases fit in the total (rounding)
        fits.append(numbers[-2])
    # the second size is fitted as a symbolic program (dynamic=None): most of its total
    assert fits[0] == 0 and fits[1] > 0.5 * float(rows[1].strip("|").split("|")[-1])


def test_a_kernel_body_is_rendered_once_per_process(tmp_path, monkeypatch):
    # the program of an RNN at another length repeats most kernels: no second render
    from codegen_testing import Builder
    from tracegrad.codegen.schedule import plan
    from tracegrad.runtime.cpu_program import CompiledProgram

    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    b = Builder()
    x = b.input((5, 23))
    graph = b.graph(b.tanh(b.mul(x, b.const(1.7))))
    xs = [np.linspace(-3, 3, 115, dtype=np.float32).reshape(5, 23)]
    outs = []
    for attempt in range(2):
        before = phase_clock.totals()
        outs.append(CompiledProgram(plan(graph), None)(xs)[0])
        rendered = phase_clock.since(before).get("render", 0.0)
        assert (rendered > 0) if attempt == 0 else (rendered == 0)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_allclose(outs[0], np.tanh(xs[0] * np.float32(1.7)), rtol=1e-5, atol=1e-6)
