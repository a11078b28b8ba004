"""Threads calling one compiled function with other int arguments at once (NOTE (int
arguments across threads) in tracegrad/compiler/int_signature.py): every result equals
eager, and no call raises, while the threads trace, guard and specialise concurrently."""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import tracegrad as torch


def _step(x, i, j):
    y = x * i
    if (i + j) % 3 == 0:   # an int guard
        y = y + j
    if i > 20:
        y = y[: j % 5 + 2] * 2.0   # an escape: j specialised
    return y - j / 7


@pytest.mark.filterwarnings("ignore:compile.*signatures")
@pytest.mark.parametrize("dynamic", [None, True])
def test_four_threads_with_other_ints_trace_and_replay_as_eager(dynamic):
    xs = [torch.tensor(np.arange(n, dtype=np.float32)) for n in (12, 13, 14, 15)]
    compiled = torch.compile(_step, dynamic=dynamic)
    wrong, failed = [], []
    start = threading.Barrier(4)

    def work(seed):
        rng = np.random.default_rng(seed)
        start.wait()
        for _ in range(60):
            i, j = int(rng.integers(2, 40)), int(rng.integers(2, 12))
            x = xs[int(rng.integers(0, 4))]   # a new size makes a symbolic group
            try:
                got, want = compiled(x, i, j).numpy(), _step(x, i, j).numpy()
            except Exception as e:  # noqa: BLE001 - collected: the test names it
                failed.append(f"{type(e).__name__}: {e}")
                continue
            if got.shape != want.shape or not np.array_equal(got, want):
                wrong.append((i, j))
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)   # switch threads often: the races show in fewer calls
    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not failed, failed[:3]
    assert not wrong, wrong[:5]
