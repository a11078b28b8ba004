"""NOTE (IR text) in codegen.ir_text: the LLVM renderer's TextBuilder writes the text
llvmlite.ir.IRBuilder would, byte for byte, for every rule and dtype (scalar and vector
loops), the row kernels (streamed or not, AVX-512's ldexp or not) and what the frontend
renders for a forward and backward pass; NOTE (copy addresses) and NOTE (short pipeline)
in codegen.render_llvm_vector / runtime.llvm_pipeline: the vector loops' copies address
off copy 0 and the short pipeline runs SROA alone, with the bits of the old pipeline."""
import llvmlite.ir as ir
import numpy as np
import pytest

import tracegrad
import tracegrad.nn.functional as F
from test_row_kernels import private_cache  # noqa: F401 (autouse: a cache of each test's own)
from test_row_kernels_streamed import ROWS, row_kernel
from test_vector_ir import rows_with_specials
from tracegrad.codegen import render_llvm as R
from tracegrad.codegen.ir_text import TextBuilder
from tracegrad.codegen.loop_ir import BufferArg, KernelBuilder
from tracegrad.codegen.ops import BINARY, COMPARISON, UNARY, Op
from tracegrad.runtime import llvm_jit, llvm_pipeline, llvm_shards

DTYPES = ["float32", "float64", "int32", "int64", "uint8", "bool"]


def _both(kernel, **options) -> tuple[str, str]:
    """(TextBuilder's text, llvmlite.ir.IRBuilder's text) of ``kernel``."""
    texts = []
    for builder in (TextBuilder, ir.IRBuilder):
        old = R.BUILDER
        R.BUILDER = builder
        try:
            texts.append(R.render_llvm(kernel, **options))
        except NotImplementedError as e:
            texts.append(f"NotImplementedError: {e}")
        finally:
            R.BUILDER = old
    return texts[0], texts[1]


def _op_kernel(op: Op, dtype: str, outer: int):
    """``buf_out[o] = op(buf0[o], buf1[o])`` (unary: of ``buf0[o]``)."""
    b = KernelBuilder("k", outer)
    n = 1 if op in UNARY else 2
    args = tuple(b.emit(Op.LOAD, (f"buf{i}", "o"), dtype) for i in range(n))
    out = "bool" if op in COMPARISON else dtype
    b.store(f"buf{n}", "o", b.emit(op, args, out))
    return b.finish([BufferArg(f"buf{i}", np.dtype(dtype), outer, False) for i in range(n)]
                    + [BufferArg(f"buf{n}", np.dtype(out), outer, True)])


@pytest.mark.parametrize("outer", [5, 256])   # 256 float32: an elementwise vector loop
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_rule_prints_as_llvmlite_prints_it(dtype, outer):
    rendered = 0
    for op in sorted(R.LLVM_RULES, key=lambda o: o.name):
        if op not in UNARY and op not in BINARY:
            continue
        text, reference = _both(_op_kernel(op, dtype, outer), native_ldexp=True)
        assert text == reference, (op, dtype, outer)
        rendered += not text.startswith("NotImplementedError")
    assert rendered > 5


@pytest.mark.parametrize("stream", [0, 1])
@pytest.mark.parametrize("native_ldexp", [False, True])
@pytest.mark.parametrize("cols", [3, 17, 1024, 1030])
@pytest.mark.parametrize("name", sorted(ROWS))
def test_row_kernels_print_as_llvmlite_prints_them(name, cols, native_ldexp, stream):
    k = row_kernel(ROWS[name], 8, cols)
    text, reference = _both(k, native_ldexp=native_ldexp, stream_min_bytes=stream)
    assert text == reference
    assert not text.startswith("NotImplementedError")


def test_what_the_frontend_renders_prints_as_llvmlite_prints_it(monkeypatch):
    seen = []
    render = R._Renderer.render

    def checked(self):
        text = render(self)
        monkeypatch.setattr(R, "BUILDER", ir.IRBuilder)
        reference = render(R._Renderer(self.k, self.native_ldexp, self._stream_min_bytes))
        monkeypatch.setattr(R, "BUILDER", TextBuilder)
        seen.append(text == reference)
        return text

    monkeypatch.setattr(R._Renderer, "render", checked)
    init = R._Renderer.__init__

    def remember(self, kernel, native_ldexp=False, stream_min_bytes=0):
        self._stream_min_bytes = stream_min_bytes
        init(self, kernel, native_ldexp, stream_min_bytes)

    monkeypatch.setattr(R._Renderer, "__init__", remember)
    rng = np.random.default_rng(3)
    x = tracegrad.from_numpy(rng.standard_normal((64, 100)).astype(np.float32)).requires_grad_()
    t = tracegrad.from_numpy(rng.integers(0, 100, 64))
    loss = tracegrad.compile(F.cross_entropy)(x, t)
    tracegrad.autograd.grad(loss, x)
    tracegrad.compile(lambda v: F.gelu(v, approximate="tanh") * F.silu(v))(x.detach())
    assert len(seen) >= 3 and all(seen), seen


