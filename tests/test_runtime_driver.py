"""The generated driver and NumPy's CBLAS: one native call per run of kernels and gemms,
results identical to the Python loop over steps."""
import llvmlite.binding as llvm
import numpy as np
import pytest

from tracegrad.codegen.schedule import plan
from tracegrad.runtime import cblas, cpu_program, native_pool
from tracegrad.runtime.cpu_program import CompiledProgram, _DriverCall, _ExternCall
from tracegrad.runtime.driver import driver_source
from codegen_testing import Builder, eval_graph, extern_eval

rng = np.random.default_rng(0)


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def both(graph, inputs, rtol=0.0):
    """Outputs with the driver and with the Python loop; they must agree bit for bit, or
    within ``rtol`` where a big gemm splits into other blocks on each path (NOTE (no bits
    across BLAS kernels) in tests/gemm_rounding.py)."""
    p = plan(graph)
    with_driver = CompiledProgram(p, extern_eval)
    cpu_program.USE_DRIVER = False
    try:
        loop = CompiledProgram(p, extern_eval)
    finally:
        cpu_program.USE_DRIVER = True
    got, want = with_driver(inputs), loop(inputs)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0)
    for a, r in zip(got, eval_graph(graph, inputs)):
        np.testing.assert_allclose(a, r, rtol=max(rtol, 1e-5), atol=1e-5)
    return with_driver


def test_numpy_blas_gemm_is_found_and_right():
    found = cblas.gemm_library()
    assert found is not None, "NumPy's wheels ship scipy-openblas with CBLAS symbols"
    assert "blas" in found.path.lower() and found.int_bits in (32, 64)
    a, b = randn(5, 7), randn(7, 3)
    np.testing.assert_allclose(cblas.gemm_numpy_check(a, b), a @ b, rtol=1e-6)
    a64, b64 = randn(4, 2, dtype=np.float64), randn(2, 6, dtype=np.float64)
    np.testing.assert_allclose(cblas.gemm_numpy_check(a64, b64), a64 @ b64, rtol=1e-12)


@pytest.mark.parametrize("shape, strides, want", [
    ((64, 100), (100, 1), (False, 100)),
    ((100, 64), (1, 100), (True, 100)),
    ((1, 100), (0, 1), (False, 100)),       # a size-1 dim's stride never moves
    ((64, 1), (1, 0), (False, 1)),
    ((3, 4), (8, 1), (False, 8)),           # a column slice: leading dimension 8
    ((3, 4), (0, 1), None),                 # broadcast rows
    ((3, 4), (4, 2), None),                 # every other column
    ((3, 4), (-4, 1), None),                # flipped rows
    ((0, 4), (4, 1), None),
    ((2, 3, 4), (12, 4, 1), None),
])
def test_gemm_operand_layouts(shape, strides, want):
    assert cblas.gemm_operand(shape, strides) == want


def test_seed_mlp_forward_and_backward_are_one_driver_call_each():
    b = Builder()
    x, w1, w2, g = b.input((64, 100)), b.input((100, 20)), b.input((20, 10)), b.input((64, 10))
    h = b.maximum(b.matmul(x, w1), b.const(0.0))
    y = b.matmul(h, w2)
    gh = b.matmul(g, b.permute(w2, perm=(1, 0)))                  # a transposed operand
    gw1 = b.matmul(b.permute(x, perm=(1, 0)), b.mul(gh, b.cmplt(b.const(0.0), h)))
    cp = both(b.graph(y, gw1), [randn(64, 100), randn(100, 20), randn(20, 10), randn(64, 10)])
    assert len(cp._calls) == 1 and isinstance(cp._calls[0], _DriverCall)
    assert len(cp.drivers) == 1 and cp.drivers[0].count(f"i32 {cblas.TRANS}") >= 2
    llvm.parse_assembly(cp.drivers[0]).verify()


def test_sliced_operand_reaches_gemm_at_an_offset():
    b = Builder()
    x, w = b.input((6, 9)), b.input((4, 5))
    xs = b.slice(x, index=(slice(1, 5), slice(2, 6)))             # ld 9, offset 11 elements
    cp = both(b.graph(b.exp(b.matmul(xs, w))), [randn(6, 9), randn(4, 5)])
    assert "getelementptr i8" in cp.drivers[0]


