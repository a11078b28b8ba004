"""FMOD (C's fmod, exact) and what is built on it: fmod, remainder (%), floor_divide (//)
against torch on special values, huge quotients, subnormals, float32 and float64; compiled
(the vector IR and the scalar path) against eager; gradients against torch; sign(NaN) = 0
as torch in eager and both renderers."""
from __future__ import annotations

import re

import numpy as np
import pytest

import tracegrad as tg
from tracegrad.codegen.numpy_fmod import fmod as numpy_fmod

torch = pytest.importorskip("torch")

SPECIAL = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e38, -1e38, 3.4e38, 3.0, -2.5, 0.1, -7.0,
           1e-40, -1e-45, 1.17549435e-38, 2.0 ** 24 + 1, 16777217.0 * 3, 1e-30, 7e30]
NAMES = ["fmod", "remainder", "floor_divide"]


def _same_bits(got, want, what):
    same = ((got == want) & (np.signbit(got) == np.signbit(want))) | (
        np.isnan(got) & np.isnan(want))
    assert same.all(), f"{what}: {got[~same][:6]} != {want[~same][:6]}"


def _torch_each(name, a, b):
    """torch's answers element by element: its scalar kernel is C's fmod; its vectorised
    float32 one (16+ elements) gives NaN for huge quotients (fmod(1e38, 1e-40))."""
    fn = getattr(torch, name)
    return np.array([fn(torch.tensor(x), torch.tensor(y)).item() for x, y in zip(a, b)],
                    a.dtype)


def _pairs(dtype, extra=0, seed=0):
    a, b = (v.ravel().astype(dtype) for v in np.meshgrid(SPECIAL, SPECIAL))
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.uniform(-30, 30, extra))
    a = np.concatenate([a, (rng.standard_normal(extra) * scale).astype(dtype)])
    b = np.concatenate([b, rng.standard_normal(extra).astype(dtype)])
    return a, b


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_every_pair_matches_torch_eager_and_compiled(name, dtype):
    # huge quotients included: the composite before FMOD gave 1e38 % 3 = 0 (torch 2)
    a, b = _pairs(dtype, extra=3000)
    want = _torch_each(name, a, b)
    eager = getattr(tg, name)(tg.tensor(a), tg.tensor(b)).numpy()
    _same_bits(eager, want, f"eager {name}")
    compiled = tg.compile(getattr(tg, name))(tg.tensor(a), tg.tensor(b)).numpy()
    _same_bits(compiled, eager, f"compiled {name}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_python_scalar_divisor_is_read_in_the_tensors_dtype(dtype):
    a, _ = _pairs(dtype, extra=500)
    for name in NAMES:
        for b in (0.1, -3.0, 1e-38, float("inf")):
            want = _torch_each(name, a, np.full_like(a, b))
            _same_bits(getattr(tg, name)(tg.tensor(a), b).numpy(), want, f"{name} {b}")


@pytest.mark.parametrize("dtype, span", [("float32", 40), ("float64", 40), ("float64", 740)])
def test_numpy_semantics_is_np_fmod_bit_for_bit(dtype, span):
    # the chunked exact forms (NOTE (exact fmod)), across chunk edges and with
    # broadcasting, against NumPy's own fmod; span 740: subnormals and near-overflow
    rng = np.random.default_rng(3)
    n = 20000
    with np.errstate(over="ignore"):
        a = (rng.standard_normal(n) * np.exp(rng.uniform(-span, span, n))).astype(dtype)
        b = (rng.standard_normal(n) * np.exp(rng.uniform(-span, span, n))).astype(dtype)
    a[::97], b[::89], b[::101] = np.nan, 0.0, -np.inf
    with np.errstate(all="ignore"):
        _same_bits(numpy_fmod(a, b), np.fmod(a, b), "fmod")
        _same_bits(numpy_fmod(a.reshape(100, 200), b[:200]), np.fmod(a.reshape(100, 200), b[:200]),
                   "broadcast")
        assert numpy_fmod(a, a.dtype.type(0.1)).dtype == a.dtype


@pytest.mark.parametrize("n", [1 << 12, 37])
def test_compiled_fmod_with_a_few_lanes_past_the_exact_form(n):
    # the vector IR's branch: lanes with |a / b| >= 2**53 (or NaN, b = 0) among ordinary
    # ones take frem; a short array takes the scalar path
    rng = np.random.default_rng(5)
    a = (rng.standard_normal(n) * 100).astype(np.float32)
    b = (rng.standard_normal(n) + 3).astype(np.float32)
    a[::61], b[::67], b[5] = 3e38, 1e-30, 0.0
    with np.errstate(invalid="ignore"):
        want = np.fmod(a, b)
    got = tg.compile(lambda x, y: tg.fmod(x, y) * 1.0)(tg.tensor(a), tg.tensor(b)).numpy()
    _same_bits(got, want, "compiled fmod")
    # a strided (non-contiguous) operand keeps the scalar path
    got = tg.compile(lambda x, y: tg.fmod(x[::2], y[::2]))(tg.tensor(a), tg.tensor(b)).numpy()
    _same_bits(got, want[::2], "strided fmod")


def test_integer_and_mixed_operands_keep_their_dtypes():
    for x, y in ((np.array([7, -7, 5]), np.array([2, 2, -3])),
                 (np.array([7, -7, 5]), 2.5), (np.array([True, False]), np.array([3, 3]))):
        for name in NAMES:
            want = getattr(torch, name)(torch.tensor(x), torch.tensor(y) if
                                        isinstance(y, np.ndarray) else y)
            got = getattr(tg, name)(tg.tensor(x), tg.tensor(y) if isinstance(y, np.ndarray) else y)
            assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1], name
            np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("name", ["fmod", "remainder"])
