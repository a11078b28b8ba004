"""runtime.helper_thread NOTE (one helper thread): a compile's side work (page warming,
cache writes) goes to one long-lived thread; a cold compile starts no thread of its own."""
import os
import threading

import numpy as np
import pytest

import tracegrad
from tracegrad.runtime import cpu_program, helper_thread, llvm_jit


def test_tasks_run_in_order_and_a_failing_one_does_not_stop_the_next():
    seen = []

    def boom():
        raise ValueError("a task's own failure")

    tasks = [helper_thread.submit(seen.append, 1), helper_thread.submit(boom),
             helper_thread.submit(seen.append, 2)]
    assert all(t.join(30) for t in tasks)
    assert seen == [1, 2]
    assert helper_thread.submit(helper_thread.on_helper).join(30)
    assert not helper_thread.on_helper()


def test_a_cold_compile_starts_no_thread(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    x = tracegrad.from_numpy(np.linspace(-1, 1, 512 * 1024, dtype=np.float32).reshape(512, 1024))
    tracegrad.compile(lambda t: t * 3.0)(x)   # the helper (and any pool) exists from here
    llvm_jit.clear_memory_cache()
    cpu_program._RENDERED.clear()
    started = []
    real_start = threading.Thread.start

    def counting_start(self):
        started.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    fn = tracegrad.compile(lambda t: tracegrad.softmax(t * 2.0, dim=-1))
    got = fn(x).numpy()   # 2 MiB result: warmed in advance; entries written after
    assert started == []
    np.testing.assert_allclose(got, tracegrad.softmax(x * 2.0, dim=-1).numpy(),
                               rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_gets_a_helper_of_its_own():
    helper_thread.submit(lambda: None).join(30)   # the parent's helper runs
    pid = os.fork()
    if pid == 0:
        seen = []
        ok = helper_thread.submit(seen.append, 1).join(10) and seen == [1]
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
