"""Programs whose drivers split steps over the native pool (runtime.native_split): a
split gemm gives the whole gemm's values up to rounding (each element one dot product over
all of K, but BLAS kernels may order K otherwise at block edges: tests/gemm_rounding.py),
a split kernel the one-thread kernel's bits; a compiled training step is the one without
the native pool up to rounding; a symbolic driver splits at some sizes and not at others
with one text."""
import threading

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.codegen.schedule import plan
from tracegrad.runtime import cblas, native_pool, native_split
from tracegrad.runtime.cpu_program import CompiledProgram
from codegen_testing import Builder, extern_eval
from gemm_rounding import assert_gemm_rounding
from threads_testing import kernel_threads

rng = np.random.default_rng(3)
pytestmark = pytest.mark.skipif(cblas.gemm_library() is None or not native_pool.supported(),
                                reason="no CBLAS gemm or no native pool here")


@pytest.fixture
def two_threads():
    """Two threads, and every split published (NOTE (back off) would run the splits of
    a loaded machine whole: the blocks then go untested)."""
    with kernel_threads(2):
        pool = native_pool.native_pool()
        cap = pool.state[native_pool.STREAK_CAP]
        pool.state[[native_pool.STREAK_CAP, native_pool.STREAK, native_pool.BACKOFF]] = 0
        try:
            yield
        finally:
            pool.state[native_pool.STREAK_CAP] = cap


def _jobs() -> int:
    """Jobs the native pool published so far (each split step that ran as blocks)."""
    return int(native_pool._pool.state[native_pool.JOBS])


def _gemm_program(a_shape, b_shape, trans_a, trans_b, dtype):
    b = Builder()
    x, w = b.input(a_shape, dtype), b.input(b_shape, dtype)
    xa = b.permute(x, perm=(1, 0)) if trans_a else x
    wb = b.permute(w, perm=(1, 0)) if trans_b else w
    return plan(b.graph(b.matmul(xa, wb)))


def _whole(p, monkeypatch):
    """``p`` compiled with no split at all: every gemm whole in the driver."""
    with monkeypatch.context() as m:
        m.setattr(native_pool, "ENABLED", False)
        m.setattr(cblas, "GEMM_PARALLEL_MIN_MACS", 1 << 60)
        return CompiledProgram(p, extern_eval)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("m,k,n", [(64, 1000, 100),    # the seed's x @ w1: columns split
                                   (1000, 64, 100),    # the seed's x.T @ dh: rows split
                                   (97, 300, 131)])    # uneven blocks
def test_a_split_gemm_gives_the_whole_gemms_bits(two_threads, monkeypatch, dtype, trans_a,
                                                  trans_b, m, k, n):
    a_shape = (k, m) if trans_a else (m, k)
    b_shape = (n, k) if trans_b else (k, n)
    p = _gemm_program(a_shape, b_shape, trans_a, trans_b, dtype)
    split = CompiledProgram(p, extern_eval)
    assert "@tg_tramp0" in split.drivers[0]          # a ParallelCall, in the driver
    whole = _whole(p, monkeypatch)
    assert "tg_tramp" not in "".join(whole.drivers)
    a = rng.standard_normal(a_shape).astype(dtype)
    b = rng.standard_normal(b_shape).astype(dtype)
    jobs = _jobs()
    got = split([a, b])[0]
    assert _jobs() == jobs + 1                       # it ran as blocks
    op_a, op_b = (a.T if trans_a else a), (b.T if trans_b else b)
    assert_gemm_rounding(got, whole([a, b])[0], op_a, op_b)   # NOTE (no bits across BLAS kernels)
    want = (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b)
    np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == "float32" else 1e-10,
                               atol=1e-3 if dtype == "float32" else 1e-10)


def test_a_gemm_under_the_threshold_stays_whole(two_threads):
    p = _gemm_program((64, 100), (100, 10), False, False, "float32")   # the seed's 2nd layer
    assert "tg_tramp" not in "".join(CompiledProgram(p, extern_eval).drivers)


