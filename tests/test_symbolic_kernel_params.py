"""Kernel bodies that depend on a symbolic size take it as a parameter (NOTE (kernel
parameters) in tracegrad/compiler/symbolic_params.py): reductions over ``s0``, ``1/N``,
strides that are multiples of ``s0``, attention's T x T.  One LLVM compile serves every
size; every result equals eager (values and gradients)."""
import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn.functional as F
from tracegrad.compiler import dynamic
from tracegrad.compiler.symbolic import FloatForm, Poly, fit, instantiate
from tracegrad.runtime import cpu_program


@pytest.fixture(autouse=True)
def _check_instances(monkeypatch):
    """Every program a symbolic group serves is also planned for real and compared."""
    monkeypatch.setattr(dynamic, "CHECK_INSTANCES", True)


def test_fit_finds_polynomials_and_float_forms_of_the_size():
    sizes = (4, 5, 9)
    assert fit([n * n * 3 + 2 * n for n in sizes], sizes) == Poly((0, 2, 3))
    recip = fit([1.0 / (2 * n) for n in sizes], sizes)
    assert isinstance(recip, FloatForm) and recip.kind == "recip"
    assert instantiate(recip, 37) == 1.0 / 74
    unbiased = fit([float(np.float32(1.0 / (n - 1))) for n in sizes], sizes)
    assert unbiased.f32 and instantiate(unbiased, 12) == float(np.float32(1.0 / 11))
    assert instantiate(fit([slice(0, n, 1) for n in sizes], sizes), 7) == slice(0, 7, 1)
    with pytest.raises(Exception, match="no polynomial in the size"):
        fit([n // 2 for n in sizes], sizes)       # 2, 2, 4: no integer polynomial
    with pytest.raises(Exception, match="no known function of the size"):
        fit([np.log(n) for n in sizes], sizes)


REDUCTIONS = {
    "sum": lambda x: x.sum(0),
    "mean": lambda x: (x * 3).mean(0),
    "mean_all": lambda x: x.mean(),
    "var": lambda x: x.var(0),
    "std_biased": lambda x: x.std(0, unbiased=False),
    "softmax": lambda x: F.softmax(x, dim=0),
    "log_softmax": lambda x: F.log_softmax(x, dim=0),
    "layer_norm": lambda x: F.layer_norm(x.t(), (x.shape[0],)),
    "max": lambda x: x.amax(0) + x.logsumexp(0),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions_over_the_symbolic_axis_compile_once(name):
    fn = REDUCTIONS[name]
    c = torch.compile(fn, dynamic=True)
    for n in (8, 5, 3, 2, 13, 40, 6):
        x = torch.randn(n, 6, requires_grad=True)
        got = c(x)
        got.sum().backward()
        g = x.grad.numpy().copy()
        x.grad = None
        want = fn(x)
        want.sum().backward()
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-4, atol=1e-5)
    info = c.cache_info()
    assert info.misses == 1, info
    assert "take size parameters" in info.symbolic[0], info


class _CountCompiles:
    def __init__(self, monkeypatch):
        self.kernels = 0
        real, real_many = cpu_program.compile_llvm, cpu_program.compile_llvm_many

        def counting(source, names, **options):
            self.kernels += cpu_program.CANONICAL_NAME in names
            return real(source, names, **options)

        def counting_many(sources, name, **options):   # a program's kernels: one batch
            self.kernels += len(sources) if name == cpu_program.CANONICAL_NAME else 0
            return real_many(sources, name, **options)
        monkeypatch.setattr(cpu_program, "compile_llvm", counting)
        monkeypatch.setattr(cpu_program, "compile_llvm_many", counting_many)


def test_one_llvm_compile_of_each_kernel_serves_every_size(monkeypatch):
    count = _CountCompiles(monkeypatch)
    c = torch.compile(lambda x: F.softmax(x, dim=0) * x.mean(0), dynamic=True)
    x = torch.randn(7, 5)
    np.testing.assert_allclose(c(x).numpy(), (F.softmax(x, 0) * x.mean(0)).numpy(),
                               rtol=1e-5, atol=1e-6)
    after_first = count.kernels
    for n in (3, 11, 29, 4):
        x = torch.randn(n, 5)
        np.testing.assert_allclose(c(x).numpy(), (F.softmax(x, 0) * x.mean(0)).numpy(),
                                   rtol=1e-5, atol=1e-6)
    assert count.kernels == after_first        # no kernel compiled for a later size
    group = next(iter(c._groups.values())).fits[0]
    program = group.kernels_forward.program
    text = "\n".join(k.loop_ir for k in program.kernels)
    # a reduction over leading dims loads its extent from its own lengths already
    # (NOTE (length parameters), codegen/size_params.py); the fit made those follow s0
    assert ("LOAD(p_int64, %pk0)" in text and "in [0, %pe0)" in text
            or "LOAD(lens, %lk0)" in text and "in [0, %le0)" in text), text
    # the compiled kernels are the group's own: the same functions at every size
    entry = c._cache[next(k for k in c._cache if k[1][0][0] == (29, 5))]
    assert all(entry.forward.kernels[k.name] is group.kernels_forward.kernels[k.name]
               for k in entry.forward_plan.kernels)


def test_sizes_0_and_1_stay_specialised_with_parameters():
    c = torch.compile(lambda x: x.mean(0), dynamic=True)
    for n in (6, 1, 9):
        x = torch.randn(n, 3)
        np.testing.assert_allclose(c(x).numpy(), x.mean(0).numpy(), rtol=1e-5, atol=1e-7)
    assert c.cache_info().misses == 2


LENGTHS = (8, 5, 3, 16, 2, 9, 17, 32, 7, 4, 6, 10, 11, 12, 13, 14, 15, 18)   # 16: the width


def _attention_modules():
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(16, 2, batch_first=True)
    layer = torch.nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0,
                                             batch_first=True)
    return {"mha": (mha, lambda x: mha(x, x, x)[0]), "encoder": (layer, layer)}


@pytest.mark.parametrize("name", ["mha", "encoder"])
def test_attention_over_18_lengths_compiles_at_most_twice(name):
    module, fn = _attention_modules()[name]
    c = torch.compile(fn)
    rng = np.random.default_rng(0)
    for t in LENGTHS:
        x = torch.from_numpy(rng.standard_normal((2, t, 16)).astype(np.float32))
        np.testing.assert_allclose(c(x).detach().numpy(), fn(x).detach().numpy(),
                                   rtol=1e-4, atol=1e-5)
    info = c.cache_info()
    assert info.misses <= 2, info
    assert info.symbolic[0].startswith("s0 = arg 0 dim 1"), info


@pytest.mark.parametrize("name", ["mha", "encoder"])
def test_attention_training_step_gradients_over_18_lengths(name):
    module, fn = _attention_modules()[name]
    params = list(module.parameters())

    def step(x):
        for p in params:
            p.grad = None
        loss = (fn(x) ** 2).mean()
        loss.backward()
        return loss

    c = torch.compile(step, fullgraph=True)
    rng = np.random.default_rng(1)
    for t in LENGTHS:
        x = torch.from_numpy(rng.standard_normal((2, t, 16)).astype(np.float32))
        loss = c(x).item()
        grads = [p.grad.numpy().copy() for p in params]
        want = step(x).item()
        np.testing.assert_allclose(loss, want, rtol=1e-5)
        for g, p in zip(grads, params):
            np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-3, atol=1e-5)
    info = c.cache_info()
    assert info.misses <= 2, info


