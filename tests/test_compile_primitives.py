"""Every primitive in the registry, compiled, equals eager: values and gradients.

Driven by ``tracegrad._primitives.PRIMITIVES`` and the sample inputs of
``tests/test_registry.py`` (0-d, size-1 broadcast dims, non-contiguous inputs), turned
into float32 (and float64) with their memory layout kept, plus integer and boolean cases
for the ops that take them. Each primitive is called through the dispatcher
(``_dispatch.apply``, the path every public tensor op takes) inside
``tracegrad.compile(fn, fullgraph=True)``, with warnings as errors so that a silent eager
fallback fails the test.

Tolerances: float32 rtol 1e-5 / atol 1e-6 and float64 rtol 1e-12 / atol 1e-14: compiled
reductions may reassociate sums, and nothing else may differ (the vectorised
transcendentals are within a few ulp). Integer and boolean results must be exact.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracegrad as torch
from tracegrad._dispatch import apply
from tracegrad._primitives import PRIMITIVES
from tracegrad._primitives.linalg_index import TENSOR
from tracegrad.codegen.ops import Op
from tracegrad.compiler.errors import TraceError

from test_registry import CASES, LAYOUTS, NON_DIFFERENTIABLE

TOL = {np.dtype(np.float32): (1e-5, 1e-6), np.dtype(np.float64): (1e-12, 1e-14)}
# Gradients of broadcast inputs are sums over the broadcast dims (reassociated too).
GRAD_TOL = {np.dtype(np.float32): (1e-5, 1e-6), np.dtype(np.float64): (1e-12, 1e-14)}

_rng = np.random.default_rng(99)


# ---- inputs --------------------------------------------------------------------------

def _same_layout(arr: np.ndarray, dtype, reverse: bool = False) -> np.ndarray:
    """``arr`` converted to ``dtype`` with its layout kept (transposed, negative step),
    or stored as a negative-step view when ``reverse``."""
    if arr.ndim and (reverse or any(s < 0 for s in arr.strides)):
        big = np.zeros((arr.shape[0] * 2,) + arr.shape[1:], dtype)
        out = big[::-2]
        out[...] = arr
        return out
    return arr.astype(dtype, order="K")


def _convert(x, dtype):
    if not isinstance(x, torch.Tensor):
        return x
    arr = x._data
    if arr.dtype.kind != "f":
        return torch.from_numpy(arr.copy())
    return torch.from_numpy(_same_layout(arr, dtype)).requires_grad_()


def _call(op, args, attrs):
    """``fn(*tensors)`` applying ``op`` with ``args``' non-tensors baked in."""
    slots = [isinstance(a, torch.Tensor) for a in args]
    consts = [None if s else a for s, a in zip(slots, args)]

    def fn(*tensors):
        it = iter(tensors)
        merged = tuple(next(it) if s else c for s, c in zip(slots, consts))
        return apply(PRIMITIVES[op], merged, attrs)
    fn.__name__ = f"prim_{op.name.lower()}"
    return fn


