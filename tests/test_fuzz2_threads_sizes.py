"""Compiled programs under concurrency and many sizes, against eager:

- several Python threads, each with its own ``dynamic=True`` function and all sharing a
  second one, at random batch sizes with big gemms (split over tracegrad's pool), forward
  and backward; OpenBLAS's thread count is the same after as before;
- one symbolic function called at more sizes than a group keeps (MAX_KEPT), then at the
  first sizes again, with every earlier result held and checked unchanged at the end."""
from __future__ import annotations

import threading

import numpy as np

import tracegrad as tg
import tracegrad.nn.functional as F
from tracegrad.compiler.dynamic import SymbolicGroup
from tracegrad.runtime import blas_threads
from threads_testing import kernel_threads

FEATURES = 256


def _fn(x, w):
    h = F.relu(x @ w)
    return F.log_softmax(h, 1).sum(0), (h @ w.t()).mean(1)


def _grads(fn, x, w):
    xt, wt = tg.tensor(x, requires_grad=True), tg.tensor(w, requires_grad=True)
    outs = fn(xt, wt)
    (outs[0].sum() + outs[1].sum()).backward()
    return [o.detach().numpy() for o in outs] + [xt.grad.numpy(), wt.grad.numpy()]


def test_threads_with_own_and_shared_symbolic_functions_match_eager():
    w = np.random.default_rng(0).standard_normal((FEATURES, FEATURES)).astype(np.float32)
    w /= np.sqrt(FEATURES)
    shared = tg.compile(_fn, dynamic=True)
    errors: list = []
    blas_before = blas_threads.get_blas_threads()

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        own = tg.compile(_fn, dynamic=True)
        try:
            for i in range(8):
                # 640 rows: 640 * 256 * 256 multiply-adds, over the split threshold
                n = 640 if i % 4 == 3 else int(rng.integers(2, 40))
                x = rng.standard_normal((n, FEATURES)).astype(np.float32)
                want = _grads(_fn, x, w)
                for fn in (own, shared):
                    for name, g, e in zip(("out0", "out1", "dx", "dw"), _grads(fn, x, w), want):
                        if g.shape != e.shape or not np.allclose(g, e, rtol=1e-3, atol=1e-3):
                            errors.append((seed, n, name, fn is shared))
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append((seed, repr(exc)))

    with kernel_threads(2):
        threads = [threading.Thread(target=worker, args=(s,)) for s in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert blas_threads.get_blas_threads() == blas_before


def test_more_sizes_than_a_group_keeps_and_back_with_results_held():
    w = np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32)

    def fn(x, w):
        h = x @ w
        return F.softmax(h, 1) + h.mean(0, keepdim=True), (h * h).sum()

    compiled = tg.compile(fn, dynamic=True)
    sizes = list(range(2, SymbolicGroup.MAX_KEPT + 12)) + [2, 3, 40, SymbolicGroup.MAX_KEPT + 11]
    held = []
    for n in sizes:
        x = np.random.default_rng(n).standard_normal((n, 6)).astype(np.float32)
        with tg.no_grad():
            got = compiled(tg.tensor(x), tg.tensor(w))
            want = fn(tg.tensor(x), tg.tensor(w))
        for g, e in zip(got, want):
            np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-5, atol=1e-5,
                                       err_msg=f"size {n}")
        held.append((n, got, [e.numpy().copy() for e in want]))
    for n, got, want in held:   # no later call wrote into an earlier call's results
        for g, e in zip(got, want):
            np.testing.assert_allclose(g.numpy(), e, rtol=1e-5, atol=1e-5,
                                       err_msg=f"held result of size {n}")
