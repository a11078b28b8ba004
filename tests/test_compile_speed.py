"""Compile-speed machinery: what it skips must never change an answer.

Glue code (a program's driver) compiles at O0 (NOTE (glue at O0) in runtime.llvm_jit);
identical kernels are compiled once; warm loads skip LLVM's passes."""
import numpy as np
import pytest

import tracegrad
from tracegrad.runtime import cpu_program, disk_cache, llvm_jit, llvm_shards

from test_runtime_jit import AXPY


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    llvm_jit.clear_memory_cache()
    cpu_program._RENDERED.clear()


def test_opt_level_0_runs_the_same_kernel_under_its_own_key():
    assert llvm_jit.cache_key(AXPY, 0) != llvm_jit.cache_key(AXPY, 3)
    assert llvm_jit.cache_key(AXPY) == llvm_jit.cache_key(AXPY, 3)
    fast = llvm_jit.compile_llvm(AXPY, ["axpy"], opt_level=0)
    slow = llvm_jit.compile_llvm(AXPY, ["axpy"])
    assert fast is not slow
    x, y = np.arange(7, dtype=np.float32), np.ones(7, np.float32)
    outs = [np.zeros(7, np.float32), np.zeros(7, np.float32)]
    for module, out in zip((fast, slow), outs):
        module.functions["axpy"](7, [out, x, y], [2.0])
    np.testing.assert_array_equal(outs[0], 2 * x + 1)
    np.testing.assert_array_equal(outs[1], outs[0])
    # O0 ran no IR pass: the optimised text still has the source's loop, not a vector one
    assert "<8 x float>" not in fast.optimized_ir and "<16 x float>" not in fast.optimized_ir


def test_opt_level_must_be_a_known_one():
    with pytest.raises(ValueError, match=r"compile_llvm: opt_level must be one of \(0, 3\), got 2"):
        llvm_jit.compile_llvm(AXPY, ["axpy"], opt_level=2)


def test_program_drivers_compile_at_o0_and_kernels_at_o3():
    w = tracegrad.randn(20, 30)
    f = tracegrad.compile(lambda x: (x.mm(w).relu() * 2).sum())
    x = tracegrad.randn(8, 20)
    np.testing.assert_allclose(f(x).numpy(), ((x.mm(w)).relu() * 2).sum().numpy(), rtol=1e-5)
    (entry,) = f._cache.values()
    program = entry.forward
    assert program.drivers
    sources = cpu_program.llvm_sources(program.program)
    for name, (module, _) in program.kernels.items():
        if name.startswith("driver"):
            source, level = program.drivers[int(name[len("driver"):])], 0
        else:
            source, level = sources[name], 3
        assert module.key == llvm_jit.cache_key(source, level)


FILL = '''define void @fill(i64 %s, i64 %e, ptr noalias %out) {
entry:
  br label %loop
loop:
  %i = phi i64 [%s, %entry], [%i1, %loop]
  %p = getelementptr double, ptr %out, i64 %i
  store double VALUE, ptr %p
  %i1 = add i64 %i, 1
  %c = icmp slt i64 %i1, %e
  br i1 %c, label %loop, label %done
done:
  ret void
}
'''


def fill_with(value: str) -> np.ndarray:
    out = np.zeros(5)
    llvm_jit.compile_llvm(FILL.replace("VALUE", value), ["fill"]).functions["fill"](5, [out])
    return out


def test_same_function_name_with_different_constants_never_shares_code():
    # NOTE (one engine): both modules define @fill and link into one engine
    a = llvm_jit.compile_llvm(FILL.replace("VALUE", "1.0"), ["fill"])
    b = llvm_jit.compile_llvm(FILL.replace("VALUE", "2.0"), ["fill"])
    assert a.engine is b.engine and a.functions["fill"].address != b.functions["fill"].address
    assert fill_with("1.0").tolist() == [1.0] * 5
    assert fill_with("2.0").tolist() == [2.0] * 5
    # and again from the disk cache, into a fresh engine
    llvm_jit.clear_memory_cache()
    assert fill_with("2.0").tolist() == [2.0] * 5
    assert fill_with("1.0").tolist() == [1.0] * 5
    assert llvm_jit.compile_llvm(FILL.replace("VALUE", "1.0"), ["fill"]).from_disk_cache


