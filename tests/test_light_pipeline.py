"""NOTE (light pipeline) in codegen.render_llvm and NOTE (O1 with the vectorisers) in
runtime.llvm_pipeline: kernels that compare no integers are optimised by LLVM's O1 with
the vectorisers, the others by O3; both make the same vector code and the same bits, and
the results agree with eager mode."""
import collections

import numpy as np
import pytest

import tracegrad
from codegen_testing import Builder
from test_row_kernels import private_cache  # noqa: F401 (autouse: a cache of each test's own)
from test_row_kernels_streamed import ROWS, needs_x86, placed_like, row_kernel, special_rows
from tracegrad.codegen import render_llvm_vector
from tracegrad.codegen.render_llvm import LIGHT_PIPELINE, render_llvm
from tracegrad.codegen.schedule import plan
from tracegrad.nn import functional as F
from tracegrad.runtime import cpu_program, llvm_jit, llvm_pipeline


@pytest.fixture(autouse=True)
def scalar_loops(monkeypatch):
    """These kernels would render as vector IR (codegen.render_llvm_vector); the scalar
    path they test is the one every kernel the vector renderer declines takes."""
    monkeypatch.setattr(render_llvm_vector, "ENABLED", False)
    monkeypatch.setattr(cpu_program, "_RENDERED", {})


def _named(kernel):
    kernel.name = "k"
    return kernel


def _kernel_of(fn, shape):
    b = Builder()
    p = plan(b.graph(fn(b, b.input(shape))))
    assert len(p.kernels) == 1
    return _named(p.kernels[0].kernel)


def test_row_kernels_are_marked_light_and_masked_loads_are_not():
    for name, fn in ROWS.items():
        assert render_llvm(row_kernel(fn, 8, 256)).startswith(LIGHT_PIPELINE), name
    # a comparison of floats depends on the loaded values: nothing to unswitch
    relu = _kernel_of(lambda b, x: b.where(b.cmplt(b.const(0.0), x), x, b.const(0.0)), (8, 256))
    assert render_llvm(relu).startswith(LIGHT_PIPELINE)
    # a padding reads through a mask of index comparisons: a condition O3's loop
    # unswitching can take out of the inner loop
    for pads in (((0, 0), (1, 1)), ((1, 1), (0, 0))):
        padded = _kernel_of(lambda b, x: b.exp(b.pad(x, pads=pads)), (8, 256))
        assert not render_llvm(padded).startswith(LIGHT_PIPELINE), pads


def test_a_module_runs_light_only_when_every_source_is_marked():
    light, full = LIGHT_PIPELINE + "define void @a()", "define void @b()"
    assert llvm_pipeline.speed_level([light]) == 1
    assert llvm_pipeline.speed_level([light, light]) == 1
    assert llvm_pipeline.speed_level([light, full]) == 3
    assert llvm_pipeline.speed_level([full]) == 3
    vector = render_llvm_vector.VECTOR_PIPELINE + "define void @c()"
    assert llvm_pipeline.speed_level([vector, vector]) == 0   # NOTE (short pipeline)
    assert llvm_pipeline.speed_level([vector, light]) == 1
    assert llvm_pipeline.speed_level([vector, full]) == 3
    with pytest.raises(ValueError, match="optimize: level must be 0, 1 or 3, got 2"):
        llvm_pipeline.optimize(None, None, level=2)


def test_the_pipeline_follows_the_mark(monkeypatch):
    levels = []
    real = llvm_jit._optimize

    def spy(mod, tm, unlocked=False, level=3):
        levels.append(level)
        real(mod, tm, unlocked, level)
    monkeypatch.setattr(llvm_jit, "_optimize", spy)
    source, other = [render_llvm(_named(row_kernel(ROWS[n], 8, 256))) for n in ROWS][:2]
    llvm_jit.compile_llvm(source, ["k"])
    llvm_jit.compile_llvm(source[len(LIGHT_PIPELINE):], ["k"])
    llvm_jit.compile_llvm_many([source, other], "k")
    assert levels == [1, 3, 1]


