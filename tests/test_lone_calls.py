"""A run of one kernel needs no generated driver (NOTE (lone calls), runtime.lone_call):
a kernel on one thread is called directly, a split one through the native pool's generic
trampoline. Each must compute what the Python loop over steps computes (bit for bit: a
block of rows is the same arithmetic whichever thread runs it), after externs that
return fresh arrays, from two threads at once and in a forked child."""
import os
import threading

import numpy as np
import pytest

import tracegrad
from tracegrad.codegen.schedule import plan
from tracegrad.runtime import cpu_program, lone_call, native_pool
from tracegrad.runtime.cpu_program import CompiledProgram
from tracegrad.runtime.driver import KernelCall
from codegen_testing import Builder, eval_graph, extern_eval
from threads_testing import kernel_threads

rng = np.random.default_rng(5)
pytestmark = pytest.mark.skipif(not native_pool.supported(), reason="no native pool here")


@pytest.fixture
def two_threads():
    """Two threads and every split published (no back-off: the blocks must run)."""
    with kernel_threads(2):
        pool = native_pool.native_pool()
        cap = pool.state[native_pool.STREAK_CAP]
        pool.state[[native_pool.STREAK_CAP, native_pool.STREAK, native_pool.BACKOFF]] = 0
        try:
            yield pool
        finally:
            pool.state[native_pool.STREAK_CAP] = cap


def _loop(p):
    """``p`` run by the Python loop over steps (no driver, no lone call)."""
    cpu_program.USE_DRIVER = False
    try:
        return CompiledProgram(p, extern_eval)
    finally:
        cpu_program.USE_DRIVER = True


def _softmax_rows(b, x):
    e = b.exp(b.sub(x, b.max(x, axes=(1,), keepdim=True)))
    return b.div(e, b.sum(e, axes=(1,), keepdim=True))


def _kinds(program):
    return [type(c).__name__ for c in program._calls]


def test_a_small_kernel_alone_is_called_without_a_driver():
    b = Builder()
    x, y = b.input((7, 3)), b.input((3,))
    g = b.graph(b.add(b.exp(x), y))
    p = plan(g)
    program = CompiledProgram(p, extern_eval)
    assert _kinds(program) == ["LoneKernel"] and not program.drivers
    xs = [rng.standard_normal((7, 3)).astype(np.float32),
          rng.standard_normal(3).astype(np.float32)]
    np.testing.assert_array_equal(program(xs)[0], _loop(p)(xs)[0])
    np.testing.assert_allclose(program(xs)[0], eval_graph(g, xs)[0], rtol=1e-6)


def test_a_split_kernel_alone_runs_as_blocks_with_the_loops_bits(two_threads):
    b = Builder()
    x = b.input((1024, 256))
    p = plan(b.graph(_softmax_rows(b, x)))
    program = CompiledProgram(p, extern_eval)
    assert _kinds(program) == ["LoneSplit"] and not program.drivers
    xs = [rng.standard_normal((1024, 256)).astype(np.float32)]
    jobs = int(two_threads.state[native_pool.JOBS])
    got = program(xs)[0]
    assert int(two_threads.state[native_pool.JOBS]) == jobs + 1   # it ran as blocks
    np.testing.assert_array_equal(got, _loop(p)(xs)[0])
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)


def test_a_split_kernel_after_an_extern_reads_fresh_addresses(two_threads):
    b = Builder()
    x = b.input((512, 512))
    h = b.cast(b.exp(x), dtype="float16")                           # a lone kernel
    half = b.cast(b.matmul(h, h), dtype="float32")                  # NumPy's: fresh arrays
    g = b.graph(b.exp(b.mul(half, half)))                           # then a lone split
    p = plan(g)
    program = CompiledProgram(p, extern_eval)
    assert _kinds(program)[-1] == "LoneSplit" and program._calls[-1].refresh
    loop = _loop(p)
    for _ in range(2):   # fresh inputs each call: nothing remembered from the last one
        xs = [(rng.standard_normal((512, 512)) * 0.05).astype(np.float32)]
        np.testing.assert_array_equal(program(xs)[0], loop(xs)[0])


