"""The LLVM-compiled program: sources verify, vectorise, equal NumPy on random graphs."""
import dataclasses

import llvmlite.binding as llvm
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from tracegrad.codegen.ops import Op
from tracegrad.codegen.schedule import Constant, Storage, plan
from tracegrad.runtime.cpu_program import CompiledProgram, llvm_source, llvm_sources
from tracegrad.runtime.llvm_jit import host_has_feature
from codegen_testing import Builder, eval_graph, extern_eval
from test_codegen_fusion import gelu_tanh, layer_norm, softmax


def _init_llvm():
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


def test_every_kernel_source_verifies_on_its_own():
    _init_llvm()
    b = Builder()
    x = b.input((8, 16))
    w = b.input((16,))
    bias = b.input((16,))
    g = b.graph(softmax(b, x), layer_norm(b, x, w, bias, 16), gelu_tanh(b, x),
                b.pad(b.permute(x, perm=(1, 0)), pads=((1, 1), (0, 2)), value=1.0))
    p = plan(g)
    assert len(p.kernels) >= 3
    for k in p.kernels:
        source = llvm_source(k.kernel)
        llvm.parse_assembly(source).verify()
        assert "define void" in source and k.loop_ir.startswith("kernel")
    text = str(p)
    assert "# loop IR" in text and "kernel k0" in text


def test_elementwise_float32_vectorises_at_host_width():
    b = Builder()
    x = b.input((4096,))
    p = plan(b.graph(gelu_tanh(b, x)))
    cp = CompiledProgram(p, extern_eval)
    ir_text = cp.kernels[p.kernels[0].name][0].optimized_ir
    width = "<16 x float>" if host_has_feature("avx512f") else "<8 x float>"
    assert width in ir_text
    assert "call float @tanhf" not in ir_text and "@expf" not in ir_text


def test_softmax_reductions_vectorise():
    b = Builder()
    x = b.input((64, 256))
    p = plan(b.graph(softmax(b, x)))
    cp = CompiledProgram(p, extern_eval)
    ir_text = cp.kernels[p.kernels[0].name][0].optimized_ir
    assert "x float>" in ir_text and "reduce.fadd" in ir_text or "fadd reassoc <" in ir_text


def test_compile_failure_raises_clear_error(monkeypatch):
    from tracegrad.runtime import cpu_program
    b = Builder()
    x = b.input((4,))
    p = plan(b.graph(b.exp(x)))
    monkeypatch.setattr(cpu_program, "render_llvm", lambda kernel, **options: "this is not llvm")
    with pytest.raises(cpu_program.ProgramCompileError, match="failed to compile"):
        CompiledProgram(p, extern_eval)


def test_non_contiguous_inputs_are_accepted():
    b = Builder()
    x = b.input((3, 4))
    cp = CompiledProgram(plan(b.graph(b.mul(x, b.const(2.0)))), extern_eval)
    a = np.arange(12, dtype=np.float32).reshape(4, 3).T
    np.testing.assert_array_equal(cp([a])[0], a * 2)


def test_extern_unsupported_dtype_goes_to_extern_eval():
    b = Builder()
    x = b.input((5,), "float16")
    p = plan(b.graph(b.exp(x)))
    assert len(p.kernels) == 0 and len(p.externs) == 1
    out = CompiledProgram(p, extern_eval)([np.ones(5, np.float16)])[0]
    np.testing.assert_allclose(out, np.e, rtol=1e-3)


# -- random graphs --------------------------------------------------------------------
UNARY = [Op.NEG, Op.EXP, Op.TANH, Op.ABS, Op.SIGMOID, Op.SIN]
BINARY = [Op.ADD, Op.SUB, Op.MUL, Op.MAXIMUM, Op.MINIMUM]
REDUCE = [Op.SUM, Op.MAX, Op.MIN]


