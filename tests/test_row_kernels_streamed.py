"""NOTE (streamed rows) in codegen.stream_rows: row kernels over more bytes than the host's
last-level cache keep each output row on the stack and copy it out with non-temporal
stores. Which outputs qualify, and that every workload (softmax and its NaN rows,
log_softmax, layer_norm, cross_entropy forward and backward) gives the same bits streamed
or not, at aligned and unaligned output addresses."""
import platform

import numpy as np
import pytest

import tracegrad
from codegen_testing import Builder
from test_row_kernels import private_cache  # noqa: F401 (autouse: a cache of each test's own)
from tracegrad.codegen.loop_ir import BufferArg, KernelBuilder
from tracegrad.codegen.ops import Op
from tracegrad.codegen.render_llvm import render_llvm
from tracegrad.codegen.render_llvm_vector import VECTOR_PIPELINE
from tracegrad.codegen.schedule import plan
from tracegrad.codegen.stream_rows import streamed_rows
from tracegrad.nn import functional as F
from tracegrad.runtime import cpu_program, llvm_jit, render_options

X86 = platform.machine().lower() in ("x86_64", "amd64")
needs_x86 = pytest.mark.skipif(not X86, reason="streamed rows fence with an x86 instruction")
RNG = np.random.default_rng(3)
F32 = np.dtype(np.float32)


def softmax(b, x):
    m = b.max(x, axes=(1,), keepdim=True)
    e = b.exp(b.sub(x, m))
    return b.div(e, b.sum(e, axes=(1,), keepdim=True))


def log_softmax(b, x):
    shifted = b.sub(x, b.max(x, axes=(1,), keepdim=True))
    return b.sub(shifted, b.log(b.sum(b.exp(shifted), axes=(1,), keepdim=True)))


def layer_norm(b, x):
    n = b.shape(x)[1]
    xc = b.sub(x, b.mul(b.sum(x, axes=(1,), keepdim=True), b.const(1 / n)))
    var = b.mul(b.sum(b.mul(xc, xc), axes=(1,), keepdim=True), b.const(1 / n))
    return b.div(xc, b.sqrt(b.add(var, b.const(1e-5))))


ROWS = {"softmax": softmax, "log_softmax": log_softmax, "layer_norm": layer_norm}


def row_kernel(fn, rows: int, cols: int):
    b = Builder()
    p = plan(b.graph(fn(b, b.input((rows, cols)))))
    assert len(p.kernels) == 1
    return p.kernels[0].kernel