def test_seed_training_step_is_symbolic_after_two_batch_sizes():
    d_in, h, d_out, lr = 50, 20, 10, 1e-3

    def make():
        rng = np.random.default_rng(0)
        w1 = torch.from_numpy(rng.standard_normal((d_in, h)).astype(np.float32))
        w2 = torch.from_numpy(rng.standard_normal((h, d_out)).astype(np.float32))
        w1.requires_grad_()
        w2.requires_grad_()
        opt = torch.optim.SGD([w1, w2], lr=lr)

        def step(x, y):
            opt.zero_grad()
            loss = (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()
            loss.backward()
            opt.step()
            return loss
        return step, (w1, w2)

    step_c, params_c = make()
    step_e, params_e = make()
    compiled = torch.compile(step_c, fullgraph=True)
    rng = np.random.default_rng(2)
    for n in (64, 64, 64, 17, 64, 64, 17, 33, 64, 5):   # epochs with a short last batch
        x = torch.from_numpy(rng.standard_normal((n, d_in)).astype(np.float32))
        y = torch.from_numpy(rng.standard_normal((n, d_out)).astype(np.float32))
        np.testing.assert_allclose(compiled(x, y).item(), step_e(x, y).item(), rtol=1e-4)
        for a, b in zip(params_c, params_e):
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(),
                                       rtol=1e-4, atol=1e-5)
    info = compiled.cache_info()
    # 64, 64 again (the step's own guard: from the second step on the .grad fields exist
    # when it starts), then 17 makes s0; 33 and 5 are served by it
    assert info.misses == 3, info
    assert info.symbolic[0].startswith("s0 = arg 0 dim 0, arg 1 dim 0"), info
    assert "sizes [5, 17, 33]" in info.symbolic[0], info


