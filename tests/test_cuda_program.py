"""Compiled programs on the CUDA runtime equal the CPU runtime's results.

Runs on the simulated device (``tests/sim_device.py``) by default and on a real GPU with
``TRACEGRAD_TEST_CUDA=pycuda`` (``tests/gpu/run.sh``). Each program is planned once and
run by both ``runtime.cpu_program.CompiledProgram`` and ``runtime.cuda_program.CudaProgram``.
"""
from __future__ import annotations

import numpy as np
import pytest

from sim_device import CXX_FOUND, on_real_gpu, release_test_device, use_test_device
from test_render_cuda import CASES, _random_buffer

from tracegrad.codegen.render_cuda import kernel_layout
from tracegrad.codegen.schedule import plan
from tracegrad.compiler.entry import extern_eval
from tracegrad.runtime.cpu_program import CompiledProgram
from tracegrad.runtime.cuda_device import DeviceArray
from tracegrad.runtime.cuda_program import CudaProgram

pytestmark = pytest.mark.skipif(not (CXX_FOUND or on_real_gpu()), reason="g++ not found")

# one of each kind: unary/binary/broadcast per dtype, integer and bool ops, casts, every
# reduction (both layouts), views with offsets and masks, and the fused composites
PROGRAM_CASES = ["EXP_float32", "TANH_float64", "SIGN_float32", "POW_float32", "FMOD_float32", "MAXIMUM_float64",
                 "CMPLT_float32", "NOT_int32", "XOR_bool", "MINIMUM_int64", "SCALAR_CONST",
                 "WHERE", "CAST_float32_int32", "CAST_bool_float32", "SUM_(1,)_False",
                 "MAX_(0,)_True", "PROD_(0, 1)_False", "MIN_wide_rows", "SUM_bool",
                 "SUM_float64_3d", "permute", "slice_neg_step", "pad", "pad_crop",
                 "reshape_permute", "softmax", "softmax_short_rows", "log_softmax",
                 "layer_norm", "gelu_tanh"]


@pytest.fixture(scope="module")
def device():
    dev, _ = use_test_device()
    yield dev
    release_test_device()


def _inputs(program, domain, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for name in program.inputs:
        info = program.buffers[name]

        class _Buf:  # _random_buffer's view of a buffer
            size, dtype = int(np.prod(info.shape, dtype=np.int64)), info.dtype
        out.append(_random_buffer(rng, _Buf, domain).reshape(info.shape))
    return out


def _tolerance(dtype):
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-12


def assert_same(got, want, msg=""):
    assert got.shape == want.shape and got.dtype == want.dtype, msg
    if want.dtype.kind == "f":
        tol = _tolerance(want.dtype)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=msg)
    else:
        np.testing.assert_array_equal(got, want, err_msg=msg)


@pytest.mark.parametrize("case", PROGRAM_CASES)
def test_program_on_the_device_equals_the_cpu(device, case):
    graph, domain = CASES[case]
    program = plan(graph)
    inputs = _inputs(program, domain)
    with np.errstate(all="ignore"):
        want = CompiledProgram(program, extern_eval)(inputs)
    cuda = CudaProgram(program, extern_eval, device)
    got = cuda(inputs)
    assert all(isinstance(g, DeviceArray) for g in got)
    for g, w in zip(got, want):
        assert_same(g.get(), w, case)
    # the geometry is launch_config's for this device: one block per row when rows are long
    for step in program.kernels:
        grid, block = cuda.geometry[step.name]
        if kernel_layout(step.kernel) == "block_rows":
            assert grid[0] == min(step.outer, 65535)
        assert block[0] % 32 == 0 and block[0] <= device.max_threads


def test_inputs_already_on_the_device_and_repeated_calls(device):
    graph, domain = CASES["layer_norm"]
    program = plan(graph)
    cuda = CudaProgram(program, extern_eval, device)
    cpu = CompiledProgram(program, extern_eval)
    for seed in range(3):   # temps are reused across calls; results must not leak between
        inputs = _inputs(program, domain, seed)
        on_device = [device.to_device(x) for x in inputs]
        got = cuda(on_device)[0].get()
        assert_same(got, cpu(inputs)[0])
    with pytest.raises(TypeError, match=r"input in0: expected float32\[7, 64\], got float64"):
        cuda([np.zeros((7, 64)), *inputs[1:]])
    with pytest.raises(TypeError, match="takes 3 inputs, got 1"):
        cuda(inputs[:1])


