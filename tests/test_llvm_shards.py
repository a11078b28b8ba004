"""A batch of kernels split into shards compiled on two threads (NOTE (parallel batches) in
runtime.llvm_shards): the same machine code as one module, the right values, a disk entry
per shard, and an error in one shard raised without leaving LLVM objects to crash later."""
import gc
import re

import numpy as np
import pytest

from tracegrad.runtime import cpu_program, llvm_jit, llvm_shards

from test_compile_speed import private_cache  # noqa: F401 (autouse: a cache of each test's own)


def _kernel(k: int, terms: int = 12) -> str:
    """out[i] = x[i]^2 * (k+1) + x[i]^3 * (k+2) + ... : a vectorisable loop of ``terms``
    products, different for every ``k`` (so every source has its own cache key)."""
    lines = ["define void @poly(i64 %s, i64 %e, ptr noalias %out, ptr noalias %x) {",
             "entry:", "  %c0 = icmp slt i64 %s, %e", "  br i1 %c0, label %loop, label %done",
             "loop:", "  %i = phi i64 [%s, %entry], [%i1, %loop]",
             "  %px = getelementptr double, ptr %x, i64 %i", "  %v = load double, ptr %px",
             "  %p0 = fmul double %v, 1.0", "  %a0 = fmul double %v, 0.0"]
    for t in range(1, terms + 1):
        lines += [f"  %p{t} = fmul double %p{t - 1}, %v",
                  f"  %m{t} = fmul double %p{t}, {float(k + t)}",
                  f"  %a{t} = fadd double %a{t - 1}, %m{t}"]
    lines += ["  %po = getelementptr double, ptr %out, i64 %i", f"  store double %a{terms}, ptr %po",
              "  %i1 = add i64 %i, 1", "  %c = icmp slt i64 %i1, %e",
              "  br i1 %c, label %loop, label %done", "done:", "  ret void", "}", ""]
    return "\n".join(lines)


def _expected(k: int, x: np.ndarray, terms: int = 12) -> np.ndarray:
    out, p = np.zeros_like(x), x.copy()
    for t in range(1, terms + 1):
        p = p * x
        out = out + p * float(k + t)
    return out


def _body(ir: str) -> str:
    """The one ``define ... }`` of a member's optimized IR, with attribute group and
    metadata numbers (which count per module) left out."""
    body = ir[ir.index("define"):]
    body = body[:body.index("\n}") + 2]
    return re.sub(r"([#!])\d+", r"\1", body)


SOURCES = [_kernel(k) for k in range(5)]


def test_split_balances_lines_keeps_order_and_leaves_small_batches_whole():
    pending = {f"k{j}": "x\n" * n for j, n in enumerate((40, 200, 60, 120, 30))}
    shards = llvm_shards.split(pending, 2)
    assert [list(s) for s in shards] == [["k1", "k4"], ["k0", "k2", "k3"]]
    assert sorted(k for s in shards for k in s) == sorted(pending)
    assert llvm_shards.split(pending, 2) == shards            # the same batch, the same split
    assert llvm_shards.split(dict(list(pending.items())[:2]), 2) == [dict(list(pending.items())[:2])]
    assert llvm_shards.split({"a": "x\n", "b": "y\n", "c": "z\n"}, 2) == [
        {"a": "x\n", "b": "y\n", "c": "z\n"}]                   # under MIN_LINES: one module
    assert llvm_shards.split(pending, 1) == [pending]


def test_shards_make_the_code_one_module_makes_and_compute_the_values(monkeypatch):
    assert len(llvm_shards.split(dict(enumerate(SOURCES)), 2)) == 2
    monkeypatch.setattr(llvm_shards, "SHARDS", 1)
    batches = []
    real = llvm_jit._batch_from_sources
    monkeypatch.setattr(llvm_jit, "_batch_from_sources",
                        lambda pending, *a: (batches.append(len(pending)), real(pending, *a))[1])
    whole = llvm_jit.compile_llvm_many(SOURCES, "poly")
    assert batches == [5]
    whole_ir = [_body(m.optimized_ir) for m in whole]
    llvm_jit.clear_memory_cache()
    cpu_program._RENDERED.clear()
    monkeypatch.setattr(llvm_shards, "SHARDS", 2)
    monkeypatch.setattr(llvm_jit, "_load_batch", lambda *a: None)   # build, never load
    sharded = llvm_jit.compile_llvm_many(SOURCES, "poly")
    assert sorted(batches[1:]) == [2, 3]                          # two shards this time
    assert len({id(m.engine) for m in sharded}) == 1              # one shared engine
    assert [_body(m.optimized_ir) for m in sharded] == whole_ir
    assert "<8 x double>" in whole_ir[0] or "<4 x double>" in whole_ir[0]   # vectorised
    x = np.linspace(-1.5, 1.5, 37)
    for k, m in enumerate(sharded):
        out = np.zeros_like(x)
        m.functions["poly"](len(x), [out, x])
        np.testing.assert_allclose(out, _expected(k, x), rtol=1e-12)


def test_every_shard_has_a_disk_entry_a_later_process_loads(monkeypatch):
    llvm_jit.compile_llvm_many(SOURCES, "poly")
    llvm_jit.clear_memory_cache()
    emitted = []
    real = llvm_jit._emit
    monkeypatch.setattr(llvm_jit, "_emit", lambda *a: (emitted.append(1), real(*a))[1])
    again = llvm_jit.compile_llvm_many(SOURCES, "poly")
    assert not emitted and all(m.from_disk_cache for m in again)
    x = np.arange(5.0)
    out = np.zeros_like(x)
    again[3].functions["poly"](5, [out, x])
    np.testing.assert_allclose(out, _expected(3, x), rtol=1e-12)


def test_an_error_in_one_shard_is_raised_and_leaves_nothing_to_crash_later():
    bad = SOURCES[:4] + [SOURCES[4].replace("%a12, ptr %po", "%nowhere, ptr %po")]
    with pytest.raises(RuntimeError):
        llvm_jit.compile_llvm_many(bad, "poly")
    gc.collect()   # modules of a failed shard were closed before their context
    good = llvm_jit.compile_llvm_many(SOURCES, "poly")
    out = np.zeros(3)
    good[4].functions["poly"](3, [out, np.ones(3)])
    np.testing.assert_allclose(out, _expected(4, np.ones(3)), rtol=1e-12)


def test_a_failure_on_the_other_thread_reaches_the_caller():
    def work(k, item):
        if k == 1:
            raise ValueError(f"shard {item}")
        return item * 2
    assert llvm_shards.run_all(work, [3]) == [6]
    assert llvm_shards.run_all(work, []) == []
    with pytest.raises(ValueError, match="shard b"):
        llvm_shards.run_all(work, ["a", "b"])
