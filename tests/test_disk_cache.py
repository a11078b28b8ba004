"""runtime.disk_cache: a second compile (in this or another process) skips LLVM;
corrupt entries are rebuilt, never trusted."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tracegrad.runtime import disk_cache, llvm_jit

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "tracegrad.runtime"

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


# A tiny kernel keeps an entry small (~1.3 KB), so flipping each of its bytes in turn
# and rebuilding after each flip takes seconds, not minutes.
ANSWER = """define void @answer(i64 %s, i64 %e, ptr noalias %out) {
entry:
  %p = getelementptr double, ptr %out, i64 %s
  store double 42.0, ptr %p
  ret void
}
"""


def answer_path():
    return Path(disk_cache.cache_dir()) / "llvm" / f"{llvm_jit.cache_key(ANSWER)}.tgc"


def test_every_flipped_byte_is_detected_and_rebuilt():
    llvm_jit.compile_llvm(ANSWER, ["answer"])
    path, key = answer_path(), llvm_jit.cache_key(ANSWER)
    size = len(path.read_bytes())
    for pos in range(size):
        data = bytearray(path.read_bytes())
        data[pos % len(data)] ^= 0xFF
        path.write_bytes(bytes(data))
        llvm_jit.clear_memory_cache()  # a fresh load: the in-memory cache bypassed
        cm = llvm_jit.compile_llvm(ANSWER, ["answer"])
        assert not cm.from_disk_cache, f"a flip at byte {pos} was trusted"
        out = np.zeros(1)
        cm.functions["answer"](1, [out])
        assert out[0] == 42.0, pos
        assert disk_cache.load(key) is not None, f"not rebuilt after a flip at byte {pos}"


def test_header_digit_flip_cannot_change_the_signature():
    # once: the checksum covered the payload only, and the signature (2 buffers,
    # 1 scalar) came from the header, so "2" -> "3" made ctypes pass a wrong argument list
    llvm_jit.compile_llvm(SRC, ["scale"])
    data = entry_path().read_bytes()
    at = data.index(b'"scale": [2, 1]') + len(b'"scale": [')
    entry_path().write_bytes(data[:at] + b"3" + data[at + 1:])
    llvm_jit.clear_memory_cache()
    cm = llvm_jit.compile_llvm(SRC, ["scale"])
    assert not cm.from_disk_cache and cm.functions["scale"].n_buffers == 2
    np.testing.assert_array_equal(run_scale(cm), np.arange(100.0) * 3)


def test_signature_is_checked_against_the_source_even_with_a_valid_digest():
    # an entry written whole (digest fine) but with a wrong signature, as a buggy
    # writer would leave it: checked against the source before any call
    llvm_jit.compile_llvm(SRC, ["scale"])
    key = llvm_jit.cache_key(SRC)
    obj, ir_text, sigs = disk_cache.load(key)
    assert sigs == {"scale": (2, 1)}
    disk_cache.store(key, obj, ir_text, {"scale": (3, 0)})
    llvm_jit.clear_memory_cache()
    cm = llvm_jit.compile_llvm(SRC, ["scale"])
    assert not cm.from_disk_cache
    np.testing.assert_array_equal(run_scale(cm), np.arange(100.0) * 3)
    assert disk_cache.load(key)[2] == {"scale": (2, 1)}  # rebuilt


@pytest.mark.parametrize("meta", [{}, {"signatures": "x"}, {"signatures": {"scale": [2]}},
                                  {"signatures": {"scale": [-1, 1]}}])
def test_damaged_header_keys_are_a_miss_not_a_key_error(meta):
    llvm_jit.compile_llvm(SRC, ["scale"])
    key = llvm_jit.cache_key(SRC)
    obj, ir_text, _ = disk_cache.load(key)
    entry_path().write_bytes(disk_cache._encode([obj, ir_text.encode()], meta))
    assert disk_cache.load(key) is None and not entry_path().exists()
    llvm_jit.clear_memory_cache()
    np.testing.assert_array_equal(run_scale(llvm_jit.compile_llvm(SRC, ["scale"])),
                                  np.arange(100.0) * 3)
    assert disk_cache.load(key) is not None


def test_header_that_is_not_json_or_lacks_sizes_is_a_miss():
    body_sizes = disk_cache._encode([b"abc"], {})
    assert disk_cache._decode(body_sizes)[0] == [b"abc"]
    for header in (b"[1, 2]", b"{not json", b'{"format": 2}', b'{"format": 2, "sizes": [9]}'):
        body = disk_cache.MAGIC + disk_cache._LEN.pack(len(header)) + header + b"abc"
        import hashlib
        with pytest.raises(disk_cache.CorruptEntry):
            disk_cache._decode(body + hashlib.sha256(body).digest())


COMPILED_CALL = """
import os, sys, warnings
import numpy as np
import tracegrad as torch
warnings.simplefilter("error")   # a fallback warning fails the run

@torch.compile
def f(x, w):
    return torch.tanh(x @ w) * 2 + x.sum(1, keepdim=True)

x = torch.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4))
w = torch.tensor(np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5))
want = np.tanh(x.numpy() @ w.numpy()) * 2 + x.numpy().sum(1, keepdims=True)
np.testing.assert_allclose(f(x, w).numpy(), want, rtol=1e-5, atol=1e-6)
print("ok")
"""


def test_new_process_after_flips_is_right_and_rebuilds(tmp_path):
    env = dict(os.environ, TRACEGRAD_CACHE_DIR=str(tmp_path / "cache"),
               TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()

    def run():
        res = subprocess.run([sys.executable, "-c", COMPILED_CALL], capture_output=True,
                             text=True, env=env, timeout=120)
        assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-3000:]

    run()
    entries = sorted((tmp_path / "cache" / "llvm").glob("*.tgc"))
    assert entries
    size = min(len(p.read_bytes()) for p in entries)
    # a sample: the magic, the header length, the header, the object code, the digest
    for pos in (0, 9, 30, size // 2, size - 1):
        for p in entries:
            data = bytearray(p.read_bytes())
            data[pos] ^= 0x01
            p.write_bytes(bytes(data))
        run()
        for p in entries:
            assert disk_cache._decode(p.read_bytes()), f"{p.name} not rebuilt (byte {pos})"
    assert not list((tmp_path / "tmp").glob("tracegrad-failed-*"))


def test_every_flipped_byte_of_a_batch_entry_is_refused():
    # a batch entry (llvm_jit's NOTE (one module per batch)): one object, several members
    sources = [SRC, SRC.replace("fmul", "fadd")]
    llvm_jit.compile_llvm_many(sources, "scale")
    key = llvm_jit._batch_key([llvm_jit.cache_key(s) for s in sources])
    path = Path(disk_cache.cache_dir()) / "llvm" / f"{key}.tgb"
    good = path.read_bytes()
    assert disk_cache.load_batch(key) is not None
    for pos in range(0, len(good), max(1, len(good) // 400)):
        bad = bytearray(good)
        bad[pos] ^= 0x01
        path.write_bytes(bytes(bad))
        assert disk_cache.load_batch(key) is None, pos
        assert not path.exists()   # deleted: rebuilt by the next compile
    path.write_bytes(good)
    llvm_jit.clear_memory_cache()
    modules = llvm_jit.compile_llvm_many(sources, "scale")
    assert all(m.from_disk_cache for m in modules)
    np.testing.assert_array_equal(run_scale(modules[0]), np.arange(100.0) * 3.0)
    np.testing.assert_array_equal(run_scale(modules[1]), np.arange(100.0) + 3.0)