def _mlp_explain():
    import tracegrad

    def mlp(x, w1, w2, y):
        return ((x.mm(w1).clamp(min=0).mm(w2) - y) ** 2).sum()
    rng = np.random.default_rng(0)
    args = [tracegrad.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=rg)
            for s, rg in (((64, 100), False), ((100, 20), True), ((20, 10), True),
                          ((64, 10), False))]
    return tracegrad.compile(mlp).explain(*args)


def test_mlp_forward_and_backward_with_matmuls(device):
    report = _mlp_explain()
    rng = np.random.default_rng(3)
    for program in (report.forward, report.backward):
        inputs = [rng.standard_normal(program.buffers[n].shape).astype(program.buffers[n].dtype)
                  for n in program.inputs]
        want = CompiledProgram(program, extern_eval)(inputs)
        cuda = CudaProgram(program, extern_eval, device)
        got = cuda(inputs)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.get(), w, rtol=2e-5, atol=2e-4)
        # whole buffers (forward) and transposed ones (backward): the tiled kernel, no
        # host round trip
        assert cuda.host_externs == []
    assert any(s.node.op.name == "MATMUL" for s in report.forward.externs)


@pytest.mark.parametrize("batch,m,k,n", [((), 70, 33, 50), ((), 1, 1, 1), ((3,), 64, 0, 130),
                                         ((2,), 5, 16, 9)])
def test_tiled_matmul_extern_edges_and_batches(device, batch, m, k, n):
    from codegen_testing import Builder
    from tracegrad.codegen.ops import Op
    b = Builder()
    a_shape, b_shape = (*batch, m, k), (*batch, k, n)
    out = b.op(Op.MATMUL, b.input(a_shape), b.input(b_shape))
    program = plan(b.graph(out))
    rng = np.random.default_rng(1)
    a = rng.standard_normal(a_shape).astype(np.float32)
    c = rng.standard_normal(b_shape).astype(np.float32)
    cuda = CudaProgram(program, extern_eval, device)
    assert cuda.host_externs == []
    np.testing.assert_allclose(cuda([a, c])[0].get(), a @ c, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("trans_a,trans_b", [(True, False), (False, True), (True, True)])
def test_tiled_matmul_reads_transposed_operands_in_place(device, trans_a, trans_b):
    from codegen_testing import Builder
    from tracegrad.codegen.ops import Op
    m, k, n = 67, 40, 35
    b = Builder()
    a_in = b.input((k, m) if trans_a else (m, k))
    b_in = b.input((n, k) if trans_b else (k, n))
    lhs = b.permute(a_in, perm=(1, 0)) if trans_a else a_in
    rhs = b.permute(b_in, perm=(1, 0)) if trans_b else b_in
    program = plan(b.graph(b.op(Op.MATMUL, lhs, rhs)))
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal(program.buffers[nm].shape).astype(np.float32)
          for nm in program.inputs]
    cuda = CudaProgram(program, extern_eval, device)
    assert cuda.host_externs == []
    want = CompiledProgram(program, extern_eval)(xs)[0]
    np.testing.assert_allclose(cuda(xs)[0].get(), want, rtol=1e-5, atol=1e-4)


def test_threads_calling_one_program_get_their_own_results(device):
    """The temps are shared; whole calls are queued one at a time (NOTE in __call__)."""
    from concurrent.futures import ThreadPoolExecutor
    program = _mlp_explain().forward
    assert program.slots   # matmul results live in shared temps
    cuda = CudaProgram(program, extern_eval, device)
    cpu = CompiledProgram(program, extern_eval)
    rng = np.random.default_rng(5)
    batches = [[rng.standard_normal(program.buffers[n].shape).astype(np.float32)
                for n in program.inputs] for _ in range(24)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda xs: [a.get() for a in cuda(xs)], batches))
    for xs, outs in zip(batches, got):
        for g, w in zip(outs, cpu(xs)):
            np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-4)