def test_two_threads_calling_one_lone_split_program_get_right_results(two_threads):
    """The second thread runs on temps and an address table of its own (NOTE (threads),
    cpu_program): the trampoline's context must point at that table, not the first's."""
    b = Builder()
    x = b.input((1024, 128))
    p = plan(b.graph(_softmax_rows(b, x)))
    program = CompiledProgram(p, extern_eval)
    inputs = [rng.standard_normal((1024, 128)).astype(np.float32) for _ in range(2)]
    want = [_loop(p)([a])[0] for a in inputs]
    bad = []

    def run(k):
        for _ in range(100):
            if not np.array_equal(program([inputs[k]])[0], want[k]):
                bad.append(k)
    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and not bad


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_runs_a_lone_split_alone(two_threads):
    b = Builder()
    x = b.input((1024, 128))
    p = plan(b.graph(_softmax_rows(b, x)))
    program = CompiledProgram(p, extern_eval)
    xs = [rng.standard_normal((1024, 128)).astype(np.float32)]
    want = _loop(p)(xs)[0]
    program(xs)   # the parent's workers have run it
    pid = os.fork()
    if pid == 0:   # the child has no workers: tg_dispatch runs every block itself
        ok = np.array_equal(program(xs)[0], want)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


def test_a_kernel_of_more_arguments_than_the_trampoline_takes_keeps_a_driver():
    n = lone_call.MAX_ARGUMENTS + 1
    call = KernelCall(0, 8, tuple(range(n)))
    assert lone_call.lone_call([call], [1], (np.zeros(n), 0), True, lambda: None) is None
    assert lone_call.lone_call([call, call], [1], (np.zeros(n), 0), True, lambda: None) is None


def test_compiled_softmax_has_one_kernel_and_no_driver_and_matches_eager():
    x = tracegrad.from_numpy(rng.standard_normal((64, 33)).astype(np.float32))
    f = tracegrad.compile(lambda a: tracegrad.softmax(a, dim=-1))
    np.testing.assert_allclose(f(x).numpy(), tracegrad.softmax(x, dim=-1).numpy(),
                               rtol=1e-6, atol=1e-7)
    (entry,) = f._cache.values()
    assert not entry.forward.drivers and len(entry.forward.program.kernels) == 1


def test_symbolic_softmax_is_a_lone_call_at_every_size_split_or_not(two_threads):
    """A symbolic program is built per size: its lone kernel takes that size's rows and
    chunk count (one thread at 3 rows, split at 4096), bit for bit the specialised
    program (the same kernel) and within rounding of eager."""
    f = tracegrad.compile(lambda a: tracegrad.softmax(a, dim=-1), dynamic=True)
    specialised = tracegrad.compile(lambda a: tracegrad.softmax(a, dim=-1), dynamic=False)
    kinds = {}
    for rows in (5, 3, 4096, 7, 2051):
        x = tracegrad.from_numpy(rng.standard_normal((rows, 256)).astype(np.float32))
        got = f(x).numpy()
        np.testing.assert_array_equal(got, specialised(x).numpy())
        np.testing.assert_allclose(got, tracegrad.softmax(x, dim=-1).numpy(), rtol=1e-6,
                                   atol=1e-7)
        entry = next(e for k, e in f._cache.items() if k[1][0][0][0] == rows)
        assert not entry.forward.drivers and (rows == 5 or entry.forward.size_table)
        kinds[rows] = _kinds(entry.forward)
    assert f.cache_info().misses == 1 and "s0" in f.cache_info().symbolic[0]
    assert kinds[3] == ["LoneKernel"] and kinds[4096] == ["LoneSplit"], kinds


def test_docstring_examples_run():
    import doctest
    result = doctest.testmod(lone_call)
    assert result.attempted > 0 and result.failed == 0
