"""NOTE (vector IR) in codegen.render_llvm_vector and NOTE (short pipeline) in
runtime.llvm_pipeline: row loops rendered as <16 x float> vector IR give the values of the
scalar path (sums to reassociation, everything else bit for bit), of eager mode and of
NumPy, at row widths that are and are not multiples of the vector width, on NaN and inf
rows and empty dims; kernels the vector renderer declines keep the scalar path."""
import numpy as np
import pytest

import tracegrad
import tracegrad.nn.functional as F
from codegen_testing import Builder
from test_row_kernels import private_cache  # noqa: F401 (autouse: a cache of each test's own)
from test_row_kernels_streamed import ROWS, needs_x86, placed_like, row_kernel
from tracegrad.codegen import render_llvm_vector
from tracegrad.codegen.loop_ir import BufferArg, KernelBuilder, Loop
from tracegrad.codegen.ops import Op
from tracegrad.codegen.render_llvm import LIGHT_PIPELINE, render_llvm
from tracegrad.codegen.render_llvm_vector import LANES, VECTOR_PIPELINE
from tracegrad.codegen.schedule import plan
from tracegrad.runtime import llvm_jit, llvm_pipeline

RNG = np.random.default_rng(11)
F32 = np.dtype(np.float32)
WIDTHS = [1, 3, 15, 17, 100, 1000, 1024, 1030]
NUMPY = {
    "softmax": lambda x: np.exp(x - x.max(1, keepdims=True))
    / np.exp(x - x.max(1, keepdims=True)).sum(1, keepdims=True),
    "log_softmax": lambda x: (x - x.max(1, keepdims=True))
    - np.log(np.exp(x - x.max(1, keepdims=True)).sum(1, keepdims=True)),
    "layer_norm": lambda x: (x - x.mean(1, keepdims=True))
    / np.sqrt(x.var(1, keepdims=True) + 1e-5),
}
EAGER = {"softmax": lambda t: tracegrad.softmax(t, dim=-1),
         "log_softmax": lambda t: tracegrad.log_softmax(t, dim=-1),
         "layer_norm": lambda t: F.layer_norm(t, (t.shape[-1],))}


