"""Module machinery: registration, iteration, train/eval, zero_grad, state_dict round
trips and errors, dtype conversion keeping Parameter identity, hooks, containers, repr,
Parameter, init and utils."""
from __future__ import annotations

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn
import tracegrad.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.fc2 = nn.Linear(3, 2)
        self.scale = nn.Parameter(torch.ones(1))
        self.register_buffer("steps", torch.zeros(1))
        self.register_buffer("cache", torch.zeros(2), persistent=False)
        self.tag = "plain attribute"

    def forward(self, x):
        return self.fc2(F.relu(self.bn(self.fc1(x)))) * self.scale


def test_registration_and_iteration():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "fc2.weight",
                     "fc2.bias"]
    assert len(list(net.parameters())) == 7
    assert len(list(net.parameters(recurse=False))) == 1
    assert [n for n, _ in net.named_buffers()] == ["steps", "cache", "bn.running_mean",
                                                   "bn.running_var", "bn.num_batches_tracked"]
    assert [n for n, _ in net.named_children()] == ["fc1", "bn", "fc2"]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "bn", "fc2"]
    assert net.tag == "plain attribute" and "fc1" in dir(net) and "scale" in dir(net)
    with pytest.raises(AttributeError, match="'Net' object has no attribute 'nope'"):
        net.nope
    del net.fc2
    assert "fc2" not in dict(net.named_children())
    net.fc1 = None
    assert net.fc1 is None and "fc1" in net._modules
    with pytest.raises(TypeError, match="cannot assign 'int' as parameter 'scale'"):
        net.scale = 3
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, shared)
    assert len(list(seq.parameters())) == 2  # shared parameters counted once


def test_train_eval_zero_grad_requires_grad_apply():
    net = Net()
    net.eval()
    assert not net.training and not net.bn.training
    net.train()
    assert net.bn.training
    net(torch.randn(5, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(float(p.grad.abs().sum()) == 0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "BatchNorm1d", "Linear", "Net"]


def test_state_dict_round_trip_and_strictness():
    torch.manual_seed(0)
    a, b = Net(), Net()
    a(torch.randn(6, 4))  # moves the batch-norm running stats
    sd = a.state_dict()
    assert list(sd) == ["scale", "steps", "fc1.weight", "fc1.bias", "bn.weight", "bn.bias",
                        "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
                        "fc2.weight", "fc2.bias"]
    assert "cache" not in sd and not sd["fc1.weight"].requires_grad
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), sd[k].numpy())
    x = torch.randn(3, 4)
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    # loading copies values: the parameter objects stay the same
    w = b.fc1.weight
    b.load_state_dict(sd)
    assert b.fc1.weight is w
    partial = OrderedDict((k, v) for k, v in sd.items() if k != "fc2.bias")
    partial["extra.weight"] = torch.zeros(1)
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "fc2.bias"\..*\n.*'
                                           r'Unexpected key\(s\) in state_dict: "extra.weight"'):
        b.load_state_dict(partial)
    res = b.load_state_dict(partial, strict=False)
    assert res.missing_keys == ["fc2.bias"] and res.unexpected_keys == ["extra.weight"]
    bad = dict(sd)
    bad["fc1.weight"] = torch.zeros(5, 4)
    with pytest.raises(RuntimeError, match=r"size mismatch for fc1.weight: copying a param with "
                                           r"shape .*\[5, 4\].* from checkpoint, the shape in "
                                           r"current model is .*\[3, 4\]"):
        b.load_state_dict(bad)
    old = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    assert b.load_state_dict(old).missing_keys == []  # pre-0.4.1 checkpoints


def test_state_dict_pickles_and_deepcopy():
    net = Net()
    sd = pickle.loads(pickle.dumps(net.state_dict()))
    Net().load_state_dict(sd)
    clone = copy.deepcopy(net)
    assert isinstance(clone.fc1.weight, nn.Parameter)
    assert clone.fc1.weight is not net.fc1.weight
    np.testing.assert_array_equal(clone.fc1.weight.detach().numpy(), net.fc1.weight.detach().numpy())
    p = pickle.loads(pickle.dumps(nn.Parameter(torch.ones(2))))
    assert isinstance(p, nn.Parameter) and p.requires_grad


