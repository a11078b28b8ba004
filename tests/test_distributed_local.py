"""tracegrad.distributed in one process, without MPI: errors before a process group
exists, the sampler's shards, and the autograd hook that DDP builds on."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.distributed as dist
from tracegrad.nn.parallel.reducer import build_buckets
from tracegrad.utils.data.distributed import DistributedSampler


def test_import_tracegrad_does_not_import_mpi4py():
    code = ("import tracegrad, tracegrad.distributed, tracegrad.nn.parallel, sys; "
            "import tracegrad.utils.data.distributed; print('mpi4py' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_collective_before_init_and_unknown_backend_are_clear():
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="all_reduce: Default process group has not been "
                                           "initialized"):
        dist.all_reduce(torch.ones(2))
    with pytest.raises(RuntimeError, match="get_rank: Default process group"):
        dist.get_rank()
    with pytest.raises(ValueError, match="unknown backend 'nccl'.*backend='mpi'"):
        dist.init_process_group(backend="nccl")
    with pytest.raises(RuntimeError, match="DistributedSampler.*not initialized"):
        DistributedSampler(range(4))
    from tracegrad.nn.parallel import DistributedDataParallel
    with pytest.raises(RuntimeError, match="DistributedDataParallel: Default process group"):
        DistributedDataParallel(torch.nn.Linear(2, 2))


def _pytorch_shards(n, replicas, rank, shuffle, seed, epoch, drop_last):
    # PyTorch's algorithm, written out over a given permutation
    perm = list(np.asarray(torch.randperm(n, generator=torch.Generator().manual_seed(
        seed + epoch)).tolist())) if shuffle else list(range(n))
    if drop_last and n % replicas:
        num = -(-(n - replicas) // replicas)
    else:
        num = -(-n // replicas)
    total = num * replicas
    if drop_last:
        perm = perm[:total]
    else:
        while len(perm) < total:
            perm += perm[:total - len(perm)]
    return perm[rank:total:replicas]


@pytest.mark.parametrize("n,replicas", [(10, 3), (2, 4), (9, 3), (1, 1), (7, 2)])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_shards_are_equal_and_cover_the_dataset(n, replicas, shuffle, drop_last):
    shards = []
    for rank in range(replicas):
        s = DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=shuffle,
                               seed=5, drop_last=drop_last)
        s.set_epoch(1)
        shards.append(list(s))
        assert len(shards[-1]) == len(s)
        assert shards[-1] == _pytorch_shards(n, replicas, rank, shuffle, 5, 1, drop_last)
    assert len({len(x) for x in shards}) == 1
    flat = [i for x in shards for i in x]
    if drop_last:
        assert len(set(flat)) == len(flat) == n - n % replicas
    else:
        assert set(flat) == set(range(n))


def test_sampler_epochs_differ_and_rank_is_checked():
    s = DistributedSampler(range(50), num_replicas=2, rank=0, seed=0)
    first = list(s)
    assert list(s) == first
    s.set_epoch(1)
    assert list(s) != first
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)


def test_buckets_respect_the_cap_and_dtype():
    ps = [torch.nn.Parameter(torch.zeros(n)) for n in (100, 300, 50, 1000)]
    ps.insert(2, torch.nn.Parameter(torch.zeros(10, dtype=torch.float64)))
    buckets = build_buckets(ps, cap_bytes=1600)
    assert [[p.numel() for p in b.params] for b in buckets] == [[1000], [50], [10], [300, 100]]
    assert buckets[2].flat.dtype == np.float64 and buckets[3].offsets == [0, 300]


# ---- Tensor.register_post_accumulate_grad_hook (the hook DDP starts buckets from) ------
def test_post_accumulate_hook_fires_before_backward_finishes():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8),
                                torch.nn.Tanh(), torch.nn.Linear(8, 2))
    events = []
    for name, p in model.named_parameters():
        p.register_post_accumulate_grad_hook(
            lambda t, name=name: events.append((name, t.grad.numpy().copy())))
    x = torch.randn(3, 4, requires_grad=True)
    h = model[0](x)
    h.register_hook(lambda g: events.append(("first layer output", None)))
    model[4](model[3](model[2](model[1](h)))).sum().backward()
    names = [n for n, _ in events]
    # the last layer's parameters are final before the backward reaches the first layer
    assert names.index("4.weight") < names.index("first layer output")
    assert names.index("2.weight") < names.index("first layer output")
    assert sorted(names[:-2] + names[-2:]) == sorted(names) and len(events) == 7
    for name, grad in events:
        if grad is not None:
            np.testing.assert_array_equal(grad, model.get_parameter(name).grad.numpy())


def test_post_accumulate_hook_sees_accumulated_grad_and_is_removable():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    (w * 3).sum().backward()
    (w * w).sum().backward()
    assert seen == [[3.0, 3.0], [5.0, 7.0]]
    handle.remove()
    (w * 1).sum().backward()
    assert len(seen) == 2
    with pytest.raises(RuntimeError, match="non-leaf"):
        (w * 2).register_post_accumulate_grad_hook(lambda t: None)


def test_post_accumulate_hook_in_place_change_does_not_leak():
    # a + b hands the same gradient array to both leaves and to the rest of the graph;
    # a hook that scales a's .grad in place must change neither b's grad nor c's.
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0, 4.0], requires_grad=True)
    c = torch.tensor([0.5, 0.5], requires_grad=True)
    a.register_post_accumulate_grad_hook(lambda t: t.grad.mul_(10.0))
    s = a + b
    ((s * c).sum() + s.sum()).backward()
    assert a.grad.tolist() == [15.0, 15.0]
    assert b.grad.tolist() == [1.5, 1.5]
    assert c.grad.tolist() == [4.0, 6.0]


def test_post_accumulate_hook_with_autograd_grad_does_not_fire():
    w = torch.tensor([1.0], requires_grad=True)
    fired = []
    w.register_post_accumulate_grad_hook(lambda t: fired.append(1))
    (g,) = torch.autograd.grad((w * 2).sum(), w)
    assert g.tolist() == [2.0] and fired == [] and w.grad is None


def test_info_names_the_mpi_library():
    out = subprocess.run([sys.executable, "-m", "tracegrad", "info"], capture_output=True,
                         text=True, check=True, timeout=120).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("MPI: "))
    if dist.is_available():
        import mpi4py
        assert "MPI standard" in line and f"mpi4py {mpi4py.__version__}" in line, line
    else:
        assert "not available" in line and "tracegrad[distributed]" in line
