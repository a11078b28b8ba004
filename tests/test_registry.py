"""Registry-driven checks: every primitive in ``tracegrad._primitives.PRIMITIVES`` has a
shape rule, an eager implementation and (unless deliberately non-differentiable) a
derivative rule; the shape rule agrees with the eager result; and every derivative rule
passes gradcheck and gradgradcheck in float64, on contiguous inputs, on non-contiguous
inputs (permuted, negative-step slices) and with size-1 broadcast dims.

A new primitive fails ``test_every_primitive_has_cases`` until it gets sample inputs here.
"""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
from tracegrad._dispatch import apply
from tracegrad._primitives import PRIMITIVES
from tracegrad._primitives.linalg_index import TENSOR
from tracegrad.autograd import gradcheck, gradgradcheck
from tracegrad.codegen.ops import Op

# Deliberately non-differentiable: booleans, integer results, random inputs.
NON_DIFFERENTIABLE = {Op.CMPLT, Op.CMPLE, Op.CMPEQ, Op.CMPNE, Op.AND,
                      Op.OR, Op.XOR, Op.NOT, Op.ARGMAX, Op.ARGMIN, Op.RAND, Op.RANDN}

_rng = np.random.default_rng(1234)


def leaf(shape, low=-1.0, high=1.0, layout="contiguous"):
    """A float64 leaf that requires grad, stored contiguous, transposed or reversed."""
    shape = tuple(shape)
    if layout == "permuted" and len(shape) >= 2:
        arr = _rng.uniform(low, high, shape[::-1]).T  # a transposed (F-ordered) view
        assert arr.shape == shape
    elif layout == "reversed" and len(shape) >= 1 and shape[0] > 1:
        big = _rng.uniform(low, high, (shape[0] * 2,) + shape[1:])
        arr = big[::-2]  # negative step, every other row
        assert arr.shape == shape
    else:
        arr = _rng.uniform(low, high, shape)
    return torch.from_numpy(arr).requires_grad_()


def away_from_zero(shape, layout="contiguous"):
    t = leaf(shape, 0.3, 1.0, layout)
    sign = np.where(_rng.random(shape) < 0.5, -1.0, 1.0)
    t._data *= sign
    return t


def ints(values):
    return torch.tensor(values, dtype=torch.int64)


def _unary_cases(low=-1.0, high=1.0, avoid_zero=False):
    make = away_from_zero if avoid_zero else (lambda s, layout="contiguous": leaf(s, low, high, layout))
    return lambda layout: [((make((3, 4), layout=layout),), {}),
                           ((make((), layout=layout),), {}),
                           ((make((2, 1, 3), layout=layout),), {})]


def _binary_cases(low=-1.0, high=1.0, b_low=None, b_high=None):
    b_low = low if b_low is None else b_low
    b_high = high if b_high is None else b_high

    def cases(layout):
        a = lambda s: leaf(s, low, high, layout)  # noqa: E731
        b = lambda s: leaf(s, b_low, b_high, layout)  # noqa: E731
        return [((a((3, 4)), b((3, 4))), {}),
                ((a((3, 1)), b((1, 4))), {}),   # size-1 dims broadcast on both sides
                ((a((2, 3, 4)), b((4,))), {}),  # missing leading dims
                ((a(()), b((3, 2))), {}),       # 0-d with a matrix
                ((a((3, 2)), 0.7), {})]         # a Python scalar operand
    return cases


def _reduce_cases(layout):
    return [((leaf((3, 4), layout=layout),), {"axes": (1,), "keepdim": False}),
            ((leaf((3, 4), layout=layout),), {"axes": (0, 1), "keepdim": True}),
            ((leaf((2, 3, 4), layout=layout),), {"axes": (0, 2), "keepdim": False}),
            ((leaf((), layout=layout),), {"axes": (), "keepdim": False})]


def _prod_cases(layout):
    return [((away_from_zero((3, 4), layout=layout),), {"axes": (1,), "keepdim": False}),
            ((away_from_zero((2, 3), layout=layout),), {"axes": (0, 1), "keepdim": True})]


def _where_cases(layout):
    cond = torch.from_numpy(_rng.random((3, 4)) < 0.5)
    return [((cond, leaf((3, 4), layout=layout), leaf((3, 4), layout=layout)), {}),
            ((cond[:, :1], leaf((1, 4), layout=layout), leaf((3, 1), layout=layout)), {}),
            ((cond, leaf((3, 4), layout=layout), 0.0), {})]


