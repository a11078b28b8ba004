"""runtime.disk_cache NOTE (deferred writes): a compile's cache entries are written on a
thread after it; what lands on disk is whole and loads, and nothing reads it half-done."""
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import tracegrad
from tracegrad.runtime import cpu_program, disk_cache, helper_thread, llvm_jit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TRACEGRAD_DISABLE_DISK_CACHE", raising=False)
    disk_cache.flush()   # an earlier test's writes go to its own folder first
    llvm_jit.clear_memory_cache()


def _fn(x):
    return tracegrad.softmax(x * 1.25, dim=-1)


def _x():
    return tracegrad.from_numpy(np.linspace(-2, 2, 48, dtype=np.float32).reshape(4, 12))


def _entries(tmp_path):
    folder = tmp_path / "llvm"
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".")) \
        if folder.exists() else []


def test_a_compile_returns_before_its_entries_are_written_and_they_load(tmp_path, monkeypatch):
    release = threading.Event()
    write_now = disk_cache._write_now

    def slow_write(*job):
        if helper_thread.on_helper():
            release.wait(30)   # the helper thread waits; the compiled call must not
        write_now(*job)

    monkeypatch.setattr(disk_cache, "_write_now", slow_write)
    done = threading.Event()
    got = {}

    def call():
        got["out"] = tracegrad.compile(_fn)(_x()).numpy()
        done.set()

    caller = threading.Thread(target=call)
    caller.start()
    assert done.wait(60), "the compiled call waited for its cache writes"
    assert not _entries(tmp_path)   # nothing on disk yet: all queued
    release.set()
    disk_cache.flush()
    entries = _entries(tmp_path)
    assert {p.suffix for p in entries} >= {".plan"} and len(entries) >= 2
    for p in entries:   # each whole: the digest over every byte matches
        assert disk_cache._decode(p.read_bytes())
    caller.join()
    np.testing.assert_allclose(got["out"], _fn(_x()).numpy(), rtol=1e-6, atol=1e-7)
    # a fresh start finds every kernel on disk: no LLVM
    llvm_jit.clear_memory_cache()
    cpu_program._RENDERED.clear()
    emits = []
    monkeypatch.setattr(llvm_jit, "_emit", lambda *a: emits.append(a) or None)
    again = tracegrad.compile(_fn)(_x()).numpy()
    assert emits == [] and np.array_equal(again, got["out"])


def test_a_read_of_a_queued_entry_waits_for_it(tmp_path):
    with disk_cache.deferred():
        disk_cache.store_blob("k" * 64, "plan", b"payload", {"n": 1})
        assert not _entries(tmp_path)
        # inside the block, the reader writes the queue itself
        assert disk_cache.load_blob("k" * 64, "plan") == (b"payload", {"n": 1})
    with disk_cache.deferred():
        disk_cache.store_blob("j" * 64, "plan", b"other", {})
    assert disk_cache.load_blob("j" * 64, "plan") == (b"other", {})
    assert disk_cache.cache_size_bytes() > 0


def test_a_header_dict_changed_after_the_store_is_stored_as_it_was(tmp_path):
    meta = {"n": 1}
    with disk_cache.deferred():
        disk_cache.store_blob("m" * 64, "plan", b"x", meta)
        meta["n"] = 2
    assert disk_cache.load_blob("m" * 64, "plan") == (b"x", {"n": 1})


CRASH = """
import os, numpy as np, tracegrad
from tracegrad.runtime import disk_cache
real = os.replace
def crash(src, dst):
    if dst.endswith(".plan"):
        os._exit(3)   # killed between the temporary file and its rename
    real(src, dst)
os.replace = crash
x = tracegrad.from_numpy(np.linspace(-2, 2, 48, dtype=np.float32).reshape(4, 12))
tracegrad.compile(lambda x: tracegrad.softmax(x * 1.25, dim=-1))(x)
disk_cache.flush()
"""

EXIT_AT_ONCE = """
import numpy as np, tracegrad
x = tracegrad.from_numpy(np.linspace(-2, 2, 48, dtype=np.float32).reshape(4, 12))
print(tracegrad.compile(lambda x: tracegrad.softmax(x * 1.25, dim=-1))(x).numpy().sum())
"""


def _run(script, tmp_path):
    env = dict(os.environ, TRACEGRAD_CACHE_DIR=str(tmp_path),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_crash_between_the_temporary_file_and_the_rename_leaves_no_entry(tmp_path):
    res = _run(CRASH, tmp_path)
    assert res.returncode == 3, res.stderr[-2000:]
    assert not [p for p in _entries(tmp_path) if p.suffix == ".plan"]
    for p in _entries(tmp_path):   # what did land is whole
        assert disk_cache._decode(p.read_bytes())
    res = _run(EXIT_AT_ONCE, tmp_path)   # the next process plans again and stores it
    assert res.returncode == 0, res.stderr[-2000:]
    assert [p for p in _entries(tmp_path) if p.suffix == ".plan"]


def test_a_process_that_exits_right_after_its_compile_leaves_whole_entries(tmp_path):
    res = _run(EXIT_AT_ONCE, tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    entries = _entries(tmp_path)
    assert [p for p in entries if p.suffix == ".plan"]
    for p in entries:
        assert disk_cache._decode(p.read_bytes())