def test_dtype_conversion_keeps_parameter_identity():
    net = Net()
    w = net.fc1.weight
    net(torch.randn(4, 4)).sum().backward()
    assert net.double() is net
    assert net.fc1.weight is w and w.dtype == torch.float64 and w.grad.dtype == torch.float64
    assert isinstance(net.fc1.weight, nn.Parameter) and w.requires_grad
    assert net.bn.num_batches_tracked.dtype == torch.int64  # integer buffers keep their dtype
    assert net.steps.dtype == torch.float64
    net.to(torch.float32)
    assert w.dtype == torch.float32
    net.half().float()
    net.to("cpu")
    assert net.cpu() is net
    x = torch.randn(2, 4)
    assert net.to(x.double()).fc2.bias.dtype == torch.float64
    with pytest.raises(TypeError, match="floating point"):
        net.to(torch.int64)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_raises_clearly():
    with pytest.raises(Exception, match="(?i)cuda|gpu"):
        nn.Linear(2, 2).cuda()


def test_forward_hooks_and_pre_hooks():
    lin = nn.Linear(2, 2)
    calls = []
    h1 = lin.register_forward_pre_hook(lambda m, args: calls.append("pre") or (args[0] * 0,))
    h2 = lin.register_forward_hook(lambda m, args, out: calls.append("post") or out + 1)
    out = lin(torch.ones(1, 2))
    assert calls == ["pre", "post"]
    np.testing.assert_allclose(out.detach().numpy(), lin.bias.detach().numpy()[None] + 1, rtol=1e-6)
    h1.remove()
    h2.remove()
    calls.clear()
    lin(torch.ones(1, 2))
    assert calls == []
    order = []
    lin.register_forward_hook(lambda m, a, o: order.append(1))
    lin.register_forward_hook(lambda m, a, o: order.append(0), prepend=True)
    lin.register_forward_pre_hook(lambda m, a, k: (a, {}), with_kwargs=True)
    lin(torch.ones(1, 2))
    assert order == [0, 1]
    # hooks capture intermediate activations
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    acts = {}
    net[1].register_forward_hook(lambda m, a, o: acts.__setitem__("relu", o))
    net(torch.randn(4, 2))
    assert tuple(acts["relu"].shape) == (4, 3) and float(acts["relu"].min()) >= 0