def _compiled(fn, *args):
    compiled = torch.compile(fn, fullgraph=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = compiled(*args)
    info = compiled.cache_info()
    assert (info.misses, info.entries) == (1, 1)
    return out


def assert_same(got, want, tol=None):
    assert isinstance(got, torch.Tensor)
    g, w = got.detach().numpy(), want.detach().numpy()
    assert g.dtype == w.dtype, (g.dtype, w.dtype)
    assert g.shape == w.shape, (g.shape, w.shape)
    if w.dtype.kind == "f":
        rtol, atol = tol or TOL[w.dtype]
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    else:
        np.testing.assert_array_equal(g, w)


def check(fn, tensors, grads: bool = True):
    """compiled(fn)(*tensors) equals fn(*tensors); so do the gradients of a random
    weighted sum of the result, for every float input that requires grad."""
    got = _compiled(fn, *tensors)
    want = fn(*tensors)
    assert_same(got, want)
    diff = [t for t in tensors if isinstance(t, torch.Tensor) and t.requires_grad]
    if not grads or not diff or not want.requires_grad:
        return
    assert got.requires_grad
    w = torch.from_numpy(_rng.uniform(0.5, 1.5, want.shape).astype(want.detach().numpy().dtype))
    (got * w).sum().backward()
    compiled_grads = [t.grad.numpy().copy() for t in diff]
    for t in diff:
        t.grad = None
    (want * w).sum().backward()
    for cg, t in zip(compiled_grads, diff):
        rtol, atol = GRAD_TOL[t.grad.numpy().dtype]
        np.testing.assert_allclose(cg, t.grad.numpy(), rtol=rtol, atol=atol)
        t.grad = None


def _is_mask_index(op, inputs):
    return op is Op.INDEX and any(isinstance(x, torch.Tensor) and x.dtype == torch.bool
                                  for x in inputs[1:])


DIFFERENTIABLE = sorted(CASES, key=lambda op: op.name)


# ---- every differentiable primitive, from the registry's cases -----------------------

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=lambda op: op.name)
def test_float32_values_and_gradients(op, layout):
    for inputs, attrs in CASES[op](layout):
        inputs = [_convert(x, np.float32) for x in inputs]
        if op is Op.CAST:
            attrs = {"dtype": np.dtype(np.float64)}
        if _is_mask_index(op, inputs):
            continue  # data-dependent shape: test_boolean_mask_index_falls_back
        fn = _call(op, inputs, attrs)
        check(fn, [x for x in inputs if isinstance(x, torch.Tensor)])


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=lambda op: op.name)
def test_float64_values_and_gradients(op):
    for inputs, attrs in CASES[op]("permuted"):
        inputs = [_convert(x, np.float64) for x in inputs]
        if op is Op.CAST:
            attrs = {"dtype": np.dtype(np.float32)}
        if _is_mask_index(op, inputs):
            continue
        check(_call(op, inputs, attrs), [x for x in inputs if isinstance(x, torch.Tensor)])


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=lambda op: op.name)
def test_forward_only_under_no_grad(op):
    """Without grad mode the forward program saves nothing: a different fusion."""
    for inputs, attrs in CASES[op]("reversed"):
        inputs = [_convert(x, np.float32) for x in inputs]
        if op is Op.CAST:
            attrs = {"dtype": np.dtype(np.float64)}
        if _is_mask_index(op, inputs):
            continue
        with torch.no_grad():
            check(_call(op, inputs, attrs), [x for x in inputs if isinstance(x, torch.Tensor)])


@pytest.mark.parametrize("op", [Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.POW, Op.MAXIMUM, Op.MINIMUM],
                         ids=lambda op: op.name)
def test_python_float_operand_as_a_runtime_scalar(op):
    """A float argument of the compiled function is a runtime scalar, not a constant."""
    x = torch.from_numpy(_rng.uniform(0.5, 2.0, (3, 2)).astype(np.float32)).requires_grad_()

    def fn(t, s):
        return apply(PRIMITIVES[op], (t, s), {})
    compiled = torch.compile(fn, fullgraph=True)
    for s in (0.7, 1.3, -0.25):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = compiled(x, s)
        want = fn(x, s)
        assert_same(got, want)
        got.sum().backward()
        g = x.grad.numpy().copy()
        x.grad = None
        want.sum().backward()
        np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-5, atol=1e-6)
        x.grad = None
    assert compiled.cache_info().misses == 1


def test_boolean_mask_index_falls_back():
    x = torch.randn(4, 3)
    mask = torch.tensor([True, False, True, True])
    fn = _call(Op.INDEX, [x, mask], {"spec": (TENSOR, 1)})
    with pytest.raises(TraceError):
        torch.compile(fn, fullgraph=True)(x, mask)
    with pytest.warns(RuntimeWarning, match="data-dependent"):
        got = torch.compile(fn)(x, mask)
    assert_same(got, fn(x, mask))