def _slice_cases(layout):
    return [((leaf((5, 4), layout=layout),), {"index": (slice(1, 4), slice(None, None, 2))}),
            ((leaf((5, 4), layout=layout),), {"index": (slice(None, None, -2), slice(3, 0, -1))}),
            ((leaf((6,), layout=layout),), {"index": (slice(-1, None, -3),)})]


def _windows_cases(layout):
    return [((leaf((2, 7), layout=layout),), {"window": (3,), "stride": (2,), "dilation": (1,)}),
            ((leaf((5, 5), layout=layout),), {"window": (2, 2), "stride": (1, 2), "dilation": (2, 1)})]


def _gather_cases(layout):
    return [((leaf((3, 4), layout=layout), ints([[0, 3, 1], [2, 2, 0]])), {"dim": 1}),
            ((leaf((3, 4), layout=layout), ints([[0, 2, 1, 0]])), {"dim": 0})]


def _scatter_add_cases(layout):
    return [((leaf((3, 4), layout=layout), ints([[0, 3, 3], [2, 2, 0]]),
              leaf((2, 3), layout=layout)), {"dim": 1}),
            ((leaf((3, 4), layout=layout), ints([[0, 2, 2, 0]]),
              leaf((2, 4), layout=layout)), {"dim": 0})]


def _index_cases(layout):
    return [((leaf((4, 3), layout=layout), ints([0, 2, 2])), {"spec": (TENSOR,)}),
            ((leaf((4, 3), layout=layout), ints([2, 1])), {"spec": (slice(None), TENSOR)}),
            ((leaf((4, 3), layout=layout), torch.tensor([True, False, True, True])),
             {"spec": (TENSOR, 1)}),
            ((leaf((2, 3, 4), layout=layout), ints([[0], [1]]), ints([1, 3])),
             {"spec": (TENSOR, slice(None), TENSOR)})]


def _index_put_cases(layout):
    return [((leaf((4, 3), layout=layout), leaf((2, 3), layout=layout), ints([0, 2])),
             {"spec": (TENSOR,), "accumulate": False}),
            ((leaf((4, 3), layout=layout), leaf((3,), layout=layout), ints([1, 1])),
             {"spec": (TENSOR,), "accumulate": True}),  # broadcast values, repeated index
            ((leaf((4, 3), layout=layout), leaf((), layout=layout), ints([0, 2])),
             {"spec": (slice(None), TENSOR), "accumulate": False})]


def _matmul_cases(layout):
    return [((leaf((3, 4), layout=layout), leaf((4, 2), layout=layout)), {}),
            ((leaf((2, 3, 4), layout=layout), leaf((4, 2), layout=layout)), {}),
            ((leaf((2, 1, 3, 4), layout=layout), leaf((3, 4, 2), layout=layout)), {})]


def _cat_cases(layout):
    return [((leaf((2, 3), layout=layout), leaf((1, 3), layout=layout)), {"dim": 0}),
            ((leaf((2, 3), layout=layout), leaf((2, 2), layout=layout),
              leaf((2, 1), layout=layout)), {"dim": 1})]


