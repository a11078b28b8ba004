"""The native pool on its own (runtime.native_pool, NOTE (native claims)): every chunk runs
exactly once, the workers take part, a caller never waits for a worker that does not
come, two threads dispatching at once, and a process that used it exits and forks."""
import ctypes
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from tracegrad.runtime import native_pool
from tracegrad.runtime.llvm_jit import compile_llvm

pytestmark = pytest.mark.skipif(not native_pool.supported(), reason="x86-64 Linux only")

# ctx[0] holds N; chunk c of n adds 1 to slots [N c / n, N (c + 1) / n) of ctx[1:]
# (the contract of the drivers' trampolines: any n covers all N once). "handshake"
# (N = 2) also has chunk 1 of 2 set the flag ctx[3], and chunk 0 of 2 wait for it (a
# bounded spin of ~0.5 s), so a job of 2 chunks shows a helper ran chunk 1 whenever the
# caller took chunk 0 (a job the caller ran alone ends by the bound: correct but slow)
_TRAMPOLINES = r"""
declare void @llvm.x86.sse2.pause()

define void @count(i64 %c, i64 %n, ptr %ctx) {
entry:
  %slots = load i64, ptr %ctx
  %lo0 = mul i64 %slots, %c
  %lo = udiv i64 %lo0, %n
  %c1 = add i64 %c, 1
  %hi0 = mul i64 %slots, %c1
  %hi = udiv i64 %hi0, %n
  br label %loop
loop:
  %i = phi i64 [%lo, %entry], [%i1, %body]
  %more = icmp slt i64 %i, %hi
  br i1 %more, label %body, label %done
body:
  %slot = add i64 %i, 1
  %p = getelementptr i64, ptr %ctx, i64 %slot
  %old = load i64, ptr %p
  %new = add i64 %old, 1
  store i64 %new, ptr %p
  %i1 = add i64 %i, 1
  br label %loop
done:
  ret void
}

define void @handshake(i64 %c, i64 %n, ptr %ctx) {
entry:
  call void @count(i64 %c, i64 %n, ptr %ctx)
  %flagp = getelementptr i64, ptr %ctx, i64 3
  %split = icmp eq i64 %n, 2
  br i1 %split, label %which, label %done
which:
  %first = icmp eq i64 %c, 0
  br i1 %first, label %wait, label %signal
signal:
  store atomic i64 1, ptr %flagp seq_cst, align 8
  ret void
wait:
  %i = phi i64 [0, %which], [%i1, %spin]
  %flag = load atomic i64, ptr %flagp seq_cst, align 8
  %set = icmp ne i64 %flag, 0
  %over = icmp sge i64 %i, 20000000
  %stop = or i1 %set, %over
  br i1 %stop, label %done, label %spin
spin:
  call void @llvm.x86.sse2.pause()
  %i1 = add i64 %i, 1
  br label %wait
done:
  ret void
}
"""
_DISPATCH = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                             ctypes.c_void_p, ctypes.c_void_p)


@pytest.fixture(scope="module")
def pool():
    found = native_pool.native_pool()
    if found is None:
        pytest.skip("the native pool is off here (one thread, or TRACEGRAD_NATIVE_POOL=0)")
    return found


@pytest.fixture(scope="module")
def trampolines():
    module = compile_llvm(_TRAMPOLINES, ["count", "handshake"])
    return {name: module.functions[name].address for name in ("count", "handshake")}


def _dispatch(pool, state_address, fn, ctx, chunks):
    _DISPATCH(pool.dispatch)(chunks, 0, state_address, fn, ctx.ctypes.data)


@pytest.mark.parametrize("chunks", [1, 2, 3, 7, 64])
def test_every_chunk_runs_exactly_once(pool, trampolines, chunks):
    ctx = np.zeros(chunks + 1, np.int64)
    ctx[0] = chunks
    for _ in range(500):
        _dispatch(pool, pool.address, trampolines["count"], ctx, chunks)
    assert ctx[1:].tolist() == [500] * chunks


def test_the_workers_take_part(pool, trampolines):
    before = pool.helped
    for _ in range(20):
        pool.state[native_pool.BACKOFF] = 0    # NOTE (back off): publish this one
        ctx = np.array([2, 0, 0, 0], np.int64)
        _dispatch(pool, pool.address, trampolines["handshake"], ctx, 2)
        assert ctx[1:3].tolist() == [1, 1]
        if pool.helped > before:
            return
    pytest.fail("no chunk of 20 two-chunk jobs ran on a worker")


