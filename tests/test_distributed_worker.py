"""Run by tests/test_distributed.py under ``mpiexec -n 2`` (no pytest tests here):
``python tests/test_distributed_worker.py SCENARIO OUTDIR``. Each passed check appends
``OK <name>`` to OUTDIR/rank<r>.txt (mpiexec may split lines that the ranks print at the
same time); a failed check raises, which aborts the whole job."""
from __future__ import annotations

import gc
import os
import sys

import numpy as np

import tracegrad as torch
import tracegrad.distributed as dist
import tracegrad.nn.functional as F
from tracegrad import nn
from tracegrad.nn.parallel import DistributedDataParallel as DDP
from tracegrad.utils.data import DataLoader, TensorDataset
from tracegrad.utils.data.distributed import DistributedSampler

RANK = SIZE = OUTDIR = None


def ok(name: str) -> None:
    with open(os.path.join(OUTDIR, f"rank{RANK}.txt"), "a") as f:
        f.write(f"OK {name}\n")


def rank_values(r: int, shape=(3, 4), dtype=np.float32) -> np.ndarray:
    return (np.arange(np.prod(shape)).reshape(shape) * (r + 1) + r).astype(dtype)


def all_values(shape=(3, 4), dtype=np.float32) -> list:
    return [rank_values(r, shape, dtype) for r in range(SIZE)]


# ---- collectives ---------------------------------------------------------------------
def check_all_reduce() -> None:
    ref = all_values()
    for op, fn in ((dist.ReduceOp.SUM, np.sum), (dist.ReduceOp.PRODUCT, np.prod),
                   (dist.ReduceOp.MIN, np.min), (dist.ReduceOp.MAX, np.max),
                   (dist.ReduceOp.AVG, np.mean)):
        t = torch.from_numpy(rank_values(RANK).copy())
        storage = t._data
        dist.all_reduce(t, op=op)
        np.testing.assert_allclose(t.numpy(), fn(np.stack(ref), axis=0), rtol=1e-6)
        assert t._data is storage, "all_reduce must reduce in the tensor's own storage"
    # async, non-contiguous (a transposed view written back), int64, float16
    t = torch.from_numpy(rank_values(RANK).copy())
    work = dist.all_reduce(t, async_op=True)
    assert work.wait() and work.is_completed()
    np.testing.assert_allclose(t.numpy(), np.sum(ref, axis=0))
    base = torch.from_numpy(rank_values(RANK).copy())
    view = base.t()
    dist.all_reduce(view)
    np.testing.assert_allclose(base.numpy(), np.sum(ref, axis=0))
    t = torch.from_numpy(rank_values(RANK, dtype=np.int64).copy())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    assert t.dtype == torch.int64 and (t.numpy() == np.max(all_values(dtype=np.int64), 0)).all()
    t = torch.from_numpy(rank_values(RANK, dtype=np.float16).copy())
    dist.all_reduce(t)
    assert t.dtype == torch.float16
    np.testing.assert_allclose(t.numpy(), np.sum(all_values(dtype=np.float16), 0), rtol=1e-3)
    ok("all_reduce")


def check_broadcast_gather_scatter() -> None:
    ref = all_values()
    t = torch.from_numpy(rank_values(RANK).copy())
    dist.broadcast(t, src=SIZE - 1)
    np.testing.assert_array_equal(t.numpy(), ref[-1])
    t = torch.from_numpy(rank_values(RANK).copy())
    dist.broadcast(t, src=0, async_op=True).wait()
    np.testing.assert_array_equal(t.numpy(), ref[0])
    outs = [torch.zeros(3, 4) for _ in range(SIZE)]
    dist.all_gather(outs, torch.from_numpy(rank_values(RANK)))
    for o, r in zip(outs, ref):
        np.testing.assert_array_equal(o.numpy(), r)
    big = torch.zeros(SIZE * 3, 4)
    dist.all_gather_into_tensor(big, torch.from_numpy(rank_values(RANK)))
    np.testing.assert_array_equal(big.numpy(), np.concatenate(ref))
    objs = [None] * SIZE
    dist.all_gather_object(objs, {"rank": RANK, "name": f"r{RANK}"})
    assert objs == [{"rank": r, "name": f"r{r}"} for r in range(SIZE)]
    lst = [RANK, "x"] if RANK == 1 else [None, None]
    dist.broadcast_object_list(lst, src=1)
    assert lst == [1, "x"]
    # reduce_scatter: rank r's input r-th piece is rank_values(r) + 10 * piece index
    pieces = [torch.from_numpy(rank_values(RANK) + 10 * i) for i in range(SIZE)]
    out = torch.zeros(3, 4)
    dist.reduce_scatter(out, pieces)
    np.testing.assert_allclose(out.numpy(), np.sum(ref, 0) + 10 * RANK * SIZE)
    out = torch.zeros(3, 4)
    dist.reduce_scatter_tensor(out, torch.cat(pieces), op=dist.ReduceOp.AVG, async_op=True).wait()
    np.testing.assert_allclose(out.numpy(), np.mean(ref, 0) + 10 * RANK, rtol=1e-6)
    t = torch.from_numpy(rank_values(RANK).copy())
    dist.reduce(t, dst=1, op=dist.ReduceOp.MAX)
    np.testing.assert_array_equal(t.numpy(), np.max(ref, 0) if RANK == 1 else ref[RANK])
    ok("broadcast_gather_scatter")