CASES = {
    Op.NEG: _unary_cases(),
    Op.EXP: _unary_cases(),
    Op.LOG: _unary_cases(0.2, 2.0),
    Op.SIN: _unary_cases(-3, 3),
    Op.COS: _unary_cases(-3, 3),
    Op.SQRT: _unary_cases(0.2, 2.0),
    Op.RECIP: _unary_cases(avoid_zero=True),
    Op.TANH: _unary_cases(-2, 2),
    Op.SIGMOID: _unary_cases(-4, 4),
    Op.ERF: _unary_cases(-2, 2),
    Op.ABS: _unary_cases(avoid_zero=True),
    Op.SIGN: _unary_cases(avoid_zero=True),
    Op.FLOOR: _unary_cases(0.1, 0.9),
    Op.CEIL: _unary_cases(0.1, 0.9),
    Op.ROUND: _unary_cases(0.1, 0.4),
    Op.LOG1P: _unary_cases(-0.5, 2.0),
    Op.EXPM1: _unary_cases(),
    Op.EXP2: _unary_cases(),
    Op.LOG2: _unary_cases(0.2, 2.0),
    Op.LOG10: _unary_cases(0.2, 2.0),
    Op.ATAN: _unary_cases(-3, 3),
    Op.ATAN2: _binary_cases(b_low=0.5, b_high=2.0),
    Op.ASINH: _unary_cases(-3, 3),
    Op.CAST: lambda layout: [((leaf((3, 4), layout=layout),), {"dtype": np.dtype(np.float64)})],
    Op.ADD: _binary_cases(),
    Op.SUB: _binary_cases(),
    Op.MUL: _binary_cases(),
    Op.DIV: _binary_cases(b_low=0.5, b_high=2.0),
    Op.POW: _binary_cases(0.5, 2.0, -1.5, 1.5),
    Op.FMOD: _binary_cases(2.3, 2.7, 1.0, 1.1),   # a / b in (2, 4): no jump
    Op.MAXIMUM: _binary_cases(),
    Op.MINIMUM: _binary_cases(),
    Op.WHERE: _where_cases,
    Op.SUM: _reduce_cases,
    Op.MAX: _reduce_cases,
    Op.MIN: _reduce_cases,
    Op.PROD: _prod_cases,
    Op.CUMSUM: lambda layout: [((leaf((3, 4), layout=layout),), {"axis": 1}),
                               ((leaf((3, 4), layout=layout),), {"axis": 0})],
    Op.RESHAPE: lambda layout: [((leaf((3, 4), layout=layout),), {"shape": (2, 6)}),
                                ((leaf((3, 4), layout=layout),), {"shape": (12,)}),
                                ((leaf((1,), layout=layout),), {"shape": ()})],
    Op.PERMUTE: lambda layout: [((leaf((2, 3, 4), layout=layout),), {"perm": (2, 0, 1)})],
    Op.EXPAND: lambda layout: [((leaf((3, 1), layout=layout),), {"shape": (2, 3, 4)}),
                               ((leaf((), layout=layout),), {"shape": (3,)})],
    Op.SLICE: _slice_cases,
    Op.PAD: lambda layout: [((leaf((2, 3), layout=layout),), {"pads": ((1, 0), (2, 1)), "value": 0.5}),
                            ((leaf((4, 3), layout=layout),), {"pads": ((-1, 1), (0, -2)), "value": 0.0})],
    Op.WINDOWS: _windows_cases,
    Op.MATMUL: _matmul_cases,
    Op.CAT: _cat_cases,
    Op.GATHER: _gather_cases,
    Op.SCATTER_ADD: _scatter_add_cases,
    Op.INDEX: _index_cases,
    Op.INDEX_PUT: _index_put_cases,
}

_NONDIFF_CASES = {
    Op.CMPLT: 2, Op.CMPLE: 2, Op.CMPEQ: 2, Op.CMPNE: 2,
    Op.AND: 2, Op.OR: 2, Op.XOR: 2, Op.NOT: 1,
}

DIFFERENTIABLE = sorted(CASES, key=lambda op: op.name)
LAYOUTS = ["contiguous", "permuted", "reversed"]


def test_registry_is_not_empty():
    assert len(PRIMITIVES) >= 40


@pytest.mark.parametrize("op", sorted(PRIMITIVES, key=lambda op: op.name), ids=lambda op: op.name)
def test_every_primitive_is_complete(op):
    prim = PRIMITIVES[op]
    assert prim.op is op
    assert callable(prim.shape), f"{op.name} has no shape rule"
    assert callable(prim.eager), f"{op.name} has no eager implementation"
    if op in NON_DIFFERENTIABLE:
        assert prim.vjp is None, f"{op.name} is listed as non-differentiable but has a vjp"
    else:
        assert callable(prim.vjp), (f"{op.name} has no derivative rule; add one or list it in "
                                    f"NON_DIFFERENTIABLE")


@pytest.mark.parametrize("op", sorted(PRIMITIVES, key=lambda op: op.name), ids=lambda op: op.name)
def test_every_primitive_has_cases(op):
    assert op in CASES or op in NON_DIFFERENTIABLE, (
        f"primitive {op.name} has no sample inputs in tests/test_registry.py CASES")


def _call(op, attrs):
    return lambda *xs: apply(PRIMITIVES[op], xs, attrs)


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=lambda op: op.name)
def test_shape_rule_matches_eager(op):
    prim = PRIMITIVES[op]
    for inputs, attrs in CASES[op]("contiguous"):
        if any(isinstance(x, torch.Tensor) and x.dtype == torch.bool for x in inputs[1:]) \
                and op is Op.INDEX:
            continue  # a boolean mask's result size depends on its values, not its shape
        args = [x._data if isinstance(x, torch.Tensor) else x for x in inputs]
        shape, dtype = prim.shape(*args, **attrs)
        out = apply(prim, inputs, attrs)
        assert tuple(out.shape) == tuple(shape), (op, attrs)
        assert out._data.dtype == dtype, (op, attrs)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=lambda op: op.name)
