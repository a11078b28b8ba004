"""runtime.disk_cache: a second compile (in this or another process) skips LLVM;
corrupt entries are rebuilt, never trusted."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
try:
    from tracegrad.runtime import disk_cache, llvm_jit
    PREFIX = "tracegrad.runtime"
except ImportError:  # package not installed yet: import the folders directly
    sys.path.insert(0, str(ROOT))
    from tracegrad.runtime import disk_cache, llvm_jit
    PREFIX = "runtime"

SRC = """define void @scale(i64 %s, i64 %e, ptr noalias %out, ptr noalias %x, double %a) {
entry:
  %c0 = icmp slt i64 %s, %e
  br i1 %c0, label %loop, label %done
loop:
  %i = phi i64 [%s, %entry], [%i1, %loop]
  %px = getelementptr double, ptr %x, i64 %i
  %v = load double, ptr %px
  %w = fmul double %v, %a
  %po = getelementptr double, ptr %out, i64 %i
  store double %w, ptr %po
  %i1 = add i64 %i, 1
  %c = icmp slt i64 %i1, %e
  br i1 %c, label %loop, label %done
done:
  ret void
}
"""


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TRACEGRAD_DISABLE_DISK_CACHE", raising=False)
    llvm_jit.clear_memory_cache()


def run_scale(cm):
    x = np.arange(100.0)
    out = np.empty_like(x)
    cm.functions["scale"](100, [out, x], [3.0])
    return out


def entry_path():
    return Path(disk_cache.cache_dir()) / "llvm" / f"{llvm_jit.cache_key(SRC)}.tgc"


def test_second_compile_loads_object_code():
    first = llvm_jit.compile_llvm(SRC, ["scale"])
    assert not first.from_disk_cache and entry_path().exists()
    llvm_jit.clear_memory_cache()
    second = llvm_jit.compile_llvm(SRC, ["scale"])
    assert second.from_disk_cache
    assert second.optimized_ir == first.optimized_ir
    np.testing.assert_array_equal(run_scale(second), np.arange(100.0) * 3)
    asm = first.assembly  # written beside the entry once made
    llvm_jit.clear_memory_cache()
    assert llvm_jit.compile_llvm(SRC, ["scale"]).assembly == asm


def test_other_process_skips_llvm_optimisation():
    llvm_jit.compile_llvm(SRC, ["scale"])
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(ROOT)!r})
        import numpy as np
        from {PREFIX} import llvm_jit
        def boom(*a):
            raise AssertionError("optimiser ran")
        llvm_jit._optimize = boom
        cm = llvm_jit.compile_llvm({SRC!r}, ["scale"])
        x = np.arange(4.0); out = np.empty(4)
        cm.functions["scale"](4, [out, x], [2.0])
        print(cm.from_disk_cache, out.tolist())
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=dict(os.environ), timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[0] == "True [0.0, 2.0, 4.0, 6.0]"


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_entry_is_rebuilt(damage):
    llvm_jit.compile_llvm(SRC, ["scale"])
    path = entry_path()
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-100] ^= 0xFF
    elif damage == "garbage":
        data = bytearray(b"not a cache entry" * 10)
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    assert disk_cache.load(llvm_jit.cache_key(SRC)) is None
    llvm_jit.clear_memory_cache()
    cm = llvm_jit.compile_llvm(SRC, ["scale"])
    assert not cm.from_disk_cache
    np.testing.assert_array_equal(run_scale(cm), np.arange(100.0) * 3)
    assert disk_cache.load(llvm_jit.cache_key(SRC)) is not None  # rewritten whole


def test_entry_that_does_not_link_is_rebuilt():
    # A well-formed entry whose object lacks the kernel (e.g. written by a buggy
    # version) must not be trusted: address 0 -> recompile.
    other = SRC.replace("@scale", "@other")
    llvm_jit.compile_llvm(other, ["other"])
    obj, ir_text, _ = disk_cache.load(llvm_jit.cache_key(other))
    disk_cache.store(llvm_jit.cache_key(SRC), obj, ir_text, {"scale": (2, 1)})
    cm = llvm_jit.compile_llvm(SRC, ["scale"])
    assert not cm.from_disk_cache
    np.testing.assert_array_equal(run_scale(cm), np.arange(100.0) * 3)


def test_disable_size_and_clear(monkeypatch):
    monkeypatch.setenv("TRACEGRAD_DISABLE_DISK_CACHE", "1")
    llvm_jit.compile_llvm(SRC, ["scale"])
    assert disk_cache.cache_size_bytes() == 0 and not entry_path().exists()
    monkeypatch.delenv("TRACEGRAD_DISABLE_DISK_CACHE")
    llvm_jit.clear_memory_cache()
    llvm_jit.compile_llvm(SRC, ["scale"])
    assert disk_cache.cache_size_bytes() > 0
    disk_cache.clear_cache()
    assert disk_cache.cache_size_bytes() == 0


def test_key_depends_on_source_and_target():
    assert llvm_jit.cache_key(SRC) != llvm_jit.cache_key(SRC + "\n")
    assert llvm_jit.cache_key(SRC) == llvm_jit.cache_key(SRC)


def test_default_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("TRACEGRAD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert disk_cache.cache_dir() == str(tmp_path / "xdg" / "tracegrad")