def check_point_to_point() -> None:
    peer = 1 - RANK
    if RANK == 0:
        dist.send(torch.from_numpy(rank_values(0)), dst=peer, tag=7)
        got = torch.zeros(3, 4)
        assert dist.recv(got, src=None, tag=8) == peer
        np.testing.assert_array_equal(got.numpy(), rank_values(peer))
    else:
        got = torch.zeros(3, 4)
        assert dist.recv(got, src=0, tag=7) == 0
        np.testing.assert_array_equal(got.numpy(), rank_values(0))
        dist.send(torch.from_numpy(rank_values(RANK)), dst=0, tag=8)
    out, into = torch.from_numpy(rank_values(RANK)), torch.zeros(3, 4)
    works = [dist.isend(out, dst=peer), dist.irecv(into, src=peer)]
    for w in works:
        w.wait()
    np.testing.assert_array_equal(into.numpy(), rank_values(peer))
    # a receive nobody has sent yet: wait(timeout) gives up instead of hanging
    late = torch.zeros(2)
    if RANK == 0:
        work = dist.irecv(late, src=1, tag=99)
        try:
            work.wait(timeout=0.2)
        except RuntimeError as e:
            assert "did not finish within 0.2 s" in str(e)
        else:
            raise AssertionError("wait(timeout) must raise when nothing arrives")
    dist.barrier()
    if RANK == 1:
        dist.send(torch.tensor([5.0, 6.0]), dst=0, tag=99)
    else:
        assert work.wait() and late.tolist() == [5.0, 6.0]
    dist.barrier(async_op=True).wait()
    try:
        dist.send(torch.zeros(2), dst=SIZE)
    except ValueError as e:
        assert f"dst={SIZE}" in str(e) and f"size {SIZE}" in str(e)
    else:
        raise AssertionError("send to a rank outside the world must raise")
    ok("point_to_point")


def check_sampler() -> None:
    n = 11
    for shuffle in (False, True):
        for drop_last in (False, True):
            s = DistributedSampler(range(n), shuffle=shuffle, seed=3, drop_last=drop_last)
            s.set_epoch(2)
            mine = list(s)
            shards = [None] * SIZE
            dist.all_gather_object(shards, mine)
            assert len({len(x) for x in shards}) == 1 and len(mine) == len(s)
            flat = [i for shard in shards for i in shard]
            if drop_last:
                assert len(flat) == n - n % SIZE and len(set(flat)) == len(flat)
            else:
                assert set(flat) == set(range(n)) and len(flat) == -(-n // SIZE) * SIZE
            if shuffle:
                s.set_epoch(3)
                assert list(s) != mine
    ok("sampler")


# ---- DDP -----------------------------------------------------------------------------
def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                         nn.Linear(64, 10))


def batches(steps: int, per_rank: int = 32):
    rng = np.random.default_rng(0)
    for _ in range(steps):
        x = rng.standard_normal((per_rank * SIZE, 64)).astype(np.float32)
        y = rng.integers(0, 10, per_rank * SIZE)
        yield torch.from_numpy(x), torch.from_numpy(y)


def params_of(model) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])


def train(model, opt, steps, shard: bool, loss_fn=None):
    for x, y in batches(steps):
        if shard:
            x, y = x[RANK * 32:(RANK + 1) * 32], y[RANK * 32:(RANK + 1) * 32]
        opt.zero_grad()
        (loss_fn or (lambda a, b: F.cross_entropy(model(a), b)))(x, y).backward()
        opt.step()