def test_text_builder_keeps_llvmlite_names_blocks_and_metadata():
    def build(builder_cls):
        mod = ir.Module(name="m")
        f32 = ir.FloatType()
        fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [ir.PointerType(), f32]), "f")
        entry = fn.append_basic_block("entry")
        b = builder_cls(entry)
        slot = b.alloca(f32, name="x")
        slot.align = 16
        v = b.fadd(fn.args[1], ir.Constant(f32, 1.0), name="x")   # a name taken: x.1
        with b.if_else(b.fcmp_ordered("<", v, ir.Constant(f32, 0.0))) as (then, other):
            with then:
                b.store(v, fn.args[0], align=4).set_metadata(
                    "nontemporal", mod.add_metadata([ir.Constant(ir.IntType(32), 1)]))
            with other:
                b.store(b.fneg(v), slot)
        with b.goto_block(entry):   # before the terminator
            b.sitofp(b.trunc(ir.Constant(ir.IntType(64), 7), ir.IntType(32)), f32)
        loop = b.append_basic_block("loop")
        b.branch(loop)
        b.position_at_end(loop)
        phi = b.phi(ir.IntType(64), name="i")
        phi.add_incoming(ir.Constant(ir.IntType(64), 0), entry)
        nxt = b.add(phi, ir.Constant(ir.IntType(64), 1))
        phi.add_incoming(nxt, loop)
        b.cbranch(b.icmp_unsigned(">=", nxt, ir.Constant(ir.IntType(64), 4)), loop, loop)
        return str(mod)

    text = build(TextBuilder)
    assert text == build(ir.IRBuilder)
    assert '%"x.1" = fadd float' in text and "!nontemporal !0" in text


def test_aggregates_and_weighted_branches_print_as_llvmlite_prints_them():
    """What float64 sin+cos (a {double, double} result) and fmod's frem branch (if_then
    with a weight) build; merging those with the TextBuilder failed on missing methods."""
    pair = ir.LiteralStructType([ir.DoubleType(), ir.DoubleType()])

    def build(builder):
        mod = ir.Module()
        fn = ir.Function(mod, ir.FunctionType(ir.DoubleType(), [ir.DoubleType()]), "f")
        b = builder(fn.append_basic_block("entry"))
        both = b.insert_value(ir.Constant(pair, ir.Undefined), fn.args[0], 0)
        both = b.insert_value(both, b.fneg(fn.args[0]), [1], name="both")
        before = b.block
        with b.if_then(b.fcmp_unordered("uno", fn.args[0], fn.args[0]), likely=False):
            odd = b.fadd(b.extract_value(both, 1), b.extract_value(both, [0]))
            inside = b.block
        out = b.phi(ir.DoubleType())
        out.add_incoming(fn.args[0], before)
        out.add_incoming(odd, inside)
        b.ret(out)
        return str(mod)

    text = build(TextBuilder)
    assert text == build(ir.IRBuilder)
    assert "extractvalue" in text and "branch_weights" in text


def test_copies_address_off_the_first_copy():
    text = R.render_llvm(row_kernel(ROWS["softmax"], 8, 1024))
    # copy 0 computes its index, copies 1-3 step 16 floats off its pointer
    for offset in (16, 32, 48):
        assert text.count(f"i64 {offset}\n") >= 3, offset
        assert f'add i64 %"r0.x4", {offset}' not in text


def _old_short_pipeline(mod, tm, unlocked):
    """The short pipeline before NOTE (short pipeline)'s last change."""
    import llvmlite.binding as llvm
    pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=0))
    mpm = llvm.create_new_module_pass_manager()
    mpm.add_sroa_pass()
    mpm.add_instruction_combine_pass()
    mpm.add_simplify_cfg_pass()
    llvm_shards.run_passes(pb, mod, unlocked, mpm)


@pytest.mark.parametrize("cols", [17, 1024, 1030])
@pytest.mark.parametrize("name", sorted(ROWS))
def test_sroa_alone_gives_the_bits_of_sroa_instcombine_simplifycfg(monkeypatch, name, cols):
    k = row_kernel(ROWS[name], 8, cols)
    k.name = "k"
    source = R.render_llvm(k)
    assert source.startswith(R.VECTOR_PIPELINE)
    x = rows_with_specials(8, cols)
    outs = []
    for tag, pipeline in (("now", None), ("old", _old_short_pipeline)):
        if pipeline is not None:
            monkeypatch.setattr(llvm_pipeline, "_short_pipeline", pipeline)
        out = np.empty_like(x)
        fn = llvm_jit.compile_llvm(f"{source}\n; {tag}\n", ["k"]).functions["k"]
        fn(x.shape[0], [x, out])
        outs.append(out)
    np.testing.assert_array_equal(outs[0].view(np.uint32), outs[1].view(np.uint32))


def test_irbuilder_methods_not_written_as_text_are_llvmlites_own():
    """A primitive's llvm= rendering may call any IRBuilder method (fma, ctpop, switch,
    unreachable): TextBuilder inserts llvmlite's instruction at its position, operands its
    own text values; the module prints as IRBuilder's (fma raised AttributeError before)."""
    def build(builder):
        mod = ir.Module()
        f64, i32 = ir.DoubleType(), ir.IntType(32)
        fn = ir.Function(mod, ir.FunctionType(f64, [f64, i32]), "f")
        b = builder(fn.append_basic_block("entry"))
        x = b.fadd(fn.args[0], fn.args[0])
        y = b.fma(x, x, b.fmul(x, fn.args[0]), name="y")
        n = b.ctpop(b.add(fn.args[1], ir.Constant(i32, 1)))
        z = b.fadd(y, b.sitofp(n, f64))
        exit_, odd = fn.append_basic_block("exit"), fn.append_basic_block("odd")
        sw = b.switch(n, exit_)
        sw.add_case(ir.Constant(i32, 3), odd)
        b.position_at_end(odd)
        b.unreachable()
        b.position_at_end(exit_)
        b.ret(b.fsub(z, x))
        return str(mod)

    text = build(TextBuilder)
    assert text == build(ir.IRBuilder)
    assert "llvm.fma.f64" in text and "switch" in text and "unreachable" in text
    with pytest.raises(AttributeError, match="goto_entry_block"):
        TextBuilder(ir.Function(ir.Module(), ir.FunctionType(ir.VoidType(), []), "g")
                    .append_basic_block()).goto_entry_block
