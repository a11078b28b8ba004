"""NOTE (flagged extrema) in codegen.render_llvm: a float MAX/MIN reduction runs one
vector max per element with a NaN flag beside it; it must still give np.max's answer
(NaN wherever the row holds one) at every position of the NaN, in the vector body and
in the remainder tail, and with infinities."""
import numpy as np
import pytest

from codegen_testing import Builder
from tracegrad.codegen.ops import Op
from tracegrad.codegen.render_llvm import render_llvm
from tracegrad.codegen.schedule import plan
from tracegrad.runtime import llvm_jit
from tracegrad.runtime.cpu_program import CompiledProgram

LENGTHS = [1, 7, 16, 17, 64, 100, 1024]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    llvm_jit.clear_memory_cache()


def special_rows(n: int, dtype) -> np.ndarray:
    """A plain row, then NaN at each of several positions, infinities, and rows of only
    -inf, only +inf and only NaN."""
    rng = np.random.default_rng(n)
    plain = rng.standard_normal(n).astype(dtype)
    rows = [plain]
    for pos in sorted({0, n // 2, max(n - 17, 0), n - 1}):
        r = plain.copy()
        r[pos] = np.nan
        rows.append(r)
    for value in (np.inf, -np.inf):
        r = plain.copy()
        r[n // 3] = value
        rows.append(r)
        r = r.copy()
        r[-1] = np.nan
        rows.append(r)
    rows += [np.full(n, v, dtype) for v in (-np.inf, np.inf, np.nan)]
    return np.stack(rows)


def compiled(op: Op, x: np.ndarray, then_sub: bool) -> np.ndarray:
    b = Builder()
    xi = b.input(x.shape, x.dtype.name)
    out = b.op(op, xi, axes=(1,), keepdim=then_sub)
    if then_sub:  # softmax's shape: the extremum read back inside the same row kernel
        out = b.op(Op.SUB, xi, out)
    return CompiledProgram(plan(b.graph(out)), None)([x])[0]


@pytest.mark.parametrize("then_sub", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", [Op.MAX, Op.MIN])
@pytest.mark.parametrize("n", LENGTHS)
def test_row_extrema_match_numpy_with_nan_and_inf(n, op, dtype, then_sub):
    x = special_rows(n, dtype)
    ref = (np.max if op is Op.MAX else np.min)(x, axis=1, keepdims=then_sub)
    if then_sub:
        with np.errstate(invalid="ignore"):
            ref = x - ref
    np.testing.assert_array_equal(compiled(op, x, then_sub), ref)


def test_float_max_reduction_renders_one_max_and_a_nan_flag():
    b = Builder()
    g = b.graph(b.op(Op.MAX, b.input((4, 64)), axes=(1,)))
    src = render_llvm(plan(g).kernels[0].kernel)
    assert "llvm.maximum" not in src  # six x86 instructions per vector on the chain
    assert "call nnan nsz float @\"llvm.maxnum.f32\"" in src
    assert "fcmp uno" in src


def test_integer_max_reduction_keeps_its_compare_and_select():
    b = Builder()
    x = np.array([[3, -7, 12, 5], [-1, -9, -4, -2]], np.int32)
    g = b.graph(b.op(Op.MAX, b.input(x.shape, "int32"), axes=(1,)))
    p = plan(g)
    assert "maxnum" not in render_llvm(p.kernels[0].kernel)
    np.testing.assert_array_equal(CompiledProgram(p, None)([x])[0], x.max(axis=1))
