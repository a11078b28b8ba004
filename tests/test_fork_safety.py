"""A forked child (a DataLoader worker, a plain os.fork) can call compiled functions after
the parent ran a parallel kernel: the kernel thread pool is reset in the child.

Each scenario runs in its own interpreter under a timeout, so a hang fails the test
instead of stalling the suite."""
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

PRELUDE = textwrap.dedent("""
    import os, sys
    import numpy as np
    import tracegrad as torch
    from tracegrad.runtime import cpu_threads, native_pool

    torch.set_num_threads(2)  # a parallel split even where the affinity mask has one core

    @torch.compile
    def scaled_tanh(x):
        return torch.tanh(x) * 3 + 1

    big = torch.tensor(np.linspace(-2, 2, 1 << 18, dtype=np.float32).reshape(512, 512))
    ref = np.tanh(big.numpy()) * 3 + 1
    np.testing.assert_allclose(scaled_tanh(big).numpy(), ref, rtol=1e-5, atol=1e-5)
    used = cpu_threads._pool is not None or native_pool._pool is not None   # either pool
    assert used, "the parent must have used the thread pool"
""")


def run_script(body: str) -> str:
    env = dict(os.environ)
    res = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(body)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return res.stdout


def test_plain_fork_child_runs_a_parallel_compiled_call():
    out = run_script("""
        pid = os.fork()
        if pid == 0:
            try:
                got = scaled_tanh(big).numpy()   # parallel again, in the child
                ok = np.allclose(got, ref, rtol=1e-5, atol=1e-5)
            except BaseException:
                ok = False
            os._exit(0 if ok else 3)
        import time
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            sys.exit("the forked child hung")
        print("child exit", os.waitstatus_to_exitcode(status))
    """)
    assert out.strip() == "child exit 0"


def test_dataloader_workers_call_a_compiled_function():
    out = run_script("""
        from tracegrad.utils.data import DataLoader, Dataset

        class Rows(Dataset):
            def __len__(self):
                return 8

            def __getitem__(self, i):
                row = torch.tensor(np.full((256, 512), i, dtype=np.float32))
                return scaled_tanh(row)   # 128k elements: a parallel kernel

        loader = DataLoader(Rows(), batch_size=2, num_workers=2, timeout=60)
        got = [b.numpy() for b in loader]
        assert len(got) == 4
        for k, batch in enumerate(got):
            want = np.tanh(np.array([2 * k, 2 * k + 1], np.float32))[:, None, None] * 3 + 1
            np.testing.assert_allclose(batch, np.broadcast_to(want, batch.shape), rtol=1e-5)
        print("ok")
    """)
    assert out.strip() == "ok"
