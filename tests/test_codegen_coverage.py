"""One op vocabulary, one place per fact: every op that can reach the loop IR has NumPy
semantics and a rendering in every backend; every primitive has a lowering."""
from __future__ import annotations

import numpy as np
import pytest

from tracegrad._primitives import PRIMITIVES
from tracegrad.codegen import render_cuda, render_llvm, scalar_ops
from tracegrad.codegen.ops import ELEMENTWISE, LOOP_IR, REDUCE, Op

# The renderers' own hooks (structure, not table entries).
HOOKS = {Op.CONST, Op.LOAD, Op.ACC, Op.CAST, Op.WHERE}
BACKENDS = {"llvm": render_llvm.LLVM_RULES, "cuda": render_cuda.CUDA_RULES}


def missing_renderings() -> list[str]:
    """'OP: backend' for each op that may reach the loop IR but that a backend cannot print."""
    missing = []
    for op in sorted(ELEMENTWISE | LOOP_IR | set(scalar_ops.REDUCTION_ACC.values()),
                     key=lambda o: o.name):
        if op in HOOKS:
            continue
        row = scalar_ops.SCALAR_OPS.get(op)
        if row is not None and row.expand is not None:
            continue  # lowered as other ops
        missing += [f"{op.name}: {name}" for name, rules in BACKENDS.items() if op not in rules]
    return missing


def test_every_op_has_a_rendering_in_every_backend():
    assert missing_renderings() == []


def test_the_coverage_check_catches_an_op_without_renderings():
    op = scalar_ops.define_scalar_op("UNRENDERED_PROBE", "unary", np.negative)
    try:
        assert missing_renderings() == ["UNRENDERED_PROBE: llvm", "UNRENDERED_PROBE: cuda"]
    finally:
        from tracegrad.codegen import ops as ops_module
        scalar_ops.SCALAR_OPS.pop(op)
        for s in ops_module._KIND_SETS["unary"]:
            s.discard(op)
        del Op._members[op.name]
        delattr(Op, op.name)


def test_every_scalar_op_has_numpy_semantics():
    for op in (ELEMENTWISE | LOOP_IR) - {Op.CAST, Op.LOAD, Op.ACC}:
        assert callable(scalar_ops.SCALAR_OPS[op].numpy), op


def test_reductions_name_their_accumulator():
    assert set(scalar_ops.REDUCTION_ACC) == REDUCE


@pytest.mark.parametrize("op", sorted(PRIMITIVES, key=lambda o: o.name), ids=lambda o: o.name)
def test_every_primitive_has_a_lowering(op):
    kind, fact = PRIMITIVES[op].lowering
    assert kind in ("scalar", "cast", "reduce", "view", "extern")
    if kind == "scalar":
        assert PRIMITIVES[op].eager is fact.numpy or PRIMITIVES[op].eager.__module__.endswith(
            "elementwise"), "eager must be the semantics table's row (or wrap it)"


def test_eager_interpreter_and_folding_share_one_table():
    """The eager implementation of a scalar primitive is the table's function itself."""
    for op in (Op.EXP, Op.ADD, Op.SIGMOID, Op.ERF, Op.MAXIMUM, Op.AND, Op.NOT):
        assert PRIMITIVES[op].eager is scalar_ops.SCALAR_OPS[op].numpy


def test_costly_ops_are_one_fact():
    from tracegrad.codegen import fuse, lower
    assert not hasattr(fuse, "EXPENSIVE") and not hasattr(lower, "_COSTLY")
    assert scalar_ops.COSTLY >= {Op.EXP, Op.LOG, Op.TANH, Op.SIGMOID, Op.ERF, Op.POW}


def test_loop_ir_uses_op_members_not_strings():
    from tracegrad.codegen.loop_ir import KernelBuilder
    b = KernelBuilder("k", 4)
    with pytest.raises(TypeError, match="EXP"):
        b.emit("EXP", ("o",), np.float32)