def test_a_caller_never_waits_for_a_worker_that_does_not_come(pool, trampolines):
    """A state that says one worker is active and one sleeps, with no thread behind it:
    the caller claims every chunk itself and returns (the wake-up wakes nobody), and
    after jobs nobody helped with it stops publishing for a while (NOTE (back off)):
    of 300 dispatches, 2 + 4 + 8 + ... run alone after each unhelped job."""
    state = np.zeros_like(pool.state)
    state[[native_pool.SYSCALL, native_pool.SPIN]] = pool.state[[native_pool.SYSCALL,
                                                                 native_pool.SPIN]]
    state[native_pool.ACTIVE], state[native_pool.SLEEPERS] = 1, 1
    state[native_pool.STREAK_CAP] = 8
    ctx = np.array([5, 0, 0, 0, 0, 0], np.int64)
    for _ in range(300):
        _dispatch(pool, state.ctypes.data, trampolines["count"], ctx, 5)
    assert ctx[1:].tolist() == [300] * 5
    assert state[native_pool.BUSY] == 0 and state[native_pool.HELPED] == 0
    jobs, alone = state[native_pool.JOBS], state[native_pool.ALONE]
    assert jobs + alone == 300 and state[native_pool.BAD_JOBS] == jobs
    assert jobs <= 10 and state[native_pool.STREAK] == 8
    # the back-off off: every one published
    state[[native_pool.STREAK_CAP, native_pool.STREAK, native_pool.BACKOFF]] = 0
    for _ in range(50):
        _dispatch(pool, state.ctypes.data, trampolines["count"], ctx, 5)
    assert ctx[1:].tolist() == [350] * 5
    assert state[native_pool.JOBS] - jobs >= 49


def test_two_threads_dispatching_at_once_each_get_every_chunk(pool, trampolines):
    ctxs = [np.array([4, 0, 0, 0, 0], np.int64) for _ in range(3)]

    def run(ctx):
        for _ in range(2000):
            _dispatch(pool, pool.address, trampolines["count"], ctx, 4)
    threads = [threading.Thread(target=run, args=(ctx,)) for ctx in ctxs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    for ctx in ctxs:
        assert ctx[1:].tolist() == [2000] * 4


_SPLIT_STEP = textwrap.dedent("""
    import numpy as np
    import tracegrad as torch
    from tracegrad.runtime import native_pool
    x = torch.randn(64, 1000)
    w = torch.randn(1000, 100)
    f = torch.compile(lambda x, w: (x @ w).relu())
    want = np.maximum(x.numpy() @ w.numpy(), 0)
    for _ in range(3):
        np.testing.assert_allclose(f(x, w).numpy(), want, rtol=1e-4, atol=1e-3)
    assert native_pool._pool is not None and native_pool._pool.helped >= 0
""")


def test_a_process_that_used_the_pool_exits_at_once():
    done = subprocess.run([sys.executable, "-c", _SPLIT_STEP + "print('ok')"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_forked_child_runs_split_programs_alone():
    """The child has no workers: its drivers' dispatches run every chunk on the caller
    (ACTIVE 0), and it neither hangs nor computes wrongly; the parent's pool still works."""
    script = _SPLIT_STEP + textwrap.dedent("""
        import os
        pid = os.fork()
        if pid == 0:
            ok = native_pool._pool.state[native_pool.ACTIVE] == 0
            got = f(x, w).numpy()
            os._exit(0 if ok and np.allclose(got, want, rtol=1e-4, atol=1e-3) else 3)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        np.testing.assert_allclose(f(x, w).numpy(), want, rtol=1e-4, atol=1e-3)
        print('ok')
    """)
    env = dict(os.environ)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_pool_of_its_own_grows_and_its_workers_return_when_stopped(pool, trampolines):
    own = native_pool.NativePool(pool.module, 1)
    own.set_active(2)                        # a second worker starts
    assert len(own.threads) == 2 and own.state[native_pool.ACTIVE] == 2
    ctx = np.array([3, 0, 0, 0], np.int64)
    for _ in range(200):
        _dispatch(own, own.address, trampolines["count"], ctx, 3)
    assert ctx[1:].tolist() == [200] * 3
    own.stop(timeout=120)   # asleep or spinning, each one returns (a hang guard only)
    assert not any(t.is_alive() for t in own.threads)
    _dispatch(own, own.address, trampolines["count"], ctx, 3)   # then alone
    assert ctx[1:].tolist() == [201] * 3