# ---- integer and boolean dtypes ------------------------------------------------------

def _ints(shape, dtype=np.int64, low=-5, high=6, layout="contiguous"):
    arr = np.asarray(_rng.integers(low, high, shape)).astype(dtype)
    if layout == "permuted" and arr.ndim >= 2:
        arr = np.ascontiguousarray(arr.T).T
    elif layout == "reversed" and arr.ndim >= 1:
        arr = _same_layout(arr, dtype, reverse=True)
    return torch.from_numpy(arr)


def _bools(shape, layout="contiguous"):
    arr = np.asarray(_rng.random(shape) < 0.5)
    if layout == "permuted" and arr.ndim >= 2:
        arr = np.ascontiguousarray(arr.T).T
    elif layout == "reversed" and arr.ndim >= 1:
        arr = _same_layout(arr, np.bool_, reverse=True)
    return torch.from_numpy(arr)


def _floats(shape, dtype=np.float32, layout="contiguous"):
    arr = np.asarray(_rng.standard_normal(shape)).astype(dtype)
    if layout == "permuted" and arr.ndim >= 2:
        arr = np.ascontiguousarray(arr.T).T
    elif layout == "reversed" and arr.ndim >= 1:
        arr = _same_layout(arr, dtype, reverse=True)
    return torch.from_numpy(arr)


_BINARY_SHAPES = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((), (3, 2))]