def rows_with_specials(rows: int, cols: int) -> np.ndarray:
    """Random rows, and rows holding a NaN, +inf, -inf, only -inf, and large values (the
    special value's column wraps for short rows)."""
    x = RNG.standard_normal((rows, cols)).astype(np.float32) * 3
    x[1, cols // 2] = np.nan
    x[2, 5 % cols] = np.inf
    x[3, -1] = -np.inf
    x[4] = -np.inf
    x[5] *= 1e4
    return x


def _run(source: str, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    out = np.empty_like(x) if out is None else out
    llvm_jit.compile_llvm(source, ["k"]).functions["k"](x.shape[0], [x, out])
    return out


def _scalar_source(monkeypatch, kernel, **options) -> str:
    with monkeypatch.context() as m:
        m.setattr(render_llvm_vector, "ENABLED", False)
        return render_llvm(kernel, **options)


@pytest.mark.parametrize("cols", WIDTHS)
@pytest.mark.parametrize("name", sorted(ROWS))
def test_vector_rows_equal_the_scalar_path_and_numpy(monkeypatch, name, cols):
    k = row_kernel(ROWS[name], 8, cols)
    k.name = "k"
    vector, scalar = render_llvm(k), _scalar_source(monkeypatch, k)
    assert vector.startswith(VECTOR_PIPELINE) is (cols >= LANES), cols
    assert scalar.startswith(LIGHT_PIPELINE)
    x = rows_with_specials(8, cols)
    got, want = _run(vector, x), _run(scalar, x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    # sums reassociate: a few ulp apart; max, exp, log and the stores are lane by lane
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)
    with np.errstate(all="ignore"):
        ref = NUMPY[name](x.astype(np.float64))
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-6)


def test_max_and_sum_free_rows_give_the_same_bits(monkeypatch):
    # no reduction to reassociate: exp(x - m) * m lane by lane equals the scalar loop
    for cols in (17, 100, 1030):
        b = Builder()
        x, m = b.input((8, cols)), b.input((8, 1))
        k = plan(b.graph(b.mul(b.exp(b.sub(x, m)), m))).kernels[0].kernel
        k.name = "k"
        xs = rows_with_specials(8, cols)
        ms = RNG.standard_normal((8, 1)).astype(np.float32)

        def run(src):
            out = np.empty_like(xs)
            llvm_jit.compile_llvm(src, ["k"]).functions["k"](8, [xs, ms, out])
            return out
        vector = render_llvm(k)
        assert vector.startswith(VECTOR_PIPELINE)
        np.testing.assert_array_equal(run(vector), run(_scalar_source(monkeypatch, k)))


@needs_x86
@pytest.mark.parametrize("past_line", [0, 4])
@pytest.mark.parametrize("name", sorted(ROWS))
def test_streamed_vector_rows_give_the_bits_of_plain_stores(name, past_line):
    k = row_kernel(ROWS[name], 16, 1040)   # 1040 = 16 x 65: a main loop and one vector more
    k.name = "k"
    plain, streamed = render_llvm(k), render_llvm(k, stream_min_bytes=1)
    assert streamed.startswith(VECTOR_PIPELINE) and "!nontemporal" in streamed
    x = rows_with_specials(16, 1040)
    want = _run(plain, x)
    np.testing.assert_array_equal(_run(streamed, x, placed_like(x, past_line)), want)


def test_the_vector_path_ran_and_the_short_pipeline_kept_its_vectors(monkeypatch):
    k = row_kernel(ROWS["log_softmax"], 8, 1024)
    k.name = "k"
    source = render_llvm(k)
    assert source.startswith(VECTOR_PIPELINE) and "<16 x float>" in source
    assert llvm_pipeline.speed_level([source]) == 0
    levels = []
    real = llvm_jit._optimize
    monkeypatch.setattr(llvm_jit, "_optimize", lambda mod, tm, *a, level=3: (
        levels.append(level), real(mod, tm, *a, level=level)))
    module = llvm_jit.compile_llvm(source, ["k"])
    assert levels == [0]
    assert "<16 x float>" in module.optimized_ir
    assert "alloca float\n" not in module.optimized_ir   # SROA made the accumulators registers


def test_kernels_the_vector_renderer_declines_keep_the_scalar_path():
    def kernel_of(fn, shape, dtype="float32"):
        b = Builder()
        return plan(b.graph(fn(b, b.input(shape, dtype)))).kernels[0].kernel

    declined = {
        "short rows": row_kernel(ROWS["softmax"], 8, LANES - 1),
        "float64 rows": kernel_of(lambda b, x: b.sum(x, axes=(1,)), (8, 256), "float64"),
        # a reduction over the outer axis: its inner loop strides over rows
        "strided": kernel_of(lambda b, x: b.sum(x, axes=(0,)), (256, 64)),
        # a padding compares the index inside the loop
        "masked": kernel_of(lambda b, x: b.sum(b.pad(x, pads=((0, 0), (1, 1))), axes=(1,)),
                            (8, 256)),
        # an elementwise kernel that reads its input transposed (a strided index)
        "transposed": kernel_of(lambda b, x: b.exp(b.permute(x, perm=(1, 0))), (64, 256)),
        "short elementwise": kernel_of(lambda b, x: b.exp(x), (3, 16)),
    }
    for what, k in declined.items():
        assert not render_llvm(k).startswith(VECTOR_PIPELINE), what
    for name, fn in ROWS.items():
        assert render_llvm(row_kernel(fn, 8, 256)).startswith(VECTOR_PIPELINE), name
    assert render_llvm(kernel_of(lambda b, x: b.exp(x), (8, 256))).startswith(VECTOR_PIPELINE)


def test_elementwise_vector_loops_run_any_range_of_the_outer_loop():
    # NOTE (elementwise vector loops): threads run chunks [start, end) of any length
    b = Builder()
    x, y = b.input((1000,)), b.input((1000,))
    g = b.graph(b.where(b.cmplt(x, y), b.tanh(b.mul(x, y)), b.sub(x, y)))
    k = plan(g).kernels[0].kernel
    k.name = "k"
    source = render_llvm(k)
    assert source.startswith(VECTOR_PIPELINE) and '%"o.x1" = phi' in source
    fn = llvm_jit.compile_llvm(source, ["k"]).functions["k"]
    xs, ys = RNG.standard_normal((2, 1000)).astype(np.float32)
    xs[7], ys[500] = np.nan, np.inf
    with np.errstate(all="ignore"):
        want = np.where(xs < ys, np.tanh(xs.astype(np.float64) * ys), xs.astype(np.float64) - ys)
    for start, end in [(0, 1000), (3, 50), (17, 17), (0, 15), (999, 1000), (5, 998)]:
        out = np.full(1000, 7.0, np.float32)
        fn.cfunc(start, end, xs.ctypes.data, ys.ctypes.data, out.ctypes.data)
        np.testing.assert_allclose(out[start:end], want[start:end], rtol=3e-7, err_msg=f"{start}")
        assert (out[:start] == 7.0).all() and (out[end:] == 7.0).all()


@pytest.mark.parametrize("name", sorted(EAGER))
def test_compiled_rows_equal_eager_at_every_width_and_empty_dims(name):
    fn = EAGER[name]
    for shape in [(6, c) for c in WIDTHS] + [(0, 17), (3, 0)]:
        x = rows_with_specials(*shape) if shape[0] >= 6 else np.zeros(shape, np.float32)
        try:
            want = fn(tracegrad.from_numpy(x)).numpy()
        except Exception as e:   # a max over an empty row has no identity: both refuse
            with pytest.raises(type(e)):
                tracegrad.compile(fn)(tracegrad.from_numpy(x))
            continue
        got = tracegrad.compile(fn)(tracegrad.from_numpy(x)).numpy()
        assert got.shape == want.shape
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6, err_msg=f"{shape}")


