"""NOTE (one kind of worker): a big gemm in a compiled program runs as blocks of C over
tracegrad's Python pool (here: with the native pool off, which splits them in the driver
instead: tests/test_native_pool_programs.py), each block one single-threaded CBLAS call; the result equals the whole
gemm (and NumPy's matmul) up to rounding (tests/gemm_rounding.py), for every transpose and
both split directions."""
import numpy as np
import pytest

import tracegrad as torch
from tracegrad.codegen.schedule import plan
from tracegrad.runtime import cblas, cpu_program, cpu_threads, native_pool
from tracegrad.runtime.cblas import GemmBlocks, GemmShape, SplitGemm
from tracegrad.runtime.cpu_program import CompiledProgram
from codegen_testing import Builder, extern_eval
from gemm_rounding import assert_gemm_rounding
from threads_testing import kernel_threads

rng = np.random.default_rng(1)
found = cblas.gemm_library()
pytestmark = pytest.mark.skipif(found is None, reason="no CBLAS gemm in this process")


@pytest.fixture
def three_threads(monkeypatch):
    monkeypatch.setattr(native_pool, "ENABLED", False)
    with kernel_threads(3):
        yield


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("m,n,k", [(384, 96, 256), (96, 384, 256), (70, 9, 33)])
def test_blocks_equal_the_whole_gemm(dtype, trans_a, trans_b, m, n, k):
    """Rows split when C is taller, columns when wider; uneven blocks, out of order.
    Blocks and the whole gemm may sum K in other orders (OpenBLAS's edge tiles and
    small-matrix kernels), so they are held to rounding (tests/gemm_rounding.py)."""
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    shape = GemmShape(np.dtype(dtype), m, n, k, trans_a, trans_b, a.shape[1], b.shape[1], n,
                      alpha=0.5, beta=2.0)
    blocks = GemmBlocks(found, shape)
    assert blocks.outer == max(m, n)
    whole, split = c0.copy(), c0.copy()
    blocks(0, blocks.outer, a.ctypes.data, b.ctypes.data, whole.ctypes.data)
    cuts = [0, blocks.outer // 3, blocks.outer // 2, blocks.outer]
    for lo, hi in reversed(list(zip(cuts, cuts[1:]))):
        blocks(lo, hi, a.ctypes.data, b.ctypes.data, split.ctypes.data)
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    op_a, op_b = (a.T if trans_a else a), (b.T if trans_b else b)
    assert_gemm_rounding(split, whole, op_a, op_b, alpha=0.5)
    want = 0.5 * (op_a.astype(np.float64) @ op_b) + 2.0 * c0
    np.testing.assert_allclose(whole, want, **tol)


def _program(m, k, n, transpose_w=False):
    b = Builder()
    x = b.input((m, k))
    w = b.input((n, k) if transpose_w else (k, n))
    wt = b.permute(w, perm=(1, 0)) if transpose_w else w
    return CompiledProgram(plan(b.graph(b.exp(b.matmul(x, wt)))), extern_eval)


@pytest.mark.parametrize("transpose_w", [False, True])
def test_a_big_gemm_runs_split_over_the_pool_and_gives_numpys_values(three_threads,
                                                                    transpose_w):
    m, k, n = 384, 256, 96            # 9.4M multiply-adds, over GEMM_PARALLEL_MIN_MACS
    program = _program(m, k, n, transpose_w)
    splits = [c for c in program._calls if isinstance(c, SplitGemm)]
    assert len(splits) == 1 and len(splits[0].chunks) == 3
    assert splits[0].chunks[-1][1] == m
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k) if transpose_w else (k, n)).astype(np.float32)
    got = program([x, w])[0]
    cpu_threads.set_n_threads(1)
    whole = CompiledProgram(program.program, extern_eval)   # the same plan, one thread
    assert not any(isinstance(c, SplitGemm) for c in whole._calls)
    # exp turns the gemms' rounding (~1e-5 absolute over K=256) into relative error
    np.testing.assert_allclose(whole([x, w])[0], got, rtol=2e-4)
    np.testing.assert_allclose(got, np.exp(x @ (w.T if transpose_w else w)), rtol=2e-4)


def test_small_gemms_stay_in_the_driver(three_threads):
    program = _program(64, 100, 10)     # the seed MLP's second layer, 64K: stays whole
    assert not any(isinstance(c, SplitGemm) for c in program._calls)


def test_the_seed_mlps_first_layer_stays_whole(three_threads):
    program = _program(64, 1000, 100)   # 6.4M multiply-adds: a split would not pay
    assert not any(isinstance(c, SplitGemm) for c in program._calls)


def test_a_compiled_step_with_split_gemms_matches_eager(three_threads, monkeypatch):
    """Forward and backward of a wide layer through the compiled path: its gemms (x @ w,
    x.T @ grad) are over the threshold and split."""
    made = []
    real = cpu_program.split_gemm
    monkeypatch.setattr(cpu_program, "split_gemm",
                        lambda call, lib: made.append(real(call, lib)) or made[-1])
    torch.manual_seed(0)
    x = torch.randn(256, 512)
    w = torch.randn(512, 128, requires_grad=True)

    def loss(x):
        return torch.tanh(x @ w).square().sum()
    eager = loss(x)
    eager.backward()
    want = w.grad.numpy().copy()
    w.grad = None
    compiled = torch.compile(loss)(x)
    compiled.backward()
    np.testing.assert_allclose(compiled.item(), eager.item(), rtol=1e-5)
    np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-4, atol=1e-4)
    assert sum(split is not None for split in made) >= 2
