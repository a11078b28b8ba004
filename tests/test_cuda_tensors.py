"""CUDA tensors on the simulated device (or a real GPU with TRACEGRAD_TEST_CUDA=pycuda):
moves, conversions, ``tracegrad.cuda``, eager ops against the CPU, autograd, nn modules,
optimizer steps and state_dict round trips."""
from __future__ import annotations

import gc
import io

import numpy as np
import pytest

from sim_device import CXX_FOUND, on_real_gpu, release_test_device, use_test_device

import tracegrad
import tracegrad.nn as nn
import tracegrad.nn.functional as F
from tracegrad import _cuda_tensor

pytestmark = pytest.mark.skipif(not (CXX_FOUND or on_real_gpu()), reason="g++ not found")


@pytest.fixture(scope="module", autouse=True)
def device():
    dev, _ = use_test_device()
    yield dev
    release_test_device()


def _pair(*shape, seed=0, dtype=np.float32, positive=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    if positive:
        x = np.abs(x) + 0.1
    return tracegrad.tensor(x), tracegrad.tensor(x, device="cuda")


def _close(cuda_t, cpu_t, tol=1e-5):
    assert cuda_t.device == tracegrad.device("cuda:0")
    got = cuda_t.detach().cpu().numpy()
    want = cpu_t.detach().numpy()
    assert got.shape == want.shape and got.dtype == want.dtype
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


# -- moves and conversions ------------------------------------------------------------------

def test_creation_and_moves():
    for t in (tracegrad.zeros(2, 3, device="cuda"), tracegrad.ones(4, device="cuda:0"),
              tracegrad.randn(3, 3, device=tracegrad.device("cuda")),
              tracegrad.arange(5, device="cuda"), tracegrad.tensor([1, 2]).cuda(),
              tracegrad.full((2,), 7.0).to("cuda"), tracegrad.eye(3).to(tracegrad.device("cuda"))):
        assert t.device == tracegrad.device("cuda", 0) and t.is_cuda
    x = tracegrad.tensor([[1.5, -2.0], [3.0, 4.25]])
    c = x.cuda()
    assert c.cuda() is c and c.to("cuda") is c
    back = c.cpu()
    assert back.device == tracegrad.device("cpu") and not back.is_cuda
    np.testing.assert_array_equal(back.numpy(), x.numpy())
    assert c.to(tracegrad.float64).dtype == tracegrad.float64
    assert c.to("cpu", tracegrad.int64).tolist() == [[1, -2], [3, 4]]
    r = tracegrad.randn(3, device="cuda", requires_grad=True)
    assert r.is_leaf and r.requires_grad and r.is_cuda


@pytest.mark.parametrize("make", [lambda x: x.new_zeros(2), lambda x: x.new_ones((2, 3)),
                                  lambda x: x.new_full((2,), 4.0), lambda x: x.new_empty(3),
                                  lambda x: x.new_tensor([1.0, 2.0]),
                                  lambda x: tracegrad.zeros_like(x),
                                  lambda x: tracegrad.full_like(x, 2.0),
                                  lambda x: tracegrad.rand_like(x),
                                  lambda x: tracegrad.randn_like(x)])
def test_new_and_like_follow_the_device(make):
    assert make(tracegrad.ones(2, 2, device="cuda")).is_cuda
    assert not make(tracegrad.ones(2, 2)).is_cuda


def test_numpy_item_tolist_and_printing():
    c = tracegrad.tensor([[1.0, 2.0], [3.0, 4.0]], device="cuda")
    with pytest.raises(TypeError, match="can't convert cuda:0 device type tensor to numpy. "
                                        "Use Tensor.cpu\\(\\) to copy the tensor"):
        c.numpy()
    with pytest.raises(TypeError, match="can't convert cuda:0"):
        np.asarray(c)
    assert c.sum().item() == 10.0 and c.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert repr(c) == ("tensor([[1., 2.],\n        [3., 4.]], device='cuda:0')")
    assert float(c[1, 1]) == 4.0


def test_tracegrad_cuda_module(device):
    assert tracegrad.cuda.is_available()
    assert tracegrad.cuda.device_count() >= 1 and tracegrad.cuda.current_device() == 0
    tracegrad.cuda.synchronize()
    # an earlier test's device tensor held in a reference cycle would otherwise be freed
    # by the collector between the two readings (seen: 512 bytes gone mid-test)
    gc.collect()
    before = tracegrad.cuda.memory_allocated()
    t = tracegrad.zeros(1 << 18, device="cuda")            # 1 MiB
    assert tracegrad.cuda.memory_allocated() - before >= 1 << 20
    del t
    assert tracegrad.cuda.memory_allocated() == before
    assert tracegrad.cuda.memory_reserved() >= before
    tracegrad.cuda.empty_cache()
    assert tracegrad.cuda.memory_stats()["cached_bytes"] == 0
    # CUDA random numbers come from the host generator: the CPU's numbers for one seed;
    # cuda.manual_seed leaves the CPU stream alone, as PyTorch's does
    tracegrad.manual_seed(3)
    a = tracegrad.randn(4, device="cuda")
    tracegrad.manual_seed(3)
    tracegrad.cuda.manual_seed(5)
    np.testing.assert_array_equal(a.cpu().numpy(), tracegrad.randn(4).numpy())


def test_mixed_devices_raise_pytorch_error():
    cpu, cuda = _pair(3, 4)
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device, but "
                                           "found at least two devices, cuda:0 and cpu!"):
        cuda + cpu
    with pytest.raises(RuntimeError, match="same device"):
        cuda @ tracegrad.ones(4, 2)
    # a 0-d CPU tensor joins a CUDA op, as in PyTorch
    _close(cuda * tracegrad.tensor(2.0), cpu * 2.0)