def special_rows(rows: int, cols: int) -> np.ndarray:
    """Random rows, and rows holding a NaN, +inf, -inf, only -inf, and large values."""
    x = RNG.standard_normal((rows, cols)).astype(np.float32) * 3
    x[1, cols // 2] = np.nan
    x[2, 5] = np.inf
    x[3, -1] = -np.inf
    x[4] = -np.inf
    x[5] *= 1e4
    return x


def run(source: str, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    k = llvm_jit.compile_llvm(source, ["k"]).functions["k"]
    k(x.shape[0], [x, out])
    return out


def placed_like(x: np.ndarray, past_line: int) -> np.ndarray:
    """An array shaped like ``x`` whose data starts ``past_line`` bytes past a 64-byte
    boundary (a multiple of the item size)."""
    raw = np.empty(x.size + 32, x.dtype)
    start = (-raw.ctypes.data % 64 + past_line) // x.itemsize
    out = raw[start:start + x.size].reshape(x.shape)
    assert out.ctypes.data % 64 == past_line
    return out


def test_row_outputs_of_the_three_row_kernels_stream_above_the_threshold():
    for name, fn in ROWS.items():
        k = row_kernel(fn, 16, 256)
        out = [b for b in k.buffers if b.is_output]
        rows = streamed_rows(k, min_bytes=1)
        assert [r.buf for r in rows] == [out[0].name], name
        assert rows[0].extent == 256
        assert streamed_rows(k, min_bytes=16 * 256 * 8 + 1) == []   # fits in the cache
        assert streamed_rows(k, min_bytes=0) == []


def test_rows_that_are_not_whole_cache_lines_or_not_row_accesses_do_not_stream():
    assert streamed_rows(row_kernel(softmax, 16, 100), min_bytes=1) == []  # 400 bytes a row
    b = Builder()
    x = b.input((16, 256))
    # a row reduction's output is one value per row, not a row
    k = plan(b.graph(b.sum(x, axes=(1,), keepdim=True))).kernels[0].kernel
    assert streamed_rows(k, min_bytes=1) == []


def test_long_rows_stream_unless_an_earlier_loop_stashes_values_in_them():
    long = 8192   # 32 KiB a row: more than a stack row may hold
    assert [r.extent for r in streamed_rows(row_kernel(layer_norm, 4, long), 1)] == [long]
    assert [r.extent for r in streamed_rows(row_kernel(log_softmax, 4, long), 1)] == [long]
    (short,) = streamed_rows(row_kernel(softmax, 4, 1024), 1)
    assert short.stashed                 # softmax keeps exp(x - max) in its row
    assert streamed_rows(row_kernel(softmax, 4, long), 1) == []


def test_an_output_read_before_its_row_is_written_does_not_stream():
    kb = KernelBuilder("k", outer=4)
    base = kb.emit(Op.MUL, ("o", kb.const(16, np.int64)), np.int64)
    j = kb.begin_loop(16, "j")
    at = kb.emit(Op.ADD, (base, j), np.int64)
    old = kb.emit(Op.LOAD, ("buf1", at), F32)      # reads what the caller put there
    kb.store("buf1", at, kb.emit(Op.ADD, (old, kb.emit(Op.LOAD, ("buf0", at), F32)), F32))
    kb.end_loop()
    k = kb.finish([BufferArg("buf0", F32, 64, False), BufferArg("buf1", F32, 64, True)])
    assert streamed_rows(k, min_bytes=1) == []


@needs_x86
@pytest.mark.parametrize("name", sorted(ROWS))
@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("cols", [1024, 8192])
def test_streamed_rows_give_the_same_bits(name, aligned, cols):
    k = row_kernel(ROWS[name], 24, cols)
    k.name = "k"
    plain, streamed = render_llvm(k), render_llvm(k, stream_min_bytes=1)
    assert ("!nontemporal" in streamed) is (cols == 1024 or name != "softmax")
    assert "!nontemporal" not in plain
    x = special_rows(24, cols)
    want = run(plain, x, np.empty_like(x))
    got = run(streamed, x, placed_like(x, 0 if aligned else 4))
    np.testing.assert_array_equal(got, want)
    assert np.isnan(got[1]).all()   # a NaN anywhere in a row makes the whole row NaN


@needs_x86
def test_streamed_rows_are_non_temporal_vector_stores():
    k = row_kernel(softmax, 8, 1024)
    k.name = "k"
    asm = llvm_jit.compile_llvm(render_llvm(k, stream_min_bytes=1), ["k"]).assembly
    assert "vmovntps" in asm or "movntps" in asm
    assert "sfence" in asm


def compile_streamed(monkeypatch, min_bytes: int = 1):
    """Programs compiled from here on stream rows of kernels over ``min_bytes``."""
    options = {**render_options.render_options(), "stream_min_bytes": min_bytes if X86 else 0}
    monkeypatch.setattr(cpu_program, "render_options", lambda: options)
    monkeypatch.setattr(cpu_program, "_RENDERED", {})


@needs_x86
def test_compiled_row_workloads_equal_eager_when_streamed(monkeypatch):
    compile_streamed(monkeypatch)
    x = special_rows(64, 512)
    tx = tracegrad.from_numpy(x)
    w = tracegrad.from_numpy(RNG.standard_normal(512).astype(np.float32))
    bias = tracegrad.from_numpy(RNG.standard_normal(512).astype(np.float32))
    for fn, tol in [(lambda t: tracegrad.softmax(t, dim=-1), 1e-6),
                    (lambda t: tracegrad.log_softmax(t, dim=-1), 1e-5),
                    (lambda t: F.layer_norm(t, (512,), w, bias, 1e-5), 1e-4)]:
        got = tracegrad.compile(fn)(tx).numpy()
        np.testing.assert_allclose(got, fn(tx).numpy(), rtol=tol, atol=tol)


@needs_x86
def test_compiled_cross_entropy_forward_and_backward_equal_eager_when_streamed(monkeypatch):
    compile_streamed(monkeypatch)
    x = RNG.standard_normal((64, 512)).astype(np.float32) * 2
    targets = tracegrad.from_numpy(RNG.integers(0, 512, 64))
    compiled = tracegrad.compile(F.cross_entropy)
    results = []
    for fn in (compiled, F.cross_entropy):
        tx = tracegrad.from_numpy(x).requires_grad_()
        loss = fn(tx, targets)
        results.append((loss.detach().numpy(), tracegrad.autograd.grad(loss, tx)[0].numpy()))
    (loss, grad), (want_loss, want_grad) = results
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-8)


def two_pass_kernel(load_after_store: bool):
    """buf1 rows written by a first loop; a second loop reads them into buf2 rows (and,
    with ``load_after_store``, a loop that writes buf2 and then reads it back)."""
    kb = KernelBuilder("k", outer=4)
    base = kb.emit(Op.MUL, ("o", kb.const(16, np.int64)), np.int64)
    for k, (src, dst) in enumerate([("buf0", "buf1"), ("buf1", "buf2")]):
        j = kb.begin_loop(16, "j")
        at = kb.emit(Op.ADD, (base, j), np.int64)
        value = kb.emit(Op.NEG, (kb.emit(Op.LOAD, (src, at), F32),), F32)
        kb.store(dst, at, value)
        if load_after_store and k == 1:
            kb.store("buf1", at, kb.emit(Op.LOAD, ("buf2", at), F32))
        kb.end_loop()
    bufs = [BufferArg("buf0", F32, 64, False)] + [BufferArg(f"buf{k}", F32, 64, True)
                                                  for k in (1, 2)]
    return kb.finish(bufs)


def test_a_row_whose_last_loop_only_reads_it_or_that_a_loop_reads_back_does_not_stream():
    # buf1's last loop only reads it: nothing would write the stack row out
    assert [r.buf for r in streamed_rows(two_pass_kernel(False), min_bytes=1)] == ["buf2"]
    # buf2 is read back in the loop that wrote it, buf1 is then written by that loop
    rows = streamed_rows(two_pass_kernel(True), min_bytes=1)
    assert [r.buf for r in rows] == ["buf1"]


@needs_x86
def test_a_stashed_row_read_and_rewritten_by_its_last_loop_gives_the_same_values():
    kernel = two_pass_kernel(True)
    x = RNG.standard_normal(64).astype(np.float32)
    outs = []
    for source in (render_llvm(kernel), render_llvm(kernel, stream_min_bytes=1)):
        out1, out2 = np.zeros(64, np.float32), np.zeros(64, np.float32)
        llvm_jit.compile_llvm(source, ["k"]).functions["k"](4, [x, out1, out2])
        outs.append((out1, out2))
    np.testing.assert_array_equal(outs[1][0], outs[0][0])
    np.testing.assert_array_equal(outs[1][1], outs[0][1])
    np.testing.assert_array_equal(outs[0][0], x)   # -(-x)


@needs_x86
@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_streamed_math_rows_in_blocks_of_lines_give_the_same_bits(aligned, dtype):
    # the last loop evaluates exp: four lines a block (NOTE (interleaved math loops))
    b = Builder()
    x, m = b.input((8, 512), np.dtype(dtype).name), b.input((8, 1), np.dtype(dtype).name)
    k = plan(b.graph(b.mul(b.exp(b.sub(x, m)), m))).kernels[0].kernel
    k.name = "k"
    plain, streamed = render_llvm(k), render_llvm(k, stream_min_bytes=1)
    assert "!nontemporal" in streamed
    if dtype == np.float32:   # four vectors an iteration as vector IR (codegen.render_llvm_vector)
        assert streamed.startswith(VECTOR_PIPELINE) and '.x4" = phi' in streamed
    else:
        assert '"llvm.loop.interleave.count", i32 4' in streamed
    xs = special_rows(8, 512).astype(dtype)
    ms = RNG.standard_normal((8, 1)).astype(dtype)

    def run_with(source, out):
        llvm_jit.compile_llvm(source, ["k"]).functions["k"](8, [xs, ms, out])
        return out
    want = run_with(plain, np.empty_like(xs))
    got = run_with(streamed, placed_like(xs, 0 if aligned else np.dtype(dtype).itemsize))
    np.testing.assert_array_equal(got, want)


@needs_x86
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "layer_norm"])
def test_compiled_row_backward_kernels_equal_eager_when_streamed(monkeypatch, name):
    compile_streamed(monkeypatch)
    w = tracegrad.from_numpy(RNG.standard_normal(256).astype(np.float32))
    fn = {"softmax": lambda t: tracegrad.softmax(t, dim=-1),
          "log_softmax": lambda t: tracegrad.log_softmax(t, dim=-1),
          "layer_norm": lambda t: F.layer_norm(t, (256,), w, None, 1e-5)}[name]
    x = special_rows(32, 256)   # NaN and inf rows: NaN gradients in eager and compiled alike
    gy = tracegrad.from_numpy(RNG.standard_normal((32, 256)).astype(np.float32))
    grads = []
    for f in (tracegrad.compile(fn), fn):
        tx = tracegrad.from_numpy(x).requires_grad_()
        grads.append(tracegrad.autograd.grad((f(tx) * gy).sum(), tx)[0].numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)
    # the forward's and the backward's row kernels both streamed
    assert sum("!nontemporal" in src for src in cpu_program._RENDERED.values()) >= 2