def check_ddp_equivalence() -> None:
    for name, make_opt in (("SGD", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9)),
                           ("Adam", lambda ps: torch.optim.Adam(ps, lr=1e-3))):
        torch.manual_seed(RANK + 1)  # different on each rank: DDP must broadcast rank 0's
        inner = make_model()
        before = params_of(inner)
        ddp = DDP(inner, bucket_cap_mb=0.02)  # several buckets
        assert len(ddp.reducer.buckets) >= 3
        everyone = [None] * SIZE
        dist.all_gather_object(everyone, params_of(ddp.module))
        np.testing.assert_array_equal(everyone[0], everyone[1])
        assert np.array_equal(before, everyone[0]) == (RANK == 0)
        ref = make_model()
        ref.load_state_dict(ddp.module.state_dict())
        train(ref, make_opt(ref.parameters()), 50, shard=False)
        ddp.reducer.timeline = []
        train(ddp, make_opt(ddp.parameters()), 50, shard=True)
        a, b = params_of(ddp.module), params_of(ref)
        rel = np.abs(a - b).max() / np.abs(b).max()
        assert rel < 1e-4, (name, rel)
        # overlap: in every step a bucket's all-reduce starts before the last gradient
        events = [e for e, _ in ddp.reducer.timeline]
        steps = " ".join(events).split("done")[:-1]
        assert len(steps) == 50 and all(s.index("start") < s.rindex("grad") for s in steps)
        ok(f"ddp_equivalence_{name}")


def check_ddp_no_sync_and_unused() -> None:
    torch.manual_seed(0)
    ddp = DDP(make_model(), bucket_cap_mb=0.02)
    ref = make_model()
    ref.load_state_dict(ddp.module.state_dict())
    (x, y), = batches(1)
    mine = slice(RANK * 32, (RANK + 1) * 32)
    with ddp.no_sync():  # two micro-batches of 16 accumulate locally, the third syncs
        F.cross_entropy(ddp(x[mine][:16]), y[mine][:16]).backward()
    g_local = ddp.module[0].weight.grad.numpy().copy()
    F.cross_entropy(ddp(x[mine][16:]), y[mine][16:]).backward()
    for h in (slice(0, 16), slice(16, 32)):
        for r in range(SIZE):
            s = slice(r * 32 + h.start, r * 32 + h.stop)
            F.cross_entropy(ref(x[s]), y[s]).backward()
    for p, q in zip(ddp.module.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy() / SIZE, rtol=1e-5, atol=1e-6)
    others = [None] * SIZE
    dist.all_gather_object(others, g_local)
    assert not np.allclose(others[0], others[1]), "no_sync must not average"
    ok("ddp_no_sync")

    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 1), nn.Linear(4, 1)

        def forward(self, x, head):
            return (self.a if head == "a" else self.b)(self.body(x))
    model = DDP(TwoHeads(), find_unused_parameters=True)
    x = torch.ones(2, 4) * (RANK + 1)
    model(x, "a" if RANK == 0 else "b").sum().backward()
    # head a is used on rank 0 only: both ranks get its average (half of rank 0's)
    assert model.module.a.weight.grad is not None and model.module.b.weight.grad is not None
    grads = [None] * SIZE
    dist.all_gather_object(grads, model.module.a.weight.grad.numpy())
    np.testing.assert_array_equal(grads[0], grads[1])
    model(x, "a").sum().backward()  # a second iteration works
    strict = DDP(TwoHeads())
    strict(x, "a").sum().backward()
    try:
        strict(x, "a")
    except RuntimeError as e:
        assert "Expected to have finished reduction" in str(e) and "find_unused_parameters" in str(e)
    else:
        raise AssertionError("an unused parameter without find_unused_parameters must raise")
    ok("ddp_unused")


def check_ddp_grad_layouts() -> None:
    # rank 1 hands DDP Fortran-ordered gradients for every matrix, rank 0 C-ordered ones:
    # the slots' layouts disagree and must still give the plain average.
    torch.manual_seed(0)
    inner = make_model()
    layout = np.asfortranarray if RANK == 1 else np.ascontiguousarray

    def relayout(t):
        t.grad = torch.from_numpy(layout(t.grad.numpy()))
    for p in inner.parameters():
        p.register_post_accumulate_grad_hook(relayout)  # runs before DDP's hook
    ddp = DDP(inner, bucket_cap_mb=0.02)
    (x, y), = batches(1)
    mine = slice(RANK * 32, (RANK + 1) * 32)
    F.cross_entropy(ddp(x[mine]), y[mine]).backward()
    ref = make_model()
    ref.load_state_dict(ddp.module.state_dict())
    F.cross_entropy(ref(x), y).backward()
    for p, q in zip(ddp.module.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-6)
    ok("ddp_grad_layouts")


def check_ddp_mismatch() -> None:
    model = nn.Linear(4, 3 if RANK == 0 else 5)
    try:
        DDP(model)
    except RuntimeError as e:
        msg = str(e)
        assert "rank 0" in msg and "rank 1" in msg and "(3, 4)" in msg and "(5, 4)" in msg, msg
    else:
        raise AssertionError("DDP over different models must raise on every rank")
    ok("ddp_mismatch")


