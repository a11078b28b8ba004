"""set_num_threads limits compiled kernels and OpenBLAS; results do not change."""
import numpy as np

import tracegrad as torch
from tracegrad.runtime import blas_threads


def test_set_num_threads_limits_kernels_and_blas():
    before = torch.get_num_threads()
    blas_before = blas_threads.get_blas_threads()
    f = torch.compile(lambda x: (x * 2).exp().sum(-1))
    x = torch.randn(512, 1024)
    expected = f(x).numpy().copy()
    try:
        torch.set_num_threads(1)
        assert torch.get_num_threads() == 1
        if blas_before is not None:
            assert blas_threads.get_blas_threads() == 1
        np.testing.assert_allclose(f(x).numpy(), expected, rtol=1e-6)
        a = torch.randn(64, 64)
        np.testing.assert_allclose((a @ a).numpy(), a.numpy() @ a.numpy(), rtol=1e-5)
    finally:
        torch.set_num_threads(before)
        if blas_before is not None:
            blas_threads.set_blas_threads(blas_before)
    assert torch.get_num_threads() == before


def test_a_trace_in_one_thread_never_touches_other_threads():
    """Trace state is per thread: while one thread traces (again and again), eager code and
    compiled functions in other threads give exactly what a single-threaded run gives, and
    no trace captures another thread's tensors."""
    import threading
    import warnings

    rng = np.random.default_rng(0)
    w_traced = torch.tensor(rng.normal(size=(32, 96)).astype(np.float32))
    w_other = torch.tensor(rng.normal(size=(64, 128)).astype(np.float32))
    buf = torch.zeros(128)

    def traced_model(x):
        return (x @ w_traced).tanh().sum(1)

    def other_model(x):
        return (x @ w_other).relu().sum(1) + buf

    small = [torch.tensor(rng.normal(size=(5, 32)).astype(np.float32)) for _ in range(4)]
    big = [torch.tensor(rng.normal(size=(128, 64)).astype(np.float32)) for _ in range(4)]
    expect_small = [traced_model(x).numpy().copy() for x in small]
    expect_big = [other_model(x).numpy().copy() for x in big]
    expect_eager = [(x * 2 + 1).exp().sum(0).numpy().copy() for x in big]
    stop = threading.Event()
    errors: list = []

    def tracing_thread():
        k = 0
        try:
            while not stop.is_set():
                fresh = torch.compile(lambda x: traced_model(x))  # a new function: traces
                x = small[k % len(small)]
                if k % 4 == 0:
                    np.testing.assert_allclose(fresh(x).numpy(), expect_small[k % len(small)],
                                               rtol=1e-4, atol=1e-4)
                else:
                    fresh.explain(x)
                k += 1
        except BaseException as e:  # noqa: BLE001  (reported by the main thread)
            errors.append(e)

    def worker(seed):
        # NOTE: one compiled function per thread: a compiled program reuses its planned
        # buffers, so two threads calling the same one at once race (a runtime matter)
        compiled_other = torch.compile(other_model)
        try:
            for i in range(40):
                k = (seed + i) % len(big)
                x = big[k]
                eager = (x * 2 + 1).exp().sum(0)
                np.testing.assert_allclose(eager.numpy(), expect_eager[k], rtol=1e-6)
                np.testing.assert_allclose(compiled_other(x).numpy(), expect_big[k],
                                           rtol=1e-4, atol=1e-4)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracer = threading.Thread(target=tracing_thread)
        tracer.start()
        workers = [threading.Thread(target=worker, args=(s,)) for s in range(3)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        stop.set()
        tracer.join()
    assert not errors, errors[0]
    fallbacks = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not fallbacks, fallbacks[0]


def test_one_compiled_function_called_from_several_threads_at_once():
    """A program's temps are one set; concurrent calls must not share them."""
    import threading

    w = torch.randn(64, 64)

    @torch.compile
    def f(x):
        h = torch.tanh(x @ w) * 2 + 1          # temps between the matmul and the kernels
        return torch.softmax(h, dim=-1).sum(0)

    inputs = [torch.randn(32, 64) for _ in range(8)]
    expected = [f(x).numpy().copy() for x in inputs]  # compiled once, single-threaded
    wrong, errors = [], []

    def worker(seed):
        try:
            for k in range(40):
                i = (seed + k) % len(inputs)
                if not np.allclose(f(inputs[i]).numpy(), expected[i], rtol=1e-6, atol=1e-7):
                    wrong.append(i)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert not wrong, f"{len(wrong)} of 160 concurrent calls gave a wrong answer"
    assert f.cache_info().misses == 1
