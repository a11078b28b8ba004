"""Adding a unary elementwise op is its record, its public function and a test: nothing
else (DESIGN.md "One primitive, one place").

This file registers two new ops from here, without touching tracegrad or codegen:

- ``SOFTSIGN_X`` (x / (1 + |x|)) lowered by expansion into existing scalar ops, so it needs
  no rendering of its own;
- ``SOFTSIGN_R``, the same function with its own LLVM and CUDA renderings (the renderers'
  tables keyed by ``Op``).

Each is then run eagerly, compiled (compiled == eager), differentiated (gradient == finite
differences, eager and compiled), interpreted from its loop IR and rendered for CUDA.
"""
from __future__ import annotations

import llvmlite.ir as ir
import numpy as np
import pytest

import tracegrad as torch
from tracegrad._dispatch import apply
from tracegrad._primitives import PRIMITIVES
from tracegrad._primitives.elementwise import float_unary_shape
from tracegrad._primitives.registry import scalar_primitive
from tracegrad.autograd import gradcheck
from tracegrad.codegen import ops as ops_module
from tracegrad.codegen import render_cuda, render_llvm, scalar_ops  # noqa: F401  (tables)
from tracegrad.codegen.ops import Op


def _softsign_numpy(x):
    return x / (1 + np.abs(x))


def _softsign_vjp(g, node):
    x = node.inputs[0]
    d = x.abs() + 1
    return (g / (d * d),)


def _softsign_expand(emit, args, dtype):
    (x,) = args
    one = emit(Op.CONST, (1.0,), dtype)
    return emit(Op.DIV, (x, emit(Op.ADD, (one, emit(Op.ABS, (x,), dtype)), dtype)), dtype)


def _softsign_llvm(r, dtype, x):
    one = ir.Constant(x.type, 1.0)
    return r.b.fdiv(x, r.b.fadd(one, r.op(Op.ABS, dtype, x)))


def _softsign_cuda(r, dtype, a):
    return f"({a} / ({render_cuda.literal(1.0, dtype)} + {r.op(Op.ABS, dtype, a)}))"


def _forget(op: Op) -> None:
    """Undo a registration, so that the registry-walking tests in other files see only the
    library's own primitives."""
    PRIMITIVES.pop(op, None)
    scalar_ops.SCALAR_OPS.pop(op, None)
    scalar_ops.COSTLY.discard(op)
    render_llvm.LLVM_RULES.pop(op, None)
    render_cuda.CUDA_RULES.pop(op, None)
    for kind_set in ops_module._KIND_SETS[op.kind]:
        kind_set.discard(op)
    del Op._members[op.name]
    delattr(Op, op.name)


@pytest.fixture(scope="module")
def softsigns():
    made = {}
    try:
        for name, extra in (("SOFTSIGN_X", {"expand": _softsign_expand}),
                            ("SOFTSIGN_R", {"llvm": _softsign_llvm, "cuda": _softsign_cuda})):
            prim = scalar_primitive(name, numpy=_softsign_numpy, shape=float_unary_shape,
                                    vjp=_softsign_vjp, needs=lambda ng: (0,), **extra)

            def public(x, prim=prim):  # the public function that exposes it
                return apply(prim, (x,))
            made[name] = public
        yield made
    finally:
        for name in ("SOFTSIGN_X", "SOFTSIGN_R"):
            if name in Op._members:
                _forget(Op[name])


NAMES = ["SOFTSIGN_X", "SOFTSIGN_R"]


@pytest.mark.parametrize("name", NAMES)
def test_eager_value(softsigns, name):
    x = np.linspace(-4, 4, 17, dtype=np.float32)
    out = softsigns[name](torch.from_numpy(x))
    np.testing.assert_allclose(out.numpy(), x / (1 + np.abs(x)), rtol=1e-6)
    assert out.dtype == torch.float32


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_equals_eager(softsigns, name, dtype):
    fn = softsigns[name]

    def f(x):
        return fn(x * 2.0).exp() + 1.0  # fused with its neighbours

    x = torch.from_numpy(np.random.default_rng(0).standard_normal((33, 17)).astype(dtype))
    compiled = torch.compile(f, fullgraph=True)
    np.testing.assert_allclose(compiled(x).numpy(), f(x).numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences(softsigns, name):
    x = torch.from_numpy(np.random.default_rng(1).uniform(-2, 2, (4, 5))).requires_grad_()
    assert gradcheck(softsigns[name], (x,))


@pytest.mark.parametrize("name", NAMES)
def test_compiled_gradient_equals_eager(softsigns, name):
    fn = softsigns[name]

    def loss(x):
        return (fn(x) * x).sum()

    data = np.random.default_rng(2).uniform(-3, 3, (8, 9))
    x1 = torch.from_numpy(data.copy()).requires_grad_()
    loss(x1).backward()
    x2 = torch.from_numpy(data.copy()).requires_grad_()
    torch.compile(loss, fullgraph=True)(x2).backward()
    np.testing.assert_allclose(x2.grad.numpy(), x1.grad.numpy(), rtol=1e-10)
    d = 1 + np.abs(data)
    np.testing.assert_allclose(x1.grad.numpy(), data / d + data / (d * d), rtol=1e-10)


def test_rendered_op_reaches_both_backends(softsigns):
    from codegen_testing import Builder
    from tracegrad.codegen.fuse import fuse
    from tracegrad.codegen.interp import run_kernel
    from tracegrad.codegen.lower import lower_group
    from tracegrad.codegen.passes import simplify

    b = Builder()
    out = b.op(Op.SOFTSIGN_R, b.input((6,)))
    g = simplify(b.graph(out))
    fusion = fuse(g)
    kernel = lower_group(g, fusion.groups[0], "k", fusion.edges)
    assert any(getattr(s, "op", None) is Op.SOFTSIGN_R for s in kernel.body)
    x = np.linspace(-3, 3, 6, dtype=np.float32)
    y = np.zeros(6, np.float32)
    run_kernel(kernel, {"buf0": x, "buf1": y})
    np.testing.assert_allclose(y, x / (1 + np.abs(x)), rtol=1e-6)
    assert "(v" in render_cuda.render_cuda(kernel) and "fabsf" in render_cuda.render_cuda(kernel)
    assert "fdiv" in render_llvm.render_llvm(kernel)


def test_expanded_op_never_reaches_the_loop_ir(softsigns):
    from codegen_testing import Builder
    from tracegrad.codegen.fuse import fuse
    from tracegrad.codegen.lower import lower_group
    from tracegrad.codegen.passes import simplify

    b = Builder()
    g = simplify(b.graph(b.op(Op.SOFTSIGN_X, b.input((6,)))))
    fusion = fuse(g)
    kernel = lower_group(g, fusion.groups[0], "k", fusion.edges)
    assert [s.op.name for s in kernel.body if hasattr(s, "op")].count("DIV") == 1
    assert "SOFTSIGN_X" not in str(kernel)


def test_registering_twice_as_another_kind_raises(softsigns):
    with pytest.raises(ValueError, match="already defined as unary"):
        scalar_ops.define_scalar_op("SOFTSIGN_X", "binary", _softsign_numpy)


def test_a_new_op_without_a_lowering_is_refused():
    with pytest.raises(TypeError, match="needs a lowering"):
        scalar_primitive("SOFTSIGN_NOWHERE", numpy=_softsign_numpy, shape=float_unary_shape,
                         llvm=_softsign_llvm)
    assert "SOFTSIGN_NOWHERE" not in Op._members