def test_a_big_kernel_splits_over_the_native_pool(two_threads, monkeypatch):
    b = Builder()
    x = b.input((512, 512))
    p = plan(b.graph(b.exp(b.mul(x, x))))
    split = CompiledProgram(p, extern_eval)
    # a lone kernel: no driver, the pool's generic trampoline (NOTE (lone calls))
    assert [type(c).__name__ for c in split._calls] == ["LoneSplit"] and not split.drivers
    monkeypatch.setattr(native_pool, "ENABLED", False)
    python_pool = CompiledProgram(p, extern_eval)
    assert [type(c).__name__ for c in python_pool._calls] == ["_KernelCall"]
    xs = rng.standard_normal((512, 512)).astype(np.float32)
    jobs = _jobs()
    got = split([xs])[0]
    assert _jobs() == jobs + 1
    np.testing.assert_array_equal(got, python_pool([xs])[0])


def _seed_training(steps):
    torch.manual_seed(0)
    x, y = torch.randn(64, 1000), torch.randn(64, 10)
    w1 = (torch.randn(1000, 100) * 0.05).requires_grad_()
    w2 = (torch.randn(100, 10) * 0.05).requires_grad_()
    opt = torch.optim.SGD([w1, w2], lr=1e-4)

    @torch.compile(fullgraph=True)
    def step(x, y):
        opt.zero_grad()
        loss = (torch.clamp(x.mm(w1), min=0).mm(w2) - y).pow(2).sum()
        loss.backward()
        opt.step()
        return loss
    losses = [step(x, y).item() for _ in range(steps)]
    return losses, w1.detach().numpy().copy(), w2.detach().numpy().copy()


def test_the_seed_step_is_the_one_without_the_native_pool(two_threads, monkeypatch):
    jobs = _jobs()
    native = _seed_training(4)
    assert _jobs() >= jobs + 8          # its two big gemms split at each of 4 steps
    monkeypatch.setattr(native_pool, "ENABLED", False)
    python = _seed_training(4)
    # the two pools cut the gemms into other blocks: equal up to rounding
    np.testing.assert_allclose(native[0], python[0], rtol=1e-5)
    for a, b in zip(native[1:], python[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_symbolic_driver_splits_at_large_sizes_with_one_text(two_threads, monkeypatch):
    """x @ w over a symbolic batch: 3-9 rows stay whole (one chunk), 64 and 200 split,
    and rows vs columns change with the size, from one driver text (NOTE (symbolic
    splits))."""
    monkeypatch.setattr(native_split, "GEMM_NATIVE_MIN_MACS", 1 << 20)
    w = torch.randn(1000, 40)
    c = torch.compile(lambda x: x @ w, dynamic=True)
    sizes = (5, 9, 3, 64, 200, 7)
    for n in sizes:
        x = torch.randn(n, 1000)
        np.testing.assert_allclose(c(x).numpy(), x.numpy() @ w.numpy(), rtol=1e-4, atol=1e-3)
    served = [e.forward for k, e in c._cache.items() if k[1][0][0][0] in (3, 64, 200)]
    assert len(served) == 3 and all(p.size_table for p in served)
    assert len({p.drivers[0] for p in served}) == 1
    assert "@tg_tramp0" in served[0].drivers[0] and "%byrows" in served[0].drivers[0]
    assert c.cache_info().misses <= 2


def test_one_thread_keeps_every_step_whole():
    with kernel_threads(1):
        assert native_pool.native_pool() is None
        p = _gemm_program((64, 1000), (1000, 100), False, False, "float32")
        assert "tg_tramp" not in "".join(CompiledProgram(p, extern_eval).drivers)
        if native_pool._pool is not None:     # an existing pool's dispatches run alone
            assert native_pool._pool.state[native_pool.ACTIVE] == 0


def test_two_threads_calling_split_programs_at_once_get_right_results(two_threads):
    """One thread's dispatches find the pool busy with the other's job and run alone;
    both get the whole gemm's values, whichever way each split ran."""
    p = _gemm_program((64, 1000), (1000, 100), False, False, "float32")
    programs = [CompiledProgram(p, extern_eval) for _ in range(2)] + [None]
    programs[2] = programs[0]            # the same program from two threads: own temps
    a = rng.standard_normal((64, 1000)).astype(np.float32)
    b = rng.standard_normal((1000, 100)).astype(np.float32)
    want = programs[0]([a, b])[0].copy()
    bad = []

    def run(program):
        for _ in range(200):
            got = program([a, b])[0]
            try:
                assert_gemm_rounding(got, want, a, b)
            except AssertionError:
                bad.append(got)
    threads = [threading.Thread(target=run, args=(program,)) for program in programs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and not bad
