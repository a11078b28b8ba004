"""Graph passes on hand-built graphs: DCE, constant folding, CSE, view folding."""
import numpy as np
import pytest

from tracegrad.codegen.ops import Op
from tracegrad.codegen.passes import (eliminate_common_subexpressions, eliminate_dead_code,
                            fold_constants, simplify)
from tracegrad.codegen.view import ShapeTracker, gather_numpy, strided_numpy
from codegen_testing import Builder, eval_graph


def test_dce_drops_unused_keeps_inputs():
    b = Builder()
    x = b.input((3,))
    y = b.input((3,))
    b.exp(x)
    g = eliminate_dead_code(b.graph(b.neg(x)))
    assert [n.op for n in g.nodes] == [Op.INPUT, Op.INPUT, Op.NEG]
    assert g.inputs == [x, y]


def test_constant_folding_and_ids_stay():
    b = Builder()
    x = b.input((3,))
    c = b.mul(b.const(2.0), b.add(b.const(1.0), b.const(0.5)))
    out = b.add(x, c)
    g = fold_constants(b.graph(out))
    folded = g.node(c)
    assert folded.op is Op.CONST and folded.attrs["value"] == 3.0
    assert eliminate_dead_code(g).node(out).inputs == (x, c)


def test_cse_merges_equal_nodes_not_random():
    b = Builder()
    x = b.input((3,))
    a1, a2 = b.exp(x), b.exp(x)
    r1 = b.g.add(Op.RAND, (), (3,), "float32", shape=(3,), dtype="float32").id
    r2 = b.g.add(Op.RAND, (), (3,), "float32", shape=(3,), dtype="float32").id
    g = eliminate_dead_code(eliminate_common_subexpressions(
        b.graph(b.add(a1, a2), b.add(r1, r2))))
    assert sum(n.op is Op.EXP for n in g.nodes) == 1
    assert sum(n.op is Op.RAND for n in g.nodes) == 2


def test_cse_distinguishes_const_types():
    b = Builder()
    b.input((3,), "int64")  # kept by the graph as its argument
    g = eliminate_common_subexpressions(b.graph(b.const(1, "int64"), b.const(True, "bool")))
    assert len(g.nodes) == 3


def test_fold_views_chains_to_base():
    b = Builder()
    x = b.input((4, 6))
    t = b.permute(x, perm=(1, 0))
    s = b.slice(t, index=(slice(None, None, -2), slice(1, 3)))
    r = b.reshape(s, shape=(6,))
    g = simplify(b.graph(b.exp(r)))
    view = g.node(r)
    assert view.inputs == (x,) and isinstance(view.attrs["view"], ShapeTracker)
    assert all(n.op not in (Op.PERMUTE, Op.SLICE) for n in g.nodes)


def test_identity_view_removed():
    b = Builder()
    x = b.input((2, 3))
    r = b.reshape(b.reshape(x, shape=(6,)), shape=(2, 3))
    g = simplify(b.graph(b.exp(r)))
    assert [n.op for n in g.nodes] == [Op.INPUT, Op.EXP]


VIEW_CASES = [
    lambda b, x: b.permute(x, perm=(2, 0, 1)),
    lambda b, x: b.slice(x, index=(slice(None, None, -1), slice(1, None, 2), slice(None))),
    lambda b, x: b.pad(x, pads=((1, 0), (0, 2), (1, 1)), value=-3.0),
    lambda b, x: b.pad(b.pad(x, pads=((1, 1), (0, 0), (0, 0)), value=1.0),
                       pads=((0, 0), (2, 0), (0, 0)), value=2.0),
    lambda b, x: b.reshape(b.permute(x, perm=(1, 0, 2)), shape=(8, 5)),
    lambda b, x: b.slice(b.reshape(b.pad(x, pads=((0, 0), (1, 1), (0, 0)), value=7.0),
                                   shape=(2, 30)), index=(slice(None), slice(None, None, -3))),
    lambda b, x: b.windows(x, window=(2, 3), stride=(1, 2), dilation=(2, 1)),
    lambda b, x: b.windows(b.pad(x, pads=((0, 0), (1, 1), (1, 1)), value=0.0),
                           window=(3, 3), stride=(1, 1), dilation=(1, 1)),
    lambda b, x: b.expand(b.slice(x, index=(slice(0, 1), slice(None), slice(None))),
                          shape=(3, 2, 4, 5)),
    lambda b, x: b.pad(x, pads=((-1, 0), (0, -2), (1, -1)), value=5.0),
]


@pytest.mark.parametrize("case", range(len(VIEW_CASES)))
def test_view_folding_matches_numpy(case):
    b = Builder()
    x = b.input((2, 4, 5))
    v = VIEW_CASES[case](b, x)
    g = b.graph(v)
    xs = np.arange(40, dtype=np.float32).reshape(2, 4, 5)
    ref = eval_graph(g, [xs])[0]
    folded = simplify(g).node(v)
    st = folded.attrs["view"]
    np.testing.assert_array_equal(gather_numpy(st, xs), ref)
    strided = strided_numpy(st, xs)
    if strided is not None:
        np.testing.assert_array_equal(strided, ref)
