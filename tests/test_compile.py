"""@compile: compiled results and gradients equal eager; the signature cache; fallbacks."""
import subprocess
import sys
import warnings

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.compiler.errors import TraceError

RTOL, ATOL = 1e-5, 1e-6  # float32; differences come only from reassociated reductions


def gelu(x):
    return 0.5 * x * (1 + torch.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


def softmax_last(x):
    e = (x - x.amax(-1, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / (var + 1e-5).sqrt() * w + b


FUNCTIONS = {
    "gelu": (gelu, [(64, 33)]),
    "silu": (lambda x: x * torch.sigmoid(x), [(1000,)]),
    "softmax": (softmax_last, [(16, 40)]),
    "log_softmax": (lambda x: torch.log_softmax(x, -1), [(8, 24)]),
    "layer_norm": (layer_norm, [(12, 32), (32,), (32,)]),
    "broadcast": (lambda a, b: (a * b + a.exp()).sum(0), [(5, 1, 3), (4, 3)]),
    "views": (lambda x: x.t()[::2, 1:].reshape(-1) * 2 + x.flip(0).permute(1, 0)[::2, 1:].reshape(-1),
              [(6, 8)]),
    "pad_slice": (lambda x: x.pad_dims([(1, 2), (0, 3)]).tanh()[1:-1], [(4, 5)]),
    "reductions": (lambda x: x.max(1).values + x.min(1).values + x.sum(1) + x.mean(1)
                   + x.var(1), [(7, 9)]),
    "zero_d": (lambda x, y: (x * y).sum() + y, [(3,), ()]),
    "matmul_relu": (lambda x, w, b: torch.relu(x @ w + b).sum(-1), [(8, 16), (16, 4), (4,)]),
    "erf_sin_cos": (lambda x: torch.erf(x) + x.sin() * x.cos() + x.abs().sqrt(), [(50,)]),
    "where_cmp": (lambda x: torch.where(x > 0, x, x * 0.1) + (x < 0.5).float(), [(30,)]),
    "cat_stack": (lambda a, b: torch.cat([a, b * 2], 0).sum(0) + torch.stack([a, b]).mean(0).sum(0),
                  [(3, 4), (3, 4)]),
}


def _inputs(shapes, requires_grad=False, seed=0):
    rng = np.random.default_rng(seed)
    return [torch.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=requires_grad)
            for s in shapes]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_compiled_equals_eager(name):
    fn, shapes = FUNCTIONS[name]
    xs = _inputs(shapes)
    compiled = torch.compile(fn, fullgraph=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = compiled(*xs)
    np.testing.assert_allclose(got.numpy(), fn(*xs).numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_compiled_gradients_equal_eager(name):
    fn, shapes = FUNCTIONS[name]
    xs = _inputs(shapes, requires_grad=True)
    compiled = torch.compile(fn, fullgraph=True)
    compiled(*xs).sum().backward()
    got = [x.grad.numpy().copy() for x in xs]
    for x in xs:
        x.grad = None
    fn(*xs).sum().backward()
    for g, x in zip(got, xs):
        np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_same_signature_neither_traces_nor_compiles():
    calls = []

    def f(x):
        calls.append(1)
        return x * 2

    c = torch.compile(f, dynamic=False)  # specialised per shape (tests/test_symbolic.py: dynamic)
    x = torch.randn(4)
    c(x), c(x), c(torch.randn(4))
    assert len(calls) == 1
    info = c.cache_info()
    assert (info.hits, info.misses, info.entries) == (2, 1, 1)
    c(torch.randn(5))  # a new batch size: one more trace and compile
    assert len(calls) == 2 and c.cache_info().misses == 2


def test_python_floats_are_runtime_scalars():
    c = torch.compile(lambda x, lr: x * lr)
    x = torch.randn(3)
    for lr in (0.1, 0.2, 0.3):
        np.testing.assert_allclose(c(x, lr).numpy(), x.numpy() * lr, rtol=1e-6)
    assert c.cache_info().misses == 1


def test_static_argnames_make_a_float_static():
    def f(x, scale):
        return x * scale
    c = torch.compile(f, static_argnames=("scale",))
    x = torch.randn(3)
    c(x, 0.5), c(x, 0.25)
    assert c.cache_info().misses == 2
    np.testing.assert_allclose(c(x, 0.25).numpy(), x.numpy() * 0.25)


def test_grad_mode_and_requires_grad_are_part_of_the_signature():
    c = torch.compile(lambda x: x.exp())
    x = torch.randn(3, requires_grad=True)
    c(x)
    with torch.no_grad():
        assert not c(x).requires_grad
    c(x.detach())
    assert c.cache_info().misses == 3


def test_captured_parameters_are_read_at_every_call():
    w = torch.ones(3)
    c = torch.compile(lambda x: x * w)
    x = torch.ones(3)
    assert c(x).tolist() == [1, 1, 1]
    w.mul_(3)
    assert c(x).tolist() == [3, 3, 3]
    assert c.cache_info().misses == 1


def test_nested_containers_in_and_out():
    def f(d, pair):
        a, b = pair
        return {"sum": d["x"] + a, "list": [b * 2, (a - b,)]}
    c = torch.compile(f)
    x, a, b = _inputs([(3,), (3,), (3,)])
    out = c({"x": x}, (a, b))
    ref = f({"x": x}, (a, b))
    np.testing.assert_allclose(out["sum"].numpy(), ref["sum"].numpy())
    np.testing.assert_allclose(out["list"][1][0].numpy(), ref["list"][1][0].numpy())


def test_untraceable_code_falls_back_with_a_warning_naming_the_line():
    def f(x):
        if x.sum().item() > 0:
            return x * 2
        return x * 3
    c = torch.compile(f)
    x = torch.ones(3)
    with pytest.warns(RuntimeWarning, match=r"test_compile\.py:\d+"):
        out = c(x)
    assert out.tolist() == [2, 2, 2]
    with pytest.raises(TraceError, match="item"):
        torch.compile(f, fullgraph=True)(x)


def test_genuine_errors_surface_as_eager_errors():
    c = torch.compile(lambda a, b: a + b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # eager's error alone, as PyTorch shows it
        with pytest.raises(RuntimeError, match="broadcast"):
            c(torch.ones(2, 3), torch.ones(4))


def test_non_hashable_argument_is_a_clear_error():
    c = torch.compile(lambda x, opts: x)
    with pytest.raises(TypeError, match="hashable"):
        c(torch.ones(1), {1, 2})


def test_random_ops_draw_from_the_global_generator():
    c = torch.compile(lambda x: x + torch.rand(3))
    torch.manual_seed(0)
    a = c(torch.zeros(3))
    b = c(torch.zeros(3))
    assert not np.allclose(a.numpy(), b.numpy())
    torch.manual_seed(0)
    np.testing.assert_allclose(c(torch.zeros(3)).numpy(), a.numpy())
    torch.manual_seed(0)
    np.testing.assert_allclose(torch.rand(3).numpy(), a.numpy())


def test_uniform_and_normal_in_place_draw_fresh_numbers_at_every_call():
    def fill(x):
        t = torch.empty(64)
        t.uniform_(-2.0, 3.0)
        return x + t, torch.empty(2, 32).normal_(1.0, 2.0)

    c = torch.compile(fill)
    x = torch.zeros(64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an eager fallback warns: this must compile
        torch.manual_seed(0)
        u1, n1 = c(x)
        u2, n2 = c(x)
    assert not np.allclose(u1.numpy(), u2.numpy()) and not np.allclose(n1.numpy(), n2.numpy())
    assert (u1.numpy() >= -2).all() and (u1.numpy() < 3).all()
    torch.manual_seed(0)
    eu, en = fill(x)
    np.testing.assert_allclose(u1.numpy(), eu.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(n1.numpy(), en.numpy(), rtol=RTOL, atol=ATOL)


def test_nn_init_uniform_inside_compile_draws_fresh_numbers():
    c = torch.compile(lambda x: x + torch.nn.init.kaiming_uniform_(torch.empty(4, 8)))
    x = torch.zeros(4, 8)
    torch.manual_seed(1)
    a, b = c(x), c(x)
    assert not np.allclose(a.numpy(), b.numpy())
    torch.manual_seed(1)
    np.testing.assert_allclose(a.numpy(), torch.nn.init.kaiming_uniform_(torch.empty(4, 8)).numpy(),
                               rtol=RTOL, atol=ATOL)


def _forward_kernels(fn, *shapes):
    report = torch.compile(fn).explain(*_inputs(shapes))
    return [k for k in report.kernels if k.stage == "forward"], report


def test_softmax_is_one_kernel():
    kernels, _ = _forward_kernels(softmax_last, (64, 128))
    assert len(kernels) == 1


def test_log_softmax_is_one_kernel():
    kernels, _ = _forward_kernels(lambda x: torch.log_softmax(x, -1), (64, 128))
    assert len(kernels) == 1


def test_layer_norm_is_one_kernel():
    kernels, _ = _forward_kernels(layer_norm, (64, 128), (128,), (128,))
    assert len(kernels) == 1


def test_gelu_chain_is_one_kernel():
    kernels, _ = _forward_kernels(gelu, (1000,))
    assert len(kernels) == 1
    assert {"TANH", "POW"} <= set(kernels[0].ops)


def test_seed_mlp_forward_is_two_matmuls_and_fused_epilogues():
    def mlp(x, w1, w2, y):
        return ((x.mm(w1).clamp(min=0).mm(w2) - y) ** 2).sum()
    kernels, report = _forward_kernels(mlp, (64, 100), (100, 20), (20, 10), (64, 10))
    assert sum(1 for e in report.externs if e.endswith("MATMUL")) == 2
    assert len(kernels) == 2


def test_explain_sources_are_complete_llvm_modules():
    import llvmlite.binding as llvm
    llvm.initialize_native_target()
    _, report = _forward_kernels(layer_norm, (4, 8), (8,), (8,))
    for k in report.kernels:
        llvm.parse_assembly(k.source).verify()
        assert k.name and k.ops
    text = str(report)
    assert "traced graph" in text and "loop IR" in text and "define" in text


def test_second_process_hits_the_disk_cache(tmp_path):
    script = (
        "import tracegrad as torch, time\n"
        "from tracegrad.runtime import llvm_jit\n"
        "f = torch.compile(lambda x: (x * 3.5).tanh() + 1)\n"
        "f(torch.ones(7))\n"
        "print(sum(1 for m in llvm_jit._MODULES.values() if m.from_disk_cache) if hasattr(llvm_jit, '_MODULES') else 'na')\n")
    env = {"TRACEGRAD_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    import os
    env = {**os.environ, **env}
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    files = list(tmp_path.rglob("*"))
    assert any(f.is_file() for f in files)
    second = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr


def test_module_compile_keeps_parameters_live():
    nn = pytest.importorskip("tracegrad.nn")
    if not hasattr(nn, "Linear"):
        pytest.skip("nn.Linear not available yet")
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    compiled = torch.compile(model)
    x = torch.randn(2, 4)
    np.testing.assert_allclose(compiled(x).detach().numpy(), model(x).detach().numpy(),
                               rtol=RTOL, atol=ATOL)
    with torch.no_grad():
        model.weight.mul_(2)
    np.testing.assert_allclose(compiled(x).detach().numpy(), model(x).detach().numpy(),
                               rtol=RTOL, atol=ATOL)
    compiled(x).sum().backward()
    assert model.weight.grad is not None


def test_failed_llvm_compile_falls_back_with_the_ir_path(monkeypatch):
    from tracegrad.runtime import cpu_program, driver

    def broken(*args, **kwargs):
        raise RuntimeError("LLVM said no")
    monkeypatch.setattr(cpu_program, "compile_llvm", broken)
    monkeypatch.setattr(cpu_program, "compile_llvm_many", broken)
    monkeypatch.setattr(driver, "compile_llvm_many", broken)   # a program's drivers
    c = torch.compile(lambda x: x.exp() + 1)
    x = torch.randn(5)
    with pytest.warns(RuntimeWarning, match=r"running eagerly") as record:
        out = c(x)
    np.testing.assert_allclose(out.numpy(), x.exp().numpy() + 1, rtol=1e-6)
    message = str(record[0].message)
    path = message.split("the generated IR is in ")[1].split(")")[0].split(";")[0].strip()
    import os
    assert any(f.endswith(".ll") for f in os.listdir(path))


def test_memory_stats_are_visible_and_the_pool_can_be_emptied():
    from tracegrad import runtime
    c = torch.compile(lambda x: x * 2 + 1)
    c(torch.randn(512, 1024))
    stats = runtime.memory_stats()
    assert stats["peak_allocated_bytes"] >= 512 * 1024 * 4
    runtime.empty_cache()
    assert runtime.memory_stats()["pooled_bytes"] == 0


def test_explain_with_the_cuda_backend_needs_no_gpu():
    c = torch.compile(softmax_last, backend="cuda")
    report = c.explain(torch.randn(8, 32))
    assert report.kernels and all(k.backend == "cuda" for k in report.kernels)
    assert all('extern "C"' in k.source and "__global__" in k.source for k in report.kernels)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            c(torch.randn(8, 32))


# ---- edge cases: arity, generators ---------------------------------------------------
def test_wrong_arity_raises_type_error_at_once_without_a_fallback_warning():
    @torch.compile
    def mul(x, y):
        return x * y

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "tracing failed ... eagerly" warning fails this
        with pytest.raises(TypeError, match=r"mul\(\) missing 1 required positional argument"):
            mul(torch.ones(3))
        with pytest.raises(TypeError, match="takes 2 positional arguments but 3 were given"):
            mul(torch.ones(3), torch.ones(3), torch.ones(3))
        with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
            mul(torch.ones(3), torch.ones(3), z=1)
    assert mul.cache_info().misses == 0
    np.testing.assert_array_equal(mul(torch.ones(3), torch.full((3,), 2.0)).numpy(), [2, 2, 2])


def test_compiled_module_checks_arity_against_forward():
    net = torch.compile(torch.nn.Linear(3, 2))
    assert type(net).__name__ == "OptimizedModule"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match="forward"):
            net(torch.ones(1, 3), torch.ones(1, 3))


def test_generator_function_falls_back_with_a_clear_warning():
    @torch.compile
    def powers(x):
        for k in range(3):
            yield x * k

    with pytest.warns(RuntimeWarning,
                      match=r"test_compile\.py:\d+ \(def powers\).*returned a generator"):
        out = list(powers(torch.ones(2)))
    assert [o.tolist() for o in out] == [[0, 0], [1, 1], [2, 2]]


def test_function_returning_a_generator_falls_back_or_raises_with_fullgraph():
    def lazy(x):
        return (x * k for k in range(3))

    with pytest.warns(RuntimeWarning, match="returned a generator"):
        out = list(torch.compile(lazy)(torch.ones(2)))
    assert [o.tolist() for o in out] == [[0, 0], [1, 1], [2, 2]]
    with pytest.raises(TraceError, match="returned a generator"):
        torch.compile(lazy, fullgraph=True)(torch.ones(2))