def _int_cases(layout):
    """(op, inputs, attrs) with integer, boolean and mixed dtypes."""
    cases = []
    for dt in (np.int64, np.int32):
        for op in (Op.NEG, Op.ABS, Op.SIGN):
            for s in ((3, 4), (), (2, 1, 3)):
                cases.append((op, [_ints(s, dt, layout=layout)], {}))
        for op in (Op.ADD, Op.SUB, Op.MUL, Op.MAXIMUM, Op.MINIMUM):
            for sa, sb in _BINARY_SHAPES:
                cases.append((op, [_ints(sa, dt, layout=layout), _ints(sb, dt, layout=layout)], {}))
            cases.append((op, [_ints((3, 2), dt, layout=layout), 3], {}))
        cases.append((Op.POW, [_ints((3, 4), dt, -3, 4, layout), _ints((3, 4), dt, 0, 4, layout)], {}))
        for op in (Op.CMPLT, Op.CMPLE, Op.CMPEQ, Op.CMPNE):
            for sa, sb in _BINARY_SHAPES:
                cases.append((op, [_ints(sa, dt, -2, 3, layout), _ints(sb, dt, -2, 3, layout)], {}))
        cases.append((Op.POW, [_ints((3, 4), dt, -3, 4, layout), 2], {}))
        cases.append((Op.POW, [_ints((3, 4), dt, -3, 4, layout), 3], {}))
        cases.append((Op.POW, [_ints((3, 4), dt, -3, 4, layout), 4], {}))
        # NOTE: int32 SUM/PROD/CUMSUM: see test_int32_sum_prod_cumsum_dtype (xfail)
        reductions = (Op.SUM, Op.MAX, Op.MIN, Op.PROD) if dt == np.int64 else (Op.MAX, Op.MIN)
        for op in reductions:
            cases.append((op, [_ints((3, 4), dt, -3, 4, layout)], {"axes": (1,), "keepdim": False}))
            cases.append((op, [_ints((2, 3, 4), dt, -3, 4, layout)], {"axes": (0, 2), "keepdim": True}))
            cases.append((op, [_ints((), dt, layout=layout)], {"axes": (), "keepdim": False}))
    cases.append((Op.CUMSUM, [_ints((3, 4), layout=layout)], {"axis": 1}))
    for op in (Op.CMPLT, Op.CMPLE, Op.CMPEQ, Op.CMPNE):
        for sa, sb in _BINARY_SHAPES:
            cases.append((op, [_floats(sa, layout=layout), _floats(sb, layout=layout)], {}))
        cases.append((op, [_floats((3, 2), layout=layout), 0.25], {}))
        cases.append((op, [_floats((3, 2), np.float64, layout=layout), 0.25], {}))
    for op in (Op.AND, Op.OR, Op.XOR, Op.CMPEQ, Op.CMPNE, Op.MAXIMUM, Op.MINIMUM):
        for sa, sb in _BINARY_SHAPES:
            cases.append((op, [_bools(sa, layout), _bools(sb, layout)], {}))
    for s in ((3, 4), (), (2, 1, 3)):
        cases.append((Op.NOT, [_bools(s, layout)], {}))
    for src, targets in ((np.float32, (np.int32, np.int64, np.bool_, np.uint8, np.float64)),
                         (np.float64, (np.int64, np.float32, np.bool_)),
                         (np.int64, (np.float32, np.float64, np.int32, np.bool_, np.uint8)),
                         (np.int32, (np.int64, np.float32)),
                         (np.bool_, (np.float32, np.int64, np.uint8, np.float64))):
        for dst in targets:
            if src == np.bool_:
                x = _bools((3, 4), layout)
            elif np.dtype(src).kind == "f" and dst == np.uint8:
                # NOTE: a float outside [0, 256) has no defined uint8 (C and NumPy alike)
                x = torch.from_numpy(_same_layout(np.abs(_floats((3, 4), src).numpy()) * 50, src))
            elif np.dtype(src).kind == "f":
                x = torch.from_numpy(_same_layout(_floats((3, 4), src, layout).numpy() * 3, src))
            else:
                x = _ints((3, 4), src, -300, 300, layout)
            cases.append((Op.CAST, [x], {"dtype": np.dtype(dst)}))
    cases.append((Op.ADD, [torch.from_numpy(np.array([250, 3, 7], np.uint8)),
                           torch.from_numpy(np.array([10, 255, 1], np.uint8))], {}))
    cases.append((Op.WHERE, [_bools((3, 4), layout), _ints((3, 4), layout=layout),
                             _ints((1, 4), layout=layout)], {}))
    cases.append((Op.WHERE, [_bools((3, 1), layout), _bools((3, 4), layout), _bools((), layout)], {}))
    cases.append((Op.WHERE, [_bools((3, 4), layout), _floats((3, 4), layout=layout), 0.0], {}))
    for op in (Op.ARGMAX, Op.ARGMIN):
        x = _floats((3, 4), layout=layout)
        x._data[0, :2] = 5.0  # ties: the first index wins
        for axis, keep in ((1, False), (0, True), (None, False)):
            cases.append((op, [x], {"axis": axis, "keepdim": keep}))
        cases.append((op, [_ints((2, 5), layout=layout)], {"axis": 1, "keepdim": False}))
    for dt_make in (lambda s: _ints(s, layout=layout), lambda s: _bools(s, layout)):
        cases.append((Op.RESHAPE, [dt_make((3, 4))], {"shape": (2, 6)}))
        cases.append((Op.PERMUTE, [dt_make((2, 3, 4))], {"perm": (2, 0, 1)}))
        cases.append((Op.EXPAND, [dt_make((3, 1))], {"shape": (2, 3, 4)}))
        cases.append((Op.SLICE, [dt_make((5, 4))],
                      {"index": (slice(None, None, -2), slice(3, 0, -1))}))
        cases.append((Op.WINDOWS, [dt_make((2, 7))], {"window": (3,), "stride": (2,), "dilation": (1,)}))
        cases.append((Op.CAT, [dt_make((2, 3)), dt_make((1, 3))], {"dim": 0}))
        cases.append((Op.INDEX, [dt_make((4, 3)), _ints((3,), low=0, high=4)], {"spec": (TENSOR,)}))
        cases.append((Op.GATHER, [dt_make((3, 4)), torch.tensor([[0, 3, 1], [2, 2, 0]])], {"dim": 1}))
    cases.append((Op.PAD, [_ints((2, 3), layout=layout)], {"pads": ((1, 0), (2, 1)), "value": 7}))
    cases.append((Op.PAD, [_bools((4, 3), layout)], {"pads": ((-1, 1), (0, -2)), "value": True}))
    cases.append((Op.SCATTER_ADD, [_ints((3, 4), layout=layout), torch.tensor([[0, 3, 3], [2, 2, 0]]),
                                   _ints((2, 3), layout=layout)], {"dim": 1}))
    cases.append((Op.INDEX_PUT, [_ints((4, 3), layout=layout), _ints((3,), layout=layout),
                                 torch.tensor([1, 1])], {"spec": (TENSOR,), "accumulate": True}))
    return cases