def test_kernels_outlive_their_engine_generation():
    old = llvm_jit.compile_llvm(FILL.replace("VALUE", "3.0"), ["fill"]).functions["fill"]
    llvm_jit.clear_memory_cache()   # later modules go to a new engine
    new = llvm_jit.compile_llvm(FILL.replace("VALUE", "4.0"), ["fill"]).functions["fill"]
    assert old._owner.engine is not new._owner.engine
    import gc
    gc.collect()
    out = np.zeros(3)
    old(3, [out])
    assert out.tolist() == [3.0] * 3


def test_a_new_engine_starts_after_enough_objects(monkeypatch):
    monkeypatch.setattr(llvm_jit, "_ENGINE_OBJECTS", 2)
    modules = [llvm_jit.compile_llvm(FILL.replace("VALUE", f"{v}.0"), ["fill"]) for v in range(5)]
    engines = {id(m.engine) for m in modules}
    assert len(engines) == 3
    for v, m in enumerate(modules):
        out = np.zeros(2)
        m.functions["fill"](2, [out])
        assert out.tolist() == [float(v)] * 2


def _rendered_sources():
    """LLVM sources of real kernels and a driver (a small MLP step's programs)."""
    w = tracegrad.randn(20, 30, requires_grad=True)
    f = tracegrad.compile(lambda x: (x.mm(w).tanh() * 2).softmax(1).sum())
    f(tracegrad.randn(8, 20)).backward()
    entry = next(iter(f._cache.values()))
    sources = []
    for program in (entry.forward, entry.backward):
        sources += list(cpu_program.llvm_sources(program.program).values()) + program.drivers
    return sources


HELPERS = [
    AXPY,
    FILL.replace("VALUE", "1.0"),
    # not in the strict form: read through LLVM
    "define internal void @h(i64 %s, i64 %e, ptr %p) {\nentry:\n  ret void\n}\n",
    "define i64 @r(i64 %s, i64 %e) {\nentry:\n  ret i64 0\n}\n",
    "define void @k(i64 %s, i64 %e, ptr align(16) %p) {\nentry:\n  ret void\n}\n",
    # outside the kernel ABI: no signature either way
    "define void @q(i32 %s, i64 %e) {\nentry:\n  ret void\n}\n",
    "define void @d(i64 %s, i64 %e, double %x, ptr %p) {\nentry:\n  ret void\n}\n",
]


def test_signatures_read_from_text_agree_with_llvm():
    import llvmlite.binding as llvm
    sources = _rendered_sources()
    assert len(sources) >= 4
    for source in sources:   # what the renderers write is always read from the text
        assert llvm_jit._text_signatures(source) == llvm_jit._signatures(
            llvm.parse_assembly(source))
    for source in HELPERS:
        text = llvm_jit._text_signatures(source)
        assert text is None or text == llvm_jit._signatures(llvm.parse_assembly(source))
        assert llvm_jit._source_signatures(source) == llvm_jit._signatures(
            llvm.parse_assembly(source))
    assert llvm_jit._text_signatures(HELPERS[2]) is None
    assert llvm_jit._text_signatures(HELPERS[6]) == {}   # double before ptr: not the ABI


# ---- warm starts: the planned program and its sources come from the disk cache --------
from tracegrad.codegen import schedule   # noqa: E402
from tracegrad.compiler import plan_cache   # noqa: E402


def _new_process():
    """Forget everything this process compiled, as a second process would start."""
    llvm_jit.clear_memory_cache()
    cpu_program._RENDERED.clear()


def _step_fn(scale: float):
    w = tracegrad.from_numpy(np.linspace(-1, 1, 60, dtype=np.float32).reshape(6, 10))
    w.requires_grad_()

    def f(x):
        return ((x.mm(w) * scale).tanh().softmax(1) ** 2).sum()
    return f, w