def test_gradients_match_torch_eager_and_compiled(name):
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((4, 5)) * 5, rng.standard_normal(5) + 0.3
    w = rng.standard_normal((4, 5))

    def loss(mod, x, y):
        return (getattr(mod, name)(x, y) * mod.tensor(w)).sum()
    want = []
    x, y = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    loss(torch, x, y).backward()
    want = (x.grad.numpy(), y.grad.numpy())
    for run in (lambda x, y: loss(tg, x, y), tg.compile(lambda x, y: loss(tg, x, y))):
        x, y = tg.tensor(a, requires_grad=True), tg.tensor(b, requires_grad=True)
        run(x, y).backward()
        np.testing.assert_allclose(x.grad.numpy(), want[0], rtol=1e-12)
        np.testing.assert_allclose(y.grad.numpy(), want[1], rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [4096, 5])
def test_sign_of_nan_and_signed_zero_as_torch_eager_and_compiled(dtype, n):
    # n = 4096 float32: the vector IR; 5 or float64: the scalar path
    x = np.resize(np.array([np.nan, -np.nan, -0.0, 0.0, -3.0, 2.0, np.inf, -1e-45], dtype), n)
    want = torch.sign(torch.tensor(x)).numpy()
    _same_bits(tg.sign(tg.tensor(x)).numpy(), want, "eager sign")
    _same_bits(tg.compile(lambda t: tg.sign(t) * 1.0)(tg.tensor(x)).numpy(), want, "compiled")


def test_cuda_renderings():
    from tracegrad.codegen import render_cuda
    from tracegrad.codegen.ops import Op
    rules = render_cuda.CUDA_RULES
    assert rules[Op.FMOD](None, np.dtype("float32"), "a", "b") == "fmodf(a, b)"
    assert rules[Op.FMOD](None, np.dtype("float64"), "a", "b") == "fmod(a, b)"
    assert "a + " not in rules[Op.SIGN](None, np.dtype("float32"), "a")   # NaN gives 0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_scalar_paths_fmod_is_vectorised_through_its_vector_forms(dtype, monkeypatch):
    # NOTE (fmod vector variants): the branch to frem sits in a function whose vector forms
    # LLVM's loop vectoriser calls; without them the loop ran scalar (2.7x slower, float64)
    from tracegrad.codegen.loop_ir import BufferArg, KernelBuilder
    from tracegrad.codegen.ops import Op
    from tracegrad.codegen import render_llvm_vector
    from tracegrad.codegen.render_llvm import render_llvm
    from tracegrad.runtime import llvm_jit
    monkeypatch.setattr(render_llvm_vector, "ENABLED", False)   # float32: the scalar path too
    n = 1000
    kb = KernelBuilder("fmod_scalar_path", outer=n)
    x, y = kb.emit(Op.LOAD, ("buf0", "o"), dtype), kb.emit(Op.LOAD, ("buf1", "o"), dtype)
    kb.store("buf2", "o", kb.emit(Op.FMOD, (x, y), dtype))
    dt = np.dtype(dtype)
    kernel = kb.finish([BufferArg("buf0", dt, n, False), BufferArg("buf1", dt, n, False),
                        BufferArg("buf2", dt, n, True)])
    module = llvm_jit.compile_llvm(render_llvm(kernel), ["fmod_scalar_path"])
    assert re.search(r"call <\d+ x (double|float)> @tg\.fmod\.fix\.v", module.optimized_ir)
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(n).astype(dt) * 100, rng.standard_normal(n).astype(dt) + 3
    a[::97], b[::89], b[5] = np.finfo(dt).max, np.finfo(dt).tiny, 0.0   # frem's lanes
    out = np.zeros(n, dt)
    module.functions["fmod_scalar_path"](n, [a, b, out], [])
    with np.errstate(invalid="ignore"):
        _same_bits(out, np.fmod(a, b), "kernel fmod")