# -- eager ops: each a one-op kernel, equal to the CPU ---------------------------------------

UNARY = ["exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "neg", "sin", "cos", "floor",
         "reciprocal", "erf"]


@pytest.mark.parametrize("name", UNARY)
def test_unary_ops(name):
    cpu, cuda = _pair(5, 7, positive=name in ("log", "sqrt", "reciprocal"))
    _close(getattr(cuda, name)(), getattr(cpu, name)())


@pytest.mark.parametrize("fn", [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b,
                                lambda a, b: a / b, lambda a, b: a ** 2, lambda a, b: a * 0.5 + 1,
                                lambda a, b: tracegrad.maximum(a, b), lambda a, b: a < b,
                                lambda a, b: tracegrad.where(a > 0, a, b),
                                lambda a, b: (a > b).float(), lambda a, b: a.to(tracegrad.int32)])
def test_binary_and_where_with_broadcasting(fn):
    a_cpu, a = _pair(4, 6, seed=1)
    b_cpu, b = _pair(6, seed=2)
    _close(fn(a, b), fn(a_cpu, b_cpu))


@pytest.mark.parametrize("fn", [lambda x: x.sum(), lambda x: x.sum(dim=1), lambda x: x.mean(0),
                                lambda x: x.max(dim=1).values, lambda x: x.amin(dim=0),
                                lambda x: x.prod(dim=1, keepdim=True), lambda x: x.argmax(dim=1),
                                lambda x: x.softmax(dim=-1), lambda x: x.log_softmax(dim=1),
                                lambda x: x.var(dim=1), lambda x: x.cumsum(dim=1)])
def test_reductions(fn):
    cpu, cuda = _pair(6, 40, seed=3)
    _close(fn(cuda), fn(cpu))


@pytest.mark.parametrize("fn", [lambda x: x.T, lambda x: x.reshape(8, 15),
                                lambda x: x.permute(1, 0)[2:7], lambda x: x[:, ::-2],
                                lambda x: x[1], lambda x: x.unsqueeze(0).expand(2, 12, 10),
                                lambda x: tracegrad.cat([x, x * 2], dim=1),
                                lambda x: x[tracegrad.tensor([0, 3, 3]).cuda()
                                            if x.is_cuda else tracegrad.tensor([0, 3, 3])],
                                lambda x: F.pad(x, (1, 2)), lambda x: x.flatten()])
def test_views_indexing_and_copies(fn):
    cpu, cuda = _pair(12, 10, seed=4)
    _close(fn(cuda), fn(cpu))


def test_matmul_and_linear():
    a_cpu, a = _pair(33, 70, seed=5)
    b_cpu, b = _pair(70, 20, seed=6)
    _close(a @ b, a_cpu @ b_cpu, tol=1e-4)
    _close(a @ b[:, :5], a_cpu @ b_cpu[:, :5], tol=1e-4)
    w_cpu, w = _pair(20, 70, seed=7)
    _close(F.linear(a, w), F.linear(a_cpu, w_cpu), tol=1e-4)


def test_an_op_compiles_once_per_shape_and_dtype():
    _, x = _pair(9, 9, seed=8)
    x.exp()
    before = _cuda_tensor.stats["compiles"]
    for _ in range(3):
        x.exp()
    assert _cuda_tensor.stats["compiles"] == before
    _pair(9, 10)[1].exp()
    assert _cuda_tensor.stats["compiles"] == before + 1


@pytest.mark.parametrize("write", [lambda x, d: x.__setitem__(1, 5.0),
                                   lambda x, d: x.__setitem__((slice(None), 0),
                                                              tracegrad.tensor(7.0, device=d)),
                                   lambda x, d: x.fill_(3), lambda x, d: x.clamp_(0, 1),
                                   lambda x, d: x.copy_(tracegrad.ones(3, 4, device=d)),
                                   lambda x, d: x.uniform_(), lambda x, d: x.mul_(x)])