def _grads(f, w, x):
    w.grad = None
    loss = f(x)
    loss.backward()
    return loss.detach().numpy().copy(), w.grad.numpy().copy()


def _counting(monkeypatch):
    calls = {"plan": 0, "render": 0, "llvm": 0}

    def count(name, real):
        def spy(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return spy
    monkeypatch.setattr(schedule, "plan", count("plan", schedule.plan))
    monkeypatch.setattr(cpu_program, "render_llvm", count("render", cpu_program.render_llvm))
    monkeypatch.setattr(llvm_jit, "_emit", count("llvm", llvm_jit._emit))
    # the renderer spy must still count as the stock renderer for the cache's sources
    monkeypatch.setattr(cpu_program, "_STOCK_RENDERER", cpu_program.render_llvm)
    return calls


def test_warm_compile_plans_renders_and_optimises_nothing(monkeypatch):
    calls = _counting(monkeypatch)
    x = tracegrad.from_numpy(np.linspace(0, 1, 18, dtype=np.float32).reshape(3, 6))
    f, w = _step_fn(1.5)
    eager = _grads(f, w, x)
    cold = _grads(tracegrad.compile(f), w, x)
    assert calls["plan"] == 2 and calls["render"] > 0 and calls["llvm"] > 0
    _new_process()
    before = dict(calls)
    warm_f = tracegrad.compile(f)
    warm = _grads(warm_f, w, x)
    assert calls == before   # trace + hash + load
    (entry,) = warm_f._cache.values()
    phases = entry.phase_seconds   # what the dump's index shows
    assert phases["load"] > 0 and phases["lower"] == phases["render"] == 0
    for got in (cold, warm):
        for a, b in zip(got, eager):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_graphs_differing_in_one_constant_never_share_a_plan(monkeypatch):
    x = tracegrad.from_numpy(np.linspace(0, 1, 18, dtype=np.float32).reshape(3, 6))
    f1, w1 = _step_fn(1.5)
    f2, w2 = _step_fn(1.5000001)   # the scale is a constant of the traced graph
    _grads(tracegrad.compile(f1), w1, x)
    _new_process()
    warm2 = _grads(tracegrad.compile(f2), w2, x)
    eager2 = _grads(f2, w2, x)
    for a, b in zip(warm2, eager2):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    from tracegrad.codegen.graph import Graph
    from tracegrad.codegen.ops import Op
    keys = []
    for value in (2.0, 2.0000000000000004, float("nan"), float("inf")):
        g = Graph()
        a = g.add(Op.INPUT, (), (3,), "float32", index=0)
        c = g.add(Op.CONST, (), (), "float32", value=value)
        g.outputs = [g.add(Op.MUL, (a.id, c.id), (3,), "float32").id]
        keys.append(plan_cache.graph_key(g, None))
    assert len(set(keys)) == 4


def test_a_corrupt_plan_entry_is_planned_again(monkeypatch, tmp_path):
    x = tracegrad.from_numpy(np.linspace(0, 1, 18, dtype=np.float32).reshape(3, 6))
    f, w = _step_fn(0.5)
    eager = _grads(f, w, x)
    _grads(tracegrad.compile(f), w, x)
    disk_cache.flush()   # NOTE (deferred writes): written on a thread after the compile
    entries = list((tmp_path / "llvm").glob("*.plan"))
    assert len(entries) == 2   # forward and backward
    for path in entries:   # valid digests around bytes that are no pickle of a Program
        disk_cache.store_blob(path.stem, "plan", b"\x80\x05K\x01.", {})
    _new_process()
    calls = _counting(monkeypatch)
    warm = _grads(tracegrad.compile(f), w, x)
    assert calls["plan"] == 2
    for a, b in zip(warm, eager):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    disk_cache.flush()
    assert len(list((tmp_path / "llvm").glob("*.plan"))) == 2   # rewritten whole


def test_an_attribute_the_key_cannot_write_is_planned_every_time():
    from tracegrad.codegen.graph import Graph
    from tracegrad.codegen.ops import Op
    g = Graph()
    a = g.add(Op.INPUT, (), (3,), "float32", index=0)
    g.outputs = [g.add(Op.MUL, (a.id, a.id), (3,), "float32", note=object()).id]
    with pytest.raises(plan_cache.Uncacheable, match="object attribute"):
        plan_cache.graph_key(g, None)


# ---- a program's uncached kernels compile as one module (NOTE (one module per batch)) --
def _softmax_mlp():
    w = tracegrad.from_numpy(np.linspace(-1, 1, 200, dtype=np.float32).reshape(10, 20))
    w.requires_grad_()
    x = tracegrad.from_numpy(np.linspace(-2, 2, 40, dtype=np.float32).reshape(4, 10))
    return (lambda x: (x.mm(w).tanh().log_softmax(1) * 3).exp().sum()), w, x


def test_kernels_missing_every_cache_are_optimised_as_one_module(monkeypatch):
    optimised = []
    real = llvm_jit._optimize
    monkeypatch.setattr(llvm_jit, "_optimize", lambda *args: (optimised.append(1), real(*args)))
    f, w, x = _softmax_mlp()
    eager = _grads(f, w, x)
    cf = tracegrad.compile(f)
    cold = _grads(cf, w, x)
    (entry,) = cf._cache.values()
    n_kernels = len(entry.forward_plan.kernels) + len(entry.backward_plan.kernels)
    # one batch per program, in at most SHARDS modules (NOTE (parallel batches))
    assert n_kernels >= 4 and len(optimised) <= 2 * llvm_shards.SHARDS
    engines = {id(m.engine) for m, _ in entry.forward.kernels.values()}
    assert len(engines) == 1
    for a, b in zip(cold, eager):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # each member's optimised IR stands alone (the dump shows it, assembly parses it)
    module = entry.forward.kernels[entry.forward_plan.kernels[0].name][0]
    assert "ret void" in module.optimized_ir and module.assembly


def test_a_batch_loads_whole_from_disk_and_a_damaged_one_is_rebuilt(monkeypatch, tmp_path):
    f, w, x = _softmax_mlp()
    eager = _grads(f, w, x)
    _grads(tracegrad.compile(f), w, x)
    disk_cache.flush()   # NOTE (deferred writes)
    batches = sorted((tmp_path / "llvm").glob("*.tgb"))
    assert batches
    _new_process()
    calls = _counting(monkeypatch)
    warm = _grads(tracegrad.compile(f), w, x)
    assert calls["llvm"] == 0
    # damage every batch entry: a flipped byte fails the digest, the entry is rebuilt
    for path in batches:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    entry = disk_cache.load_batch(batches[0].stem)
    assert entry is None and not batches[0].exists()
    _new_process()
    again = _grads(tracegrad.compile(f), w, x)
    assert calls["llvm"] > 0
    for got in (warm, again):
        for a, b in zip(got, eager):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_batch_entry_of_other_kernels_is_never_used(tmp_path):
    sources = [FILL.replace("VALUE", f"{v}.0") for v in (5, 6)]
    llvm_jit.compile_llvm_many(sources[:2], "fill")
    other = [FILL.replace("VALUE", f"{v}.0") for v in (8, 9)]
    llvm_jit.compile_llvm_many(other, "fill")
    keys = [llvm_jit.cache_key(s) for s in sources[:2]]
    okeys = [llvm_jit.cache_key(s) for s in other]
    obj, _, texts, sigs = disk_cache.load_batch(llvm_jit._batch_key(okeys))
    disk_cache.store_batch(llvm_jit._batch_key(keys), obj, okeys, texts, sigs)  # swapped in
    llvm_jit.clear_memory_cache()
    modules = llvm_jit.compile_llvm_many(sources[:2], "fill")
    assert not modules[0].from_disk_cache   # the entry was refused and rebuilt
    for v, m in zip((5, 6), modules):
        out = np.zeros(2)
        m.functions["fill"](2, [out])
        assert out.tolist() == [float(v)] * 2