def test_the_trace_guard_compares_nan_constants_and_array_attributes():
    from tracegrad.codegen.graph import Graph
    from tracegrad.codegen.ops import Op

    def graph(value, table):
        g = Graph()
        x = g.add(Op.INPUT, (), (3,), "float32", index=0)
        c = g.add(Op.CONST, (), (3,), "float32", value=value)
        g.outputs = [g.add(Op.ADD, (x.id, c.id), (3,), "float32", table=table).id]
        return g
    same_graph = dynamic._same_graph
    assert same_graph(graph(float("nan"), np.arange(3)), graph(float("nan"), np.arange(3)))
    assert not same_graph(graph(float("nan"), np.arange(3)), graph(1.0, np.arange(3)))
    assert not same_graph(graph(1.0, np.arange(3)), graph(1.0, np.arange(1, 4)))
    assert not same_graph(graph(1.0, None), graph(2.0, None))


def test_a_parametrised_program_means_the_same_in_the_interpreter_and_llvm():
    from codegen_testing import run_interp

    def fn(x):
        return F.log_softmax(x.t() @ x, dim=0) * x.var(0)

    c = torch.compile(fn, dynamic=True)
    c(torch.randn(6, 4))
    group = next(iter(c._groups.values())).fits[0]
    assert group.parametrised >= 1
    for n in (2, 9, 23):
        plan, _ = group._run_plans(n)
        x = np.random.default_rng(n).standard_normal((n, 4)).astype(np.float32)
        want = fn(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(c(torch.from_numpy(x)).numpy(), want, rtol=1e-4, atol=1e-5)
        got = run_interp(plan, [x])[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("with_optimizer", [False, True])
def test_dataloader_epochs_of_a_training_step_compile_once_after_two_sizes(with_optimizer):
    from tracegrad.utils.data import DataLoader, TensorDataset

    def make():
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(),
                                  torch.nn.Linear(16, 4))
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            if with_optimizer:
                opt.step()
            return loss
        return net, step

    net_c, step_c = make()
    net_e, step_e = make()
    compiled = torch.compile(step_c, fullgraph=True)
    rng = np.random.default_rng(3)
    data = TensorDataset(torch.from_numpy(rng.standard_normal((100, 8)).astype(np.float32)),
                         torch.from_numpy(rng.integers(0, 4, 100)))
    for _epoch in range(3):                  # batches of 32, 32, 32 and 4
        for x, y in DataLoader(data, batch_size=32):
            np.testing.assert_allclose(compiled(x, y).item(), step_e(x, y).item(), rtol=1e-5)
            for a, b in zip(net_c.parameters(), net_e.parameters()):
                np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4,
                                           atol=1e-6)
                np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(),
                                           rtol=1e-5, atol=1e-6)
    info = compiled.cache_info()
    # 32, 32 again (from the second step on the .grad fields exist when the step starts),
    # then 4 makes s0 (its trace is the steady one), served from then on
    assert info.misses == 3, info
    assert info.symbolic[0].startswith("s0 = arg 0 dim 0, arg 1 dim 0"), info


def test_a_size_whose_constant_equals_another_one_retraces_and_stays_correct():
    def f(x):                      # at s0=2 the mean's 1/2 is the tracer's shared 0.5
        y = (x * 0.5).exp()
        return y.mean(0, keepdim=True) * y

    c = torch.compile(f, dynamic=True)
    for n in (3, 2, 5, 2):
        x = torch.randn(n, 2)
        np.testing.assert_allclose(c(x).numpy(), f(x).numpy(), rtol=1e-5, atol=1e-6)
    info = c.cache_info()
    assert info.misses == 2 and "retraced s0=2: the trace differs" in info.symbolic[0], info


def test_the_cuda_renderer_refuses_a_run_time_extent_clearly():
    from tracegrad.codegen.render_cuda import render_cuda

    c = torch.compile(lambda x: x.sum(0), dynamic=True)
    c(torch.randn(5, 3))
    plan, _ = next(iter(c._groups.values())).fits[0]._run_plans(7)
    with pytest.raises(NotImplementedError, match="run-time extent .* CPU only"):
        for step in plan.kernels:
            render_cuda(step.kernel)


@pytest.mark.parametrize("name", ["softmax", "var", "layer_norm"])
def test_kernel_counts_are_those_of_the_specialised_program(name):
    fn = REDUCTIONS[name]
    symbolic = torch.compile(fn, dynamic=True)
    symbolic(torch.randn(6, 5, requires_grad=True))
    x = torch.randn(11, 5, requires_grad=True)
    symbolic(x)
    specialised = torch.compile(fn, dynamic=False)
    specialised(x)

    def kernels(c):
        entry = c._cache[next(k for k in c._cache if k[1][0][0] == (11, 5))]
        return [k.ops for k in entry.forward_plan.kernels + entry.backward_plan.kernels]
    assert kernels(symbolic) == kernels(specialised)
    assert symbolic.cache_info().misses == 1