def test_in_place_writes_equal_the_cpu(write):
    got = {}
    for dev in ("cpu", "cuda"):
        tracegrad.manual_seed(0)
        x = tracegrad.arange(12.0, device=dev).reshape(3, 4)   # its base is gone: writable
        write(x, dev)
        got[dev] = x.cpu().numpy()
    np.testing.assert_array_equal(got["cuda"], got["cpu"])


@pytest.mark.parametrize("write", [lambda x: x[0].add_(1), lambda x: x.T.mul_(2),
                                   lambda x: x.view(12).zero_()])
def test_a_write_through_a_view_of_a_live_cuda_tensor_raises_instead_of_missing_it(write):
    # NOTE (device views): CUDA views are copies; a silent write into the copy alone would
    # leave the base unchanged where PyTorch changes it
    x = tracegrad.arange(12.0).reshape(3, 4).cuda()
    with pytest.raises(RuntimeError, match="in-place write into a view of a live CUDA tensor"):
        write(x)
    assert x.cpu().tolist() == np.arange(12.0).reshape(3, 4).tolist()


def test_in_place_ops_rebind_storage():
    cpu, cuda = _pair(4, 5, seed=9)
    cuda.add_(1).mul_(2)
    cpu.add_(1).mul_(2)
    _close(cuda, cpu)
    cuda.zero_()
    assert cuda.abs().sum().item() == 0


# -- autograd, modules, optimizers ------------------------------------------------------------

def test_autograd_on_the_device_equals_the_cpu():
    x_cpu, x = _pair(8, 16, seed=10)
    w_cpu, w = _pair(16, 5, seed=11)
    for t in (x, w, x_cpu, w_cpu):
        t.requires_grad_()
    y = tracegrad.tensor([0, 1, 4, 2, 3, 3, 1, 0])

    def loss(a, b, target):
        h = F.layer_norm(a, (16,)) @ b
        return F.cross_entropy(F.gelu(h), target) + h.softmax(-1).pow(2).mean()
    loss(x, w, y.cuda()).backward()
    loss(x_cpu, w_cpu, y).backward()
    _close(x.grad, x_cpu.grad, tol=1e-5)
    _close(w.grad, w_cpu.grad, tol=1e-5)
    assert x.grad.is_cuda


def test_gradients_flow_through_moves():
    x = tracegrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x.cuda() * tracegrad.tensor([2.0, 3.0, 4.0]).cuda()).sum().backward()
    assert not x.grad.is_cuda and x.grad.tolist() == [2.0, 3.0, 4.0]


def _mlp():
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(),
                         nn.Linear(32, 3))


@pytest.mark.parametrize("make_opt", [lambda p: tracegrad.optim.SGD(p, lr=0.1),
                                      lambda p: tracegrad.optim.SGD(p, lr=0.05, momentum=0.9,
                                                                    weight_decay=1e-3),
                                      lambda p: tracegrad.optim.Adam(p, lr=1e-2),
                                      lambda p: tracegrad.optim.AdamW(p, lr=1e-2)])
def test_mlp_training_steps_match_the_cpu(make_opt):
    tracegrad.manual_seed(0)
    cpu_model = _mlp()
    cuda_model = _mlp()
    cuda_model.load_state_dict(cpu_model.state_dict())
    cuda_model.cuda()
    assert all(p.is_cuda for p in cuda_model.parameters())
    opts = make_opt(cpu_model.parameters()), make_opt(cuda_model.parameters())
    rng = np.random.default_rng(0)
    for step in range(4):
        x = tracegrad.tensor(rng.standard_normal((16, 10)).astype(np.float32))
        y = tracegrad.tensor(rng.integers(0, 3, 16))
        losses = []
        for model, opt, xx, yy in ((cpu_model, opts[0], x, y), (cuda_model, opts[1], x.cuda(),
                                                                 y.cuda())):
            opt.zero_grad()
            loss = F.cross_entropy(model(xx), yy)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert abs(losses[0] - losses[1]) < 1e-5, (step, losses)
    for p_cpu, p_cuda in zip(cpu_model.parameters(), cuda_model.parameters()):
        _close(p_cuda, p_cpu, tol=1e-5)


def test_state_dict_saves_cpu_data_and_loads_back():
    model = nn.Linear(6, 4).cuda()
    buf = io.BytesIO()
    tracegrad.save(model.state_dict(), buf)
    buf.seek(0)
    loaded = tracegrad.load(buf)
    assert all(not v.is_cuda for v in loaded.values())
    fresh = nn.Linear(6, 4).cuda()
    fresh.load_state_dict(loaded)
    assert fresh.weight.is_cuda
    _close(fresh.weight, model.weight.cpu())
    opt = tracegrad.optim.Adam(model.parameters())
    model(tracegrad.ones(2, 6, device="cuda")).sum().backward()
    opt.step()
    state = opt.state_dict()
    opt2 = tracegrad.optim.Adam(fresh.parameters())
    opt2.load_state_dict(state)