@pytest.mark.parametrize("layout", LAYOUTS)
def test_integer_and_boolean_dtypes_are_exact(layout):
    failures = []
    for op, inputs, attrs in _int_cases(layout):
        fn = _call(op, inputs, attrs)
        tensors = [x for x in inputs if isinstance(x, torch.Tensor)]
        try:
            check(fn, tensors, grads=False)
        except Exception as e:  # noqa: BLE001 - collect every failing case
            desc = ", ".join(f"{x.dtype}{list(x.shape)}" if isinstance(x, torch.Tensor)
                             else repr(x) for x in inputs)
            failures.append(f"{op.name}({desc}) {attrs}: {type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''}")
    assert not failures, "\n".join(failures)


def test_integer_and_boolean_cases_cover_every_non_differentiable_primitive():
    covered = {op for op, _, _ in _int_cases("contiguous")} | {Op.RAND, Op.RANDN}
    assert NON_DIFFERENTIABLE <= covered
    assert set(PRIMITIVES) <= covered | set(CASES)


@pytest.mark.parametrize("op", [Op.RAND, Op.RANDN], ids=lambda op: op.name)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_primitives_draw_what_eager_draws(op, dtype):
    x = _floats((3, 4), dtype)

    def fn(t):
        r = apply(PRIMITIVES[op], (), {"shape": (3, 4), "dtype": np.dtype(dtype)})
        return t + r * 2
    torch.manual_seed(11)
    got = _compiled(fn, x)
    torch.manual_seed(11)
    want = fn(x)
    assert_same(got, want)
    compiled = torch.compile(fn, fullgraph=True)
    torch.manual_seed(5)
    a = compiled(x)
    b = compiled(x)
    torch.manual_seed(5)
    assert_same(a, fn(x))
    assert_same(b, fn(x))  # the second call draws the next numbers, as eager does


def test_integer_pow_through_the_public_operator():
    a = _ints((3, 4), low=-3, high=4)
    b = _ints((3, 4), low=0, high=4)
    check(lambda x, y: x ** y, [a, b], grads=False)
    check(lambda x: x ** 2 + x ** 3, [a], grads=False)


# The primitives keep int32 (NumPy would widen to int64); the public sum/prod/cumsum cast
# integers to int64 first, as PyTorch does.
@pytest.mark.parametrize("op", [Op.SUM, Op.PROD, Op.CUMSUM], ids=lambda op: op.name)
def test_int32_sum_prod_cumsum_dtype(op):
    attrs = {"axis": 1} if op is Op.CUMSUM else {"axes": (1,), "keepdim": False}
    x = _ints((3, 4), np.int32)
    check(_call(op, [x], attrs), [x], grads=False)


def test_integer_div_primitive_is_refused_and_public_div_casts():
    from tracegrad._primitives import ShapeError
    a, b = _ints((3, 4)), _ints((3, 4), low=1, high=5)
    with pytest.raises(ShapeError, match="div"):
        _call(Op.DIV, [a, b], {})(a, b)
    check(lambda x, y: x / y, [a, b], grads=False)