@st.composite
def random_graph(draw):
    rank = draw(st.integers(0, 3))
    shape = tuple(draw(st.lists(st.sampled_from([1, 2, 3, 5]), min_size=rank, max_size=rank)))
    b = Builder()
    vals = [b.input(shape)]
    if draw(st.booleans()) and rank:
        bshape = tuple(n if draw(st.booleans()) else 1 for n in shape)
        vals.append(b.input(bshape))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["unary", "binary", "reduce", "view", "const"]))
        x = draw(st.sampled_from(vals))
        xs = b.shape(x)
        if kind == "unary":
            vals.append(b.op(draw(st.sampled_from(UNARY)), x))
        elif kind == "binary":
            y = draw(st.sampled_from(vals))
            try:
                np.broadcast_shapes(xs, b.shape(y))
            except ValueError:
                continue
            vals.append(b.op(draw(st.sampled_from(BINARY)), x, y))
        elif kind == "const":
            vals.append(b.mul(x, b.const(draw(st.sampled_from([0.5, -2.0, 3.0])))))
        elif kind == "reduce" and xs:
            axes = tuple(sorted(set(draw(st.lists(st.integers(0, len(xs) - 1), min_size=1, max_size=len(xs))))))
            vals.append(b.op(draw(st.sampled_from(REDUCE)), x, axes=axes,
                             keepdim=draw(st.booleans())))
        elif kind == "view" and xs:
            which = draw(st.sampled_from(["permute", "flip", "pad", "reshape", "expand"]))
            if which == "permute":
                vals.append(b.permute(x, perm=tuple(draw(st.permutations(range(len(xs)))))))
            elif which == "flip":
                vals.append(b.slice(x, index=tuple(slice(None, None, draw(st.sampled_from([1, -1, 2])))
                                                   for _ in xs)))
            elif which == "pad":
                vals.append(b.pad(x, pads=tuple((draw(st.integers(0, 1)), draw(st.integers(0, 1)))
                                                for _ in xs), value=draw(st.sampled_from([0.0, 1.5]))))
            elif which == "reshape":
                vals.append(b.reshape(x, shape=(int(np.prod(xs)),)))
            else:
                vals.append(b.expand(x, shape=(2,) + xs))
    outs = draw(st.lists(st.sampled_from(vals[1:] or vals), min_size=1, max_size=2))
    return b.graph(*outs)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graph(), st.integers(0, 2**31 - 1))
def test_random_graphs_compiled_equal_numpy(g, seed):
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal(g.node(i).shape).astype(np.float32) for i in g.inputs]
    ref = eval_graph(g, inputs)
    out = CompiledProgram(plan(g), extern_eval)(inputs)
    for o, r in zip(out, ref):
        assert o.shape == r.shape
        # NOTE: float32 tolerance covers reassociated sums and polynomial exp/tanh (~1e-7
        # relative each) compounding through a few ops
        np.testing.assert_allclose(o, r, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan, 1e-8, -0.0])
def test_extern_constant_operands_are_typed_values(value):
    # once: a constant feeding an extern became the buffer name "const:inf:<f2", decoded
    # with eval, so inf and nan raised NameError
    b = Builder()
    x = b.input((5,), "float16")
    p = plan(b.graph(b.add(x, b.const(value, "float16"))))
    (step,) = p.externs
    const = [a for a in step.inputs if isinstance(a, Constant)]
    assert len(const) == 1 and const[0].dtype == np.float16
    a = np.array([1, -2, 0, np.inf, -np.inf], np.float16)
    with np.errstate(invalid="ignore"):
        want = a + np.float16(value)
    np.testing.assert_array_equal(CompiledProgram(p, extern_eval)([a])[0], want)


def test_plan_holds_no_source_and_declares_its_fields():
    b = Builder()
    x = b.input((4, 8))
    p = plan(b.graph(softmax(b, x), b.exp(b.input((3,), "float16"))))
    for step in p.steps:
        assert dataclasses.is_dataclass(step)
        assert not any(isinstance(v, str) and "define void" in v for v in vars(step).values())
    for k in p.kernels:
        declared = {f.name for f in dataclasses.fields(k.kernel)}
        assert set(vars(k.kernel)) <= declared  # nothing attached after construction
    storages = {i.storage for i in p.buffers.values()}
    assert Storage.RETURNED in storages and Storage.ARGUMENT in storages
    assert all((i.slot is None) == (i.storage is not Storage.SLOT) for i in p.buffers.values())


def test_kernels_differing_only_in_names_share_one_source():
    b = Builder()
    x = b.input((64,))
    y = b.input((64,))
    p = plan(b.graph(b.exp(x), b.exp(y)))
    names = [k.name for k in p.kernels]
    sources = llvm_sources(p)
    assert len(set(names)) == 2 and len(set(sources.values())) == 1
    assert '@"tg_kernel"' in sources[names[0]]


def test_float_argument_is_a_0d_buffer_loaded_once_outside_the_loops():
    # why floats do not use the ABI's scalar slots (runtime.cpu_program's doc): the 0-d
    # buffer's load is hoisted out of the loops, so it costs one load per kernel call
    b = Builder()
    x = b.input((64, 256))
    a = b.input((), "float64")
    p = plan(b.graph(b.add(b.mul(x, b.cast(a, dtype="float32")), b.const(1.0))))
    cp = CompiledProgram(p, extern_eval)
    ir_text = cp.kernels[p.kernels[0].name][0].optimized_ir
    scalar = [arg.name for arg in p.kernels[0].kernel.buffers if arg.size == 1][0]
    loads = [line for line in ir_text.splitlines() if f"ptr %{scalar}" in line
             and "load" in line]
    assert len(loads) == 1
    assert ir_text.index(loads[0]) < ir_text.index("\no.body:")
    xs = np.arange(64 * 256, dtype=np.float32).reshape(64, 256)
    np.testing.assert_allclose(cp([xs, np.array(2.5)])[0], xs * 2.5 + 1)