def test_loops_of_a_runtime_length_run_every_remainder():
    # NOTE (kernel parameters): a symbolic row length is an int64 loaded in the kernel
    stride = 1040
    kb = KernelBuilder("k", outer=4)
    n = kb.emit(Op.LOAD, ("buf2", kb.const(0, np.int64)), np.int64)
    base = kb.emit(Op.MUL, ("o", kb.const(stride, np.int64)), np.int64)
    total = kb.define_acc(Op.ADD, np.float32, 0.0)
    j = kb.begin_loop(stride, "j")
    at = kb.emit(Op.ADD, (base, j), np.int64)
    y = kb.emit(Op.MUL, (kb.emit(Op.EXP, (kb.emit(Op.LOAD, ("buf0", at), F32),), F32),
                         kb.const(2.0, F32)), F32)
    kb.store("buf1", at, y)
    kb.acc_update(total, y)
    kb.end_loop()
    kb.store("buf3", "o", kb.emit(Op.ACC, (total,), F32))
    k = kb.finish([BufferArg("buf0", F32, 4 * stride, False),
                   BufferArg("buf1", F32, 4 * stride, True),
                   BufferArg("buf2", np.dtype(np.int64), 1, False),
                   BufferArg("buf3", F32, 4, True)])
    loop = next(s for s in k.body if isinstance(s, Loop))
    loop.extent = n
    source = render_llvm(k)
    assert source.startswith(VECTOR_PIPELINE)
    fn = llvm_jit.compile_llvm(source, ["k"]).functions["k"]
    x = RNG.standard_normal((4, stride)).astype(np.float32)
    x[1, 3], x[2, 20] = np.nan, np.inf
    for cols in (0, 5, 16, 17, 100, 1030, 1040):
        out, sums = np.full((4, stride), 7.0, np.float32), np.zeros(4, np.float32)
        fn(4, [x, out, np.array([cols]), sums])
        want = np.exp(x[:, :cols].astype(np.float64)) * 2
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(out[:, :cols], want, rtol=1e-6, err_msg=f"{cols}")
            np.testing.assert_allclose(sums, want.sum(1), rtol=1e-5, err_msg=f"{cols}")
        assert (out[:, cols:] == 7.0).all()   # nothing written past the row


def test_a_batch_runs_the_short_pipeline_over_its_vector_members_only(monkeypatch):
    # NOTE (short pipeline): a program's kernels compile as one batch (llvm_jit)
    rows = row_kernel(ROWS["softmax"], 8, 100)
    short = row_kernel(ROWS["softmax"], 8, 10)        # declined: shorter than a vector
    rows.name = short.name = "k"
    sources = [render_llvm(rows), render_llvm(short)]
    assert [s.startswith(VECTOR_PIPELINE) for s in sources] == [True, False]
    levels = []
    real = llvm_jit._optimize
    monkeypatch.setattr(llvm_jit, "_optimize", lambda mod, tm, *a: (
        levels.append(a[-1]), real(mod, tm, *a)))
    modules = llvm_jit.compile_llvm_many(sources, "k")
    assert sorted(levels) == [0, 1]
    for module, cols in zip(modules, (100, 10)):
        x = rows_with_specials(8, cols)
        out = np.empty_like(x)
        module.functions["k"](8, [x, out])
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(out, NUMPY["softmax"](x.astype(np.float64)),
                                       rtol=2e-5, atol=1e-6)