def test_symbolic_sizes_and_the_dump_keep_working(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_DUMP", str(tmp_path))
    f = tg.compile(lambda x, y: (x % y) // 0.5 + tg.fmod(x, 3.0), dynamic=True)
    rng = np.random.default_rng(11)
    for n in (37, 100, 1000, 53):
        a = (rng.standard_normal(n) * 1e3).astype(np.float32)
        b = (rng.standard_normal(n) + 0.5).astype(np.float32)
        want = (tg.tensor(a) % tg.tensor(b)) // 0.5 + tg.fmod(tg.tensor(a), 3.0)
        _same_bits(f(tg.tensor(a), tg.tensor(b)).numpy(), want.numpy(), f"n={n}")
    assert any("fmod" in p.name for p in tmp_path.rglob("*.ll"))


def test_float16_eager_matches_torch():
    values = [np.nan, np.inf, -np.inf, -0.0, 0.0, 3.0, -2.5, 0.1, -7.0, 6e-8, 65504.0, -0.3]
    a, b = (v.ravel().astype(np.float16) for v in np.meshgrid(values, values))
    for name in NAMES:
        want = getattr(torch, name)(torch.tensor(a), torch.tensor(b)).numpy()
        got = getattr(tg, name)(tg.tensor(a), tg.tensor(b)).numpy()
        assert got.dtype == np.float16
        _same_bits(got, want, f"float16 {name}")
    x = np.array([np.nan, -0.0, 2.0], np.float16)
    _same_bits(tg.sign(tg.tensor(x)).numpy(), torch.sign(torch.tensor(x)).numpy(), "sign")


@pytest.mark.parametrize("op", ["%=", "//=", "**="])
def test_augmented_assignment_writes_into_the_tensor_as_torch(op):
    """x %= y, x //= y and x **= y change x itself: an alias and the base of a view see the
    new values (they rebound x to a new tensor, so the base kept 5, 6, 7)."""
    results = []
    for lib in (tg, torch):
        base = lib.tensor([5.0, -6.0, 7.5])
        alias, view = base, base[1:]
        exec(f"view {op} lib.tensor([4.0, -2.0])", {"view": view, "lib": lib})
        scalar = lib.tensor([5, -6, 7])
        kept = scalar
        exec(f"scalar {op} 3", {"scalar": scalar})
        results.append((np.asarray(alias.numpy()), np.asarray(kept.numpy())))
    (tg_base, tg_int), (torch_base, torch_int) = results
    _same_bits(tg_base, torch_base, op)
    assert tg_int.dtype == torch_int.dtype and (tg_int == torch_int).all(), op


def test_remainder_gradient_where_the_quotient_rounds_onto_an_integer():
    # torch's -floor_divide(a, b) for b (NOTE (remainder's gradient)): was -30 and -10
    grads = []
    for lib in (tg, torch):
        a = lib.tensor([3.0, 1.0, 7.0], dtype=lib.float64, requires_grad=True)
        b = lib.tensor([0.1, 0.1, 0.7], dtype=lib.float64, requires_grad=True)
        (a % b).sum().backward()
        grads.append(np.asarray(b.grad.numpy()))
    np.testing.assert_array_equal(*grads)


@pytest.mark.parametrize("mode", ["floor", "trunc"])
def test_div_in_place_with_a_rounding_mode_as_torch(mode):
    """x.div_(y, rounding_mode=...) was refused (UnsupportedArgumentError)."""
    got = []
    for lib in (tg, torch):
        x, xi = lib.tensor([5.5, -7.0, 3.0, -0.0]), lib.tensor([7, -7, 9, 0])
        view = x[1:]
        view.div_(lib.tensor([2.0, -0.5, 3.0]), rounding_mode=mode)
        xi.div_(lib.tensor([2, 2, -4, 5]), rounding_mode=mode)
        got.append((np.asarray(x.numpy()), np.asarray(xi.numpy())))
    _same_bits(got[0][0], got[1][0], mode)
    assert got[0][1].dtype == got[1][1].dtype and (got[0][1] == got[1][1]).all()


def test_out_arguments_compile_instead_of_running_eagerly():
    """fmod(..., out=o) and friends in a compiled function: np.copyto of a traced value
    raised TypeError, so the function ran eagerly with a warning; the copy is traced."""
    def body(a, b, o, oi):
        tg.fmod(a, b, out=o)
        tg.remainder(a[:2], 2.5, out=o[:2])
        tg.floor_divide(a[2:], b, out=o[2:])
        tg.add(a, 1, out=oi)   # a cast into out's dtype
        return o * 2

    f = tg.compile(body, fullgraph=True)
    b = tg.tensor(np.float64(1.7))
    for lo in (-4.0, -5.0):
        a = tg.tensor(np.linspace(lo, 4, 5))
        outs = [(tg.empty(5, dtype=tg.float64), tg.zeros(5, dtype=tg.float32)) for _ in "ab"]
        want, got = body(a, b, *outs[0]), f(a, b, *outs[1])
        _same_bits(got.numpy(), want.numpy(), "result")
        for x, y in zip(*outs):
            assert x.dtype == y.dtype
            _same_bits(y.numpy(), x.numpy(), "out")