def test_gradcheck_every_primitive(op, layout):
    for inputs, attrs in CASES[op](layout):
        assert gradcheck(_call(op, attrs), inputs, eps=1e-6, atol=1e-6, rtol=1e-4), (op, attrs)


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=lambda op: op.name)
def test_gradgradcheck_every_primitive(op):
    """Derivative rules are tensor code, so they differentiate again."""
    for inputs, attrs in CASES[op]("contiguous")[:2]:
        assert gradgradcheck(_call(op, attrs), inputs, eps=1e-6, atol=1e-5, rtol=1e-3), (op, attrs)


_PUBLIC = {Op.CMPLT: torch.lt, Op.CMPLE: torch.le,
           Op.CMPEQ: torch.eq, Op.CMPNE: torch.ne, Op.AND: torch.logical_and,
           Op.OR: torch.logical_or, Op.XOR: torch.logical_xor, Op.NOT: torch.logical_not}


@pytest.mark.parametrize("op", sorted(_NONDIFF_CASES, key=lambda op: op.name), ids=lambda op: op.name)
def test_non_differentiable_primitives(op):
    """Values match NumPy and the public op's bool result records no graph."""
    prim = PRIMITIVES[op]
    xs = [torch.randn(3, 1, requires_grad=True), torch.randn(4, requires_grad=True)][:_NONDIFF_CASES[op]]
    if op in (Op.AND, Op.OR, Op.XOR, Op.NOT):
        xs = [(x > 0) for x in xs]
    arrays = [x.detach().numpy() for x in xs]
    shape, dtype = prim.shape(*arrays)
    out = _PUBLIC[op](*xs)
    assert out.dtype == torch.bool and tuple(out.shape) == shape
    assert not out.requires_grad and out.grad_fn is None
    assert np.array_equal(out.numpy(), prim.eager(*arrays))


def test_random_primitives_follow_the_seed():
    for op in (Op.RAND, Op.RANDN):
        torch.manual_seed(7)
        a = apply(PRIMITIVES[op], (), {"shape": (3, 2), "dtype": np.dtype(np.float32)})
        torch.manual_seed(7)
        b = apply(PRIMITIVES[op], (), {"shape": (3, 2), "dtype": np.dtype(np.float32)})
        assert a.dtype == torch.float32 and tuple(a.shape) == (3, 2)
        assert np.array_equal(a.numpy(), b.numpy())


def test_argmax_argmin_primitives():
    x = torch.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    for op, fn in ((Op.ARGMAX, np.argmax), (Op.ARGMIN, np.argmin)):
        out = apply(PRIMITIVES[op], (x,), {"axis": 1, "keepdim": False})
        assert out.dtype == torch.int64
        assert out.tolist() == fn(x.numpy(), axis=1).tolist()


def _documented_primitives() -> list[str]:
    """The names in the first column of the table in the registry's docstring."""
    from tracegrad._primitives import registry
    lines = registry.__doc__.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("=====")]
    assert len(rules) == 3, "the primitive table lost its shape"
    width = len(lines[rules[0]].split()[0])
    names = []
    for line in lines[rules[1] + 1:rules[2]]:
        names += line[:width].split()
    return names


def test_the_primitive_set_is_the_documented_one():
    """Adding or removing a primitive must come with its row in the registry's table (the
    reason it is not a composite)."""
    documented = _documented_primitives()
    assert len(documented) == len(set(documented)), "a primitive is listed twice"
    actual = {op.name for op in PRIMITIVES}
    assert set(documented) == actual, (
        f"undocumented: {sorted(actual - set(documented))}; "
        f"no longer primitives: {sorted(set(documented) - actual)}")
    from tracegrad._primitives import registry
    assert f"The primitive set: {len(actual)}," in registry.__doc__


@pytest.mark.parametrize("name,ref", [("gt", np.greater), ("ge", np.greater_equal)])
def test_mirrored_comparisons(name, ref):
    """``>`` and ``>=`` are CMPLT/CMPLE with swapped operands: same values (NaN included),
    broadcasting, scalars on either side, and errors that name the public op."""
    a = np.array([[1.0, np.nan, 3.0, -0.0]], np.float32)
    b = np.array([[2.0], [np.nan], [3.0]], np.float32)
    fn = getattr(torch, name)
    np.testing.assert_array_equal(fn(torch.from_numpy(a), torch.from_numpy(b)).numpy(), ref(a, b))
    np.testing.assert_array_equal(fn(torch.from_numpy(a), 0.0).numpy(), ref(a, 0.0))
    compiled = torch.compile(lambda x, y: fn(x, y), fullgraph=True)
    np.testing.assert_array_equal(compiled(torch.from_numpy(a), torch.from_numpy(b)).numpy(),
                                  ref(a, b))
    with pytest.raises(RuntimeError, match=rf"{name}: shapes \(2,\) and \(3,\)"):
        fn(torch.zeros(2), torch.zeros(3))