def check_checkpoint_resume(path: str) -> None:
    def fresh():
        torch.manual_seed(0)
        ddp = DDP(make_model(), bucket_cap_mb=0.02)
        return ddp, torch.optim.Adam(ddp.parameters(), lr=1e-3)
    ddp, opt = fresh()
    data = list(batches(10))
    mine = slice(RANK * 32, (RANK + 1) * 32)

    def step(model, optim, x, y):
        optim.zero_grad()
        F.cross_entropy(model(x[mine]), y[mine]).backward()
        optim.step()
    for x, y in data[:5]:
        step(ddp, opt, x, y)
    if RANK == 0:
        torch.save({"model": ddp.module.state_dict(), "opt": opt.state_dict()}, path)
    dist.barrier()
    for x, y in data[5:]:
        step(ddp, opt, x, y)
    resumed, opt2 = fresh()
    ckpt = torch.load(path)
    resumed.module.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["opt"])
    for x, y in data[5:]:
        step(resumed, opt2, x, y)
    np.testing.assert_array_equal(params_of(resumed.module), params_of(ddp.module))
    ok("checkpoint_resume")


def check_compiled_ddp() -> None:
    torch.manual_seed(0)
    eager = DDP(make_model(), bucket_cap_mb=0.02)
    torch.manual_seed(0)
    comp = DDP(make_model(), bucket_cap_mb=0.02)
    loss_c = torch.compile(lambda x, y: F.cross_entropy(comp(x), y))
    train(eager, torch.optim.SGD(eager.parameters(), lr=0.1), 5, shard=True)
    train(comp, torch.optim.SGD(comp.parameters(), lr=0.1), 5, shard=True, loss_fn=loss_c)
    np.testing.assert_allclose(params_of(comp.module), params_of(eager.module), rtol=1e-5,
                               atol=1e-6)
    ok("compiled_ddp")


def check_loader_epoch() -> None:
    ds = TensorDataset(torch.arange(40.0).reshape(20, 2), torch.arange(20))
    sampler = DistributedSampler(ds, shuffle=True, seed=1)
    seen = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        for _, y in DataLoader(ds, batch_size=4, sampler=sampler):
            seen.extend(y.tolist())
    everyone = [None] * SIZE
    dist.all_gather_object(everyone, seen)
    epochs = [sorted(everyone[0][e * 10:(e + 1) * 10] + everyone[1][e * 10:(e + 1) * 10])
              for e in range(2)]
    assert epochs == [list(range(20))] * 2 and everyone[0][:10] != everyone[0][10:]
    ok("loader_epoch")


def main() -> None:
    global RANK, SIZE, OUTDIR
    scenario, OUTDIR = sys.argv[1], sys.argv[2]
    dist.init_process_group(backend="mpi")
    RANK, SIZE = dist.get_rank(), dist.get_world_size()
    if scenario == "all":
        assert SIZE == 2, "the scenario is written for two ranks"
        check_all_reduce()
        check_broadcast_gather_scatter()
        check_point_to_point()
        check_sampler()
        check_loader_epoch()
        check_ddp_mismatch()
        check_ddp_equivalence()
        check_ddp_no_sync_and_unused()
        check_ddp_grad_layouts()
        check_checkpoint_resume(os.path.join(OUTDIR, "ckpt.tg"))
        check_compiled_ddp()
    elif scenario == "fail":
        if RANK == 1:
            raise ValueError("rank 1 fails on purpose")
        dist.all_reduce(torch.ones(4))  # would wait forever for rank 1 without the abort
        print("UNREACHABLE", flush=True)
    elif scenario == "single":
        assert SIZE == 1 and RANK == 0
        t = torch.ones(3)
        dist.all_reduce(t, op=dist.ReduceOp.AVG)
        assert t.tolist() == [1.0, 1.0, 1.0]
        model = DDP(nn.Linear(3, 2))
        model(torch.ones(4, 3)).sum().backward()
        np.testing.assert_allclose(model.module.weight.grad.numpy(), np.full((2, 3), 4.0))
        assert list(model.state_dict()) == ["module.weight", "module.bias"]
        assert list(model.module.state_dict()) == ["weight", "bias"]
        inner = model.module
        del model
        gc.collect()
        assert not inner.weight._post_accumulate_grad_hooks  # dropped with the wrapper
        ok("single")
    dist.destroy_process_group()
    assert not dist.is_initialized()
    ok("done")


if __name__ == "__main__":
    main()