def test_a_batch_runs_each_member_at_its_own_level(monkeypatch):
    """NOTE (a pipeline per level) in runtime.llvm_jit: a light kernel compiled in one
    batch with a full one still runs O1 (before: the batch's one full member put both
    through O3), and each computes what it computes alone."""
    levels = []
    real = llvm_jit._optimize

    def spy(mod, tm, unlocked=False, level=3):
        levels.append((level, sorted(f.name for f in mod.functions if not f.is_declaration)))
        real(mod, tm, unlocked, level)
    monkeypatch.setattr(llvm_jit, "_optimize", spy)
    light = render_llvm(_named(row_kernel(ROWS["softmax"], 8, 256)))
    full = render_llvm(_named(row_kernel(ROWS["log_softmax"], 8, 256)))[len(LIGHT_PIPELINE):]
    batch = llvm_jit.compile_llvm_many([light, full], "k")
    assert sorted(level for level, _ in levels) == [1, 3]
    assert all(len(names) == 1 for _, names in levels)   # one member in each pipeline
    x = np.random.default_rng(3).standard_normal((8, 256), dtype=np.float32) * 4
    shifted = x.astype(np.float64) - x.max(axis=1, keepdims=True)
    log_sm = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    for cm, want in zip(batch, (np.exp(log_sm), log_sm)):
        got = np.empty_like(x)
        cm.functions["k"](x.shape[0], [x, got])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _run(source: str, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    llvm_jit.compile_llvm(source, ["k"]).functions["k"](x.shape[0], [x, out])
    return out


@needs_x86
@pytest.mark.parametrize("name", sorted(ROWS))
@pytest.mark.parametrize("stream", [0, 1])
def test_light_and_full_pipelines_give_the_same_bits(name, stream):
    """The row kernels, streamed (at an unaligned output too) or not, NaN and inf rows
    included: O1 with the vectorisers and O3 compute the same values."""
    light = render_llvm(_named(row_kernel(ROWS[name], 24, 1024)), stream_min_bytes=stream)
    assert light.startswith(LIGHT_PIPELINE)
    full = light[len(LIGHT_PIPELINE):]
    x = special_rows(24, 1024)
    want = _run(full, x, np.empty_like(x))
    for past_line in (0, 4):
        got = _run(light, x, placed_like(x, past_line))
        np.testing.assert_array_equal(got, want)


def test_compiled_row_functions_on_the_light_pipeline_agree_with_eager():
    rng = np.random.default_rng(5)
    x = tracegrad.from_numpy(rng.standard_normal((64, 1024), dtype=np.float32) * 4)
    w = tracegrad.from_numpy(rng.standard_normal(1024, dtype=np.float32))
    b = tracegrad.from_numpy(rng.standard_normal(1024, dtype=np.float32))
    for fn in (lambda t: tracegrad.softmax(t, dim=-1),
               lambda t: tracegrad.log_softmax(t, dim=-1),
               lambda t: F.layer_norm(t, (1024,), w, b, 1e-5),
               lambda t: F.gelu(t, approximate="tanh")):
        np.testing.assert_allclose(tracegrad.compile(fn)(x).numpy(), fn(x).numpy(),
                                   rtol=1e-5, atol=1e-5)


def _vector_mix(source: str) -> collections.Counter:
    """How many of each vector instruction the compiled kernel holds."""
    asm = llvm_jit.compile_llvm(source, ["k"]).assembly
    return collections.Counter(line.split()[0] for line in asm.splitlines()
                               if line.startswith("\tv"))


@needs_x86
@pytest.mark.parametrize("name", sorted(ROWS))
def test_the_light_pipeline_vectorises_as_o3_does(name):
    """NOTE (O1 with the vectorisers): O1 plus the vectorisers makes the same vector code
    as O3 for a kernel without index conditions (rows that fit the cache: not streamed,
    where O3 copies the last loop once per alignment)."""
    light = render_llvm(_named(row_kernel(ROWS[name], 24, 1024)))
    mix = _vector_mix(light)
    assert sum(mix.values()) > 20   # vectorised at all
    assert mix == _vector_mix(light[len(LIGHT_PIPELINE):])