def test_returned_extern_splits_the_run_and_refreshes_addresses():
    b = Builder()
    x, w = b.input((8, 8)), b.input((8, 8))
    h = b.cast(b.matmul(b.exp(x), w), dtype="float16")           # a driver run first
    half = b.exp(b.cast(b.matmul(h, h), dtype="float32"))        # float16 matmul: NumPy's
    # a gemm and a kernel: a driver run last (one kernel alone would need none)
    cp = both(b.graph(b.add(b.matmul(half, w), x)), [randn(8, 8), randn(8, 8)])
    kinds = [(type(c).__name__, getattr(c, "refresh", None)) for c in cp._calls]
    # float16 casts and the float16 matmul are NumPy calls that return their arrays
    assert kinds[0] == ("_DriverCall", True) and kinds[-1] == ("_DriverCall", True)
    assert {k for k, _ in kinds[1:-1]} == {"_ExternCall"}
    # two calls in a row with fresh arrays: addresses are refreshed, not remembered
    inputs = [randn(8, 8), randn(8, 8)]
    np.testing.assert_allclose(cp(inputs)[0], eval_graph(b.g, inputs)[0], rtol=1e-2, atol=1e-2)


def test_batched_matmul_stays_a_numpy_call():
    b = Builder()
    x, w = b.input((3, 4, 5)), b.input((3, 5, 2))
    cp = both(b.graph(b.exp(b.matmul(x, w))), [randn(3, 4, 5), randn(3, 5, 2)])
    assert any(isinstance(c, _ExternCall) and c.step.node.op.name == "MATMUL" for c in cp._calls)


def test_big_kernels_stay_on_the_thread_pool(monkeypatch):
    """With the native pool off (on: tests/test_native_pool_programs.py)."""
    monkeypatch.setattr(cpu_program.cpu_threads, "n_threads", lambda: 2)
    monkeypatch.setattr(native_pool, "ENABLED", False)
    b = Builder()
    x = b.input((512, 512))
    cp = both(b.graph(b.exp(x)), [randn(512, 512)])
    assert [type(c).__name__ for c in cp._calls] == ["_KernelCall"]


def test_driver_source_names_no_address():
    """The driver's text depends on the program's shape only, so its object caches on disk."""
    b = Builder()
    x, w = b.input((4, 4)), b.input((4, 4))
    cp = both(b.graph(b.exp(b.matmul(x, w))), [randn(4, 4), randn(4, 4)])
    found = cblas.gemm_library()
    assert str(found.sgemm) not in cp.drivers[0] and "inttoptr" not in cp.drivers[0]
    assert driver_source([]).count("ret void") == 1


def test_steady_state_maps_no_new_memory():
    from tracegrad.runtime import memory_stats
    b = Builder()
    x, w = b.input((256, 256)), b.input((256, 256))
    # exp of a K=256 gemm: rounding of ~1e-5 in the gemm becomes relative error
    cp = both(b.graph(b.exp(b.matmul(x, w))), [randn(256, 256), randn(256, 256)], rtol=2e-4)
    inputs = [randn(256, 256), randn(256, 256)]
    for _ in range(3):
        cp(inputs)
    before = memory_stats()
    for _ in range(10):
        cp(inputs)
    after = memory_stats()
    assert after["misses"] == before["misses"] and after["mapped_bytes"] == before["mapped_bytes"]


@pytest.mark.parametrize("name", ["tracegrad.runtime.cblas", "tracegrad.runtime.driver",
                                  "tracegrad.runtime.native_index"])
def test_docstring_examples_run(name):
    import doctest
    import importlib
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


def test_a_rendering_that_failed_to_compile_is_not_reused(monkeypatch):
    b = Builder()
    x = b.input((2, 2))
    p = plan(b.graph(b.exp(x)))
    with monkeypatch.context() as m:
        m.setattr(cpu_program, "render_llvm", lambda kernel, **options: "this is not llvm")
        with pytest.raises(cpu_program.ProgramCompileError):
            CompiledProgram(p, extern_eval)
    x0 = randn(2, 2)
    np.testing.assert_allclose(CompiledProgram(plan(b.g), extern_eval)([x0])[0], np.exp(x0),
                               rtol=1e-6)