# ---- special values: NaN and infinities propagate as in eager -------------------------

_SPECIAL = np.array([[0.0, -0.0, 1.0, -1.0], [np.inf, -np.inf, np.nan, 2.5],
                     [1e-30, -1e30, 88.0, -104.0]], np.float32)
SPECIAL_FNS = {
    "exp": lambda x: x.exp(), "log": lambda x: x.log(), "sqrt": lambda x: x.sqrt(),
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "erf": torch.erf,
    "sin": lambda x: x.sin(), "cos": lambda x: x.cos(),
    "recip": lambda x: 1 / x, "log1p": torch.log1p, "expm1": torch.expm1,
    "sign": torch.sign, "abs": lambda x: x.abs(), "relu": torch.relu,
    "clamp": lambda x: x.clamp(-1, 1), "maximum": lambda x: torch.maximum(x, x.flip(0)),
    "minimum": lambda x: torch.minimum(x, x.flip(1)), "amax": lambda x: x.amax(1),
    "amin": lambda x: x.amin(0), "sum": lambda x: x.sum(1), "argmax": lambda x: x.argmax(1),
    "softmax": lambda x: torch.softmax(x, 1), "pow": lambda x: x ** 2.5,
    "isnan": torch.isnan, "eq": lambda x: x == x, "floor": torch.floor, "round": torch.round,
    "to_int": lambda x: torch.nan_to_num(x, 0.0, 1e6, -1e6).long()
    if hasattr(torch, "nan_to_num") else torch.where(x.abs() < 1e6, x, 0.0).long(),
}


@pytest.mark.parametrize("name", sorted(SPECIAL_FNS))
def test_special_values(name):
    fn = SPECIAL_FNS[name]
    x = torch.from_numpy(_SPECIAL.copy())
    compiled = torch.compile(fn, fullgraph=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = compiled(x)
    with np.errstate(all="ignore"):
        want = fn(x)
    g, w = got.numpy(), want.numpy()
    assert g.dtype == w.dtype and g.shape == w.shape
    if w.dtype.kind == "f":
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, equal_nan=True)
        assert np.array_equal(np.isnan(g), np.isnan(w))
    else:
        np.testing.assert_array_equal(g, w)


def test_two_calls_before_backward_keep_their_own_saved_values():
    """The second call must not overwrite what the first call saved for its backward:
    the gradients are bit-identical to those of a lone call."""
    def fn(x, w):
        return (torch.tanh(x @ w) * x.sum(1, keepdim=True)).exp().sum(0)

    def leaf(shape):
        return torch.from_numpy(_rng.standard_normal(shape).astype(np.float32)).requires_grad_()
    w, x1, x2 = leaf((4, 4)), leaf((3, 4)), leaf((3, 4))
    compiled = torch.compile(fn, fullgraph=True)
    (compiled(x1, w) * 2).sum().backward()
    alone = [x1.grad.numpy().copy(), w.grad.numpy().copy()]
    x1.grad = w.grad = None
    y1, y2 = compiled(x1, w), compiled(x2, w)
    (y1 * 2).sum().backward()
    np.testing.assert_array_equal(x1.grad.numpy(), alone[0])
    np.testing.assert_array_equal(w.grad.numpy(), alone[1])
    assert x2.grad is None and y2.requires_grad


@pytest.mark.parametrize("op", ["sin", "cos"])
def test_sin_cos_of_huge_arguments(op):
    x = torch.from_numpy(np.array([1e10, -3e12, 1e20, -1e30], np.float32))
    got = torch.compile(lambda t: getattr(t, op)(), fullgraph=True)(x)
    np.testing.assert_allclose(got.numpy(), getattr(np, op)(x.numpy()), rtol=1e-5, atol=1e-6)