# -- compile ------------------------------------------------------------------------------------

def test_compile_runs_fused_kernels_on_the_device_forward_and_backward(device):
    from tracegrad.runtime.cuda_program import CudaProgram

    def fn(x, w, b):
        return F.layer_norm(F.gelu(x @ w + b), (24,)).softmax(-1)
    compiled = tracegrad.compile(fn)
    x_cpu, x = _pair(16, 40, seed=12)
    w_cpu, w = _pair(40, 24, seed=13)
    b_cpu, b = _pair(24, seed=14)
    for t in (w, b, w_cpu, b_cpu):
        t.requires_grad_()
    launches = device.launches
    out = compiled(x, w, b)
    assert out.is_cuda and device.launches > launches
    entry = next(iter(compiled._cache.values()))
    assert isinstance(entry.forward, CudaProgram) and isinstance(entry.backward, CudaProgram)
    want = fn(x_cpu, w_cpu, b_cpu)
    _close(out, want, tol=1e-5)
    weights = tracegrad.arange(24, device="cuda") / 24
    (out * weights).sum().backward()
    (want * weights.cpu()).sum().backward()
    _close(w.grad, w_cpu.grad, tol=1e-4)
    _close(b.grad, b_cpu.grad, tol=1e-4)
    compiled(x, w, b)
    assert (compiled.misses, compiled.hits) == (1, 1)


def test_compile_reads_module_parameters_on_the_device(device):
    model = _mlp().cuda()
    compiled = tracegrad.compile(model)
    x = tracegrad.randn(8, 10, device="cuda")
    _close(compiled(x), model(x).cpu(), tol=1e-5)


def _gelu_sum(x):
    return F.gelu(x * 2 + 1).sum(-1)


def test_explain_shows_cuda_c_ptx_and_launch_geometry():
    from tracegrad.runtime.cuda_ptx import find_nvcc
    compiled = tracegrad.compile(_gelu_sum)
    x = tracegrad.randn(6, 300, device="cuda")
    report = compiled.explain(x)
    assert report.backend == "cuda" and report.kernels
    text = str(report)
    for k in report.kernels:
        assert "__global__" in k.source
        grid, block = k.geometry
        assert len(grid) == 3 and len(block) == 3 and 0 < block[0] <= 1024
        assert f"## launch geometry of {k.name}: grid={grid} block={block}" in text
        if find_nvcc() is None:
            assert "PTX not shown: nvcc not found" in k.ptx
        else:
            assert ".entry" in k.ptx, k.ptx[:300]
        assert k.ptx in text


def test_dump_writes_cuda_c_ptx_and_geometry_per_kernel(tmp_path, monkeypatch):
    from tracegrad.compiler import dump
    monkeypatch.setenv("TRACEGRAD_DUMP", str(tmp_path))
    monkeypatch.setattr(dump, "_records", [])
    compiled = tracegrad.compile(_gelu_sum)
    compiled(tracegrad.randn(5, 70, device="cuda"))
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    cus = sorted(folder.glob("*.cu"))
    assert cus and not list(folder.glob("*.ll"))
    for cu in cus:
        assert "__global__" in cu.read_text()
        ptx = cu.with_suffix(".ptx").read_text()
        assert ".entry" in ptx or "PTX not shown" in ptx
        assert cu.with_suffix(".geometry.txt").read_text().startswith("grid=(")
    assert "## kernels" in (tmp_path / "index.md").read_text()


def test_compile_copies_a_small_saved_argument_on_the_device():
    # NOTE (inputs read by backward), compiler/partition.py: a small argument the backward
    # recomputes from is copied on the device at the call, so changing it in place before
    # backward leaves the gradient as eager mode's
    def fn(x, b):
        return F.softmax(x + b, 1) * x

    compiled = tracegrad.compile(fn)
    weights = np.linspace(-1.0, 1.0, 20, dtype=np.float32).reshape(4, 5)
    for seed in range(2):
        r = np.random.RandomState(seed)
        grads = []
        for f, where in ((fn, "cpu"), (compiled, "cuda")):
            x = tracegrad.tensor(r.randn(4, 5).astype(np.float32), device=where,
                                 requires_grad=True)
            b = tracegrad.tensor(np.arange(5, dtype=np.float32), device=where)
            y = f(x, b)
            with tracegrad.no_grad():
                b.mul_(-3.0)
            (y * tracegrad.tensor(weights, device=where)).sum().backward()
            grads.append(x.grad.cpu().numpy())
            r = np.random.RandomState(seed)
        np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-6)
    entry = next(iter(compiled._cache.values()))
    assert entry.saved_copies   # the device copy was the path taken