def test_sequential_and_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    sub = seq[:2]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2 and sub[0] is seq[0]
    seq.append(nn.Sigmoid())
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear", "Sigmoid"]
    del seq[1]
    assert list(seq._modules) == ["0", "1", "2"]
    named = nn.Sequential(OrderedDict([("enc", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert named.enc is named[0] and [k for k in named.state_dict()] == ["enc.weight", "enc.bias"]
    x = torch.randn(3, 2)
    np.testing.assert_allclose(named(x).detach().numpy(), named.act(named.enc(x)).detach().numpy())
    ml = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    ml.append(nn.Linear(1, 2))
    assert len(ml) == 4 and len(list(ml.parameters())) == 8 and ml[-1].out_features == 2
    assert isinstance(ml[1:], nn.ModuleList)
    md = nn.ModuleDict({"a": nn.Linear(1, 1), "b": nn.ReLU()})
    assert list(md.keys()) == ["a", "b"] and "a" in md and len(list(md.parameters())) == 2
    pl = nn.ParameterList([nn.Parameter(torch.ones(2)), torch.zeros(3)])
    assert len(pl) == 2 and isinstance(pl[1], nn.Parameter)
    assert [n for n, _ in pl.named_parameters()] == ["0", "1"]

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
            self.ps = pl
    assert [n for n, _ in Holder().named_parameters()][:2] == ["blocks.0.weight", "blocks.0.bias"]


def test_nested_repr_like_pytorch():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                        nn.Sequential(nn.Flatten(), nn.Linear(16, 2, bias=False)), nn.Dropout(0.25))
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Flatten(start_dim=1, end_dim=-1)\n"
        "    (1): Linear(in_features=16, out_features=2, bias=False)\n"
        "  )\n"
        "  (3): Dropout(p=0.25, inplace=False)\n"
        ")")
    assert repr(nn.BatchNorm2d(3)) == ("BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, "
                                       "bias=True, track_running_stats=True)")
    assert repr(nn.Embedding(10, 3, padding_idx=0)) == "Embedding(10, 3, padding_idx=0)"
    assert repr(nn.LayerNorm(5)) == "LayerNorm((5,), eps=1e-05, elementwise_affine=True, bias=True)"
    assert repr(nn.ModuleList()) == "ModuleList()"
    assert repr(nn.Parameter(torch.tensor([1.0, 2.0]))) == \
        "Parameter containing:\ntensor([1., 2.], requires_grad=True)"


def test_parameter_semantics():
    t = torch.tensor([1.0, 2.0])
    p = nn.Parameter(t)
    assert isinstance(p, torch.Tensor) and p.requires_grad and p.is_leaf
    with torch.no_grad():
        p.mul_(2)
    assert t.tolist() == [2.0, 4.0]  # shares storage with the wrapped tensor
    q = nn.Parameter(torch.ones(2), requires_grad=False)
    assert not q.requires_grad
    out = p * 2
    assert type(out) is torch.Tensor
    with pytest.raises(TypeError, match="cannot assign"):
        nn.Linear(1, 1).register_parameter("w", torch.ones(1))


def test_init_functions():
    torch.manual_seed(0)
    w = torch.empty(200, 300)
    nn.init.xavier_uniform_(w)
    a = np.sqrt(6 / 500)
    assert np.abs(w.numpy()).max() <= a and abs(w.numpy().std() - a / np.sqrt(3)) < 0.01 * a
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.numpy().std() - np.sqrt(2 / 200)) < 0.003
    nn.init.kaiming_uniform_(w, a=0.1)
    bound = np.sqrt(3) * np.sqrt(2 / (1 + 0.01)) / np.sqrt(300)
    assert np.abs(w.numpy()).max() <= bound
    nn.init.xavier_normal_(w, gain=2.0)
    assert abs(w.numpy().std() - 2 * np.sqrt(2 / 500)) < 0.005
    nn.init.trunc_normal_(w, std=1.0, a=-0.5, b=1.0)
    assert w.numpy().min() >= -0.5 and w.numpy().max() <= 1.0 and w.numpy().mean() > 0
    q = torch.empty(4, 6)
    nn.init.orthogonal_(q, gain=2.0)
    np.testing.assert_allclose(q.numpy() @ q.numpy().T, 4 * np.eye(4), atol=1e-5)
    nn.init.eye_(q)
    assert q.numpy().trace() == 4
    nn.init.constant_(q, 0.3)
    assert np.all(q.numpy() == np.float32(0.3))
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(np.sqrt(2 / 1.04))
    assert nn.init._calculate_fan_in_and_fan_out(torch.empty(8, 3, 5, 5)) == (75, 200)
    p = nn.Parameter(torch.zeros(3))
    nn.init.normal_(p)  # works on leaves that require grad (no_grad inside)
    assert p.requires_grad and p.grad_fn is None
    torch.manual_seed(5)
    x1 = nn.Linear(3, 3).weight.detach().numpy().copy()
    torch.manual_seed(5)
    np.testing.assert_array_equal(nn.Linear(3, 3).weight.detach().numpy(), x1)


def test_clip_grad_and_vector_utils():
    p1, p2 = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(1))
    p1.grad = torch.tensor([3.0, 4.0])
    p2.grad = torch.tensor([12.0])
    total = nn.utils.clip_grad_norm_([p1, p2], max_norm=1.3)
    assert isinstance(total, torch.Tensor) and total.item() == pytest.approx(13.0)
    np.testing.assert_allclose(p1.grad.numpy(), [0.3, 0.4], rtol=1e-5)
    p1.grad = torch.tensor([3.0, -4.0])
    total = nn.utils.clip_grad_norm_([p1], 2.0, norm_type=float("inf"))
    assert total.item() == 4.0
    np.testing.assert_allclose(p1.grad.numpy(), [1.5, -2.0], rtol=1e-5)
    assert nn.utils.clip_grad_norm_(p1, 100.0, norm_type=1).item() == pytest.approx(3.5)
    p1.grad = torch.tensor([3.0, -4.0])
    nn.utils.clip_grad_value_([p1], 3.5)
    assert p1.grad.tolist() == [3.0, -3.5]
    net = nn.Linear(3, 2)
    vec = nn.utils.parameters_to_vector(net.parameters())
    assert tuple(vec.shape) == (8,)
    nn.utils.vector_to_parameters(torch.arange(8.0), net.parameters())
    assert net.weight.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]] and net.bias.tolist() == [6.0, 7.0]
    padded = nn.utils.rnn.pad_sequence([torch.ones(2, 3), torch.ones(4, 3)], padding_value=-1.0)
    assert tuple(padded.shape) == (4, 2, 3) and padded[3, 0, 0].item() == -1.0


def test_module_is_traced_by_compile_if_available():
    compile_ = getattr(torch, "compile", None)
    if compile_ is None:
        pytest.skip("tracegrad.compile not available yet")
    net = nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.LayerNorm(4))
    x = torch.randn(2, 3)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = compile_(lambda t: net(t))(x)
        except Exception as e:  # compile is under construction elsewhere
            pytest.skip(f"compile failed: {type(e).__name__}: {e}")
    np.testing.assert_allclose(out.detach().numpy(), net(x).detach().numpy(), rtol=1e-4, atol=1e-5)
