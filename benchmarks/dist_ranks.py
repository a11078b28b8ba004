"""The rank side of the distributed workload, run under ``mpiexec -n N python -m
benchmarks.dist_ranks MODE``; rank 0 prints one ``RESULT <json>`` line.

Every rank runs the same fixed number of samples (the harness's calibration would give
ranks different counts, and then different numbers of collectives); a sample's time is the
slowest rank's, taken after a barrier.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import tracegrad  # noqa: E402
import tracegrad.distributed as dist  # noqa: E402
import tracegrad.nn.functional as F  # noqa: E402
from tracegrad import nn  # noqa: E402
from tracegrad.nn.parallel import DistributedDataParallel as DDP  # noqa: E402
from tracegrad.utils.data.distributed import DistributedSampler  # noqa: E402

from .training import digits  # noqa: E402

GLOBAL_BATCH = 64
LR = 0.05


def timed(fn, repeats: int) -> dict:
    """Median and quartiles (seconds) of ``fn``'s time on the slowest rank."""
    comm = dist.process_group.comm_for(None, "benchmark")
    MPI = dist.process_group.mpi()
    fn()  # warm-up (and the compile, for a compiled arm)
    samples = []
    for _ in range(repeats):
        dist.barrier()
        t = time.perf_counter()
        fn()
        samples.append(comm.allreduce(time.perf_counter() - t, op=MPI.MAX))
    q = statistics.quantiles(samples, n=4) if len(samples) > 1 else samples * 3
    return {"median": statistics.median(samples), "q1": q[0], "q3": q[2],
            "min": min(samples), "samples": len(samples)}


def epoch_arms(n: int, repeats: int) -> dict:
    """One epoch of the digits MLP 64-128-10 (SGD, global batch 64) on this rank's shard."""
    world = dist.get_world_size()
    x_np, y_np = digits(n)
    n_use = len(x_np) // GLOBAL_BATCH * GLOBAL_BATCH  # full global batches only
    order = list(DistributedSampler(range(n_use), shuffle=True, seed=0))
    per_rank = GLOBAL_BATCH // world
    batches = [(tracegrad.from_numpy(x_np[order[i:i + per_rank]]),
                tracegrad.from_numpy(y_np[order[i:i + per_rank]]))
               for i in range(0, len(order), per_rank)]
    out = {}
    for arm in ("eager", "compiled"):
        tracegrad.manual_seed(0)
        model = DDP(nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)))
        opt = tracegrad.optim.SGD(model.parameters(), lr=LR)

        def loss_fn(x, y):
            return F.cross_entropy(model(x), y)
        fn = tracegrad.compile(loss_fn) if arm == "compiled" else loss_fn

        def epoch():
            for x, y in batches:
                opt.zero_grad()
                fn(x, y).backward()
                opt.step()
        out[arm] = timed(epoch, repeats)
    out["samples_per_rank"] = len(order)
    return out


def all_reduce_arms(mib: float, repeats: int) -> dict:
    """``dist.all_reduce`` of a float32 tensor against mpi4py's ``Allreduce`` on the same
    NumPy buffer (zeros, so repeated sums stay finite)."""
    MPI = dist.process_group.mpi()
    arr = np.zeros(int(mib * 2**20) // 4, dtype=np.float32)
    t = tracegrad.from_numpy(arr)
    out = {}
    for _ in range(2):  # interleave the arms twice
        for arm, fn in (("tracegrad", lambda: dist.all_reduce(t)),
                        ("mpi4py", lambda: MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, arr))):
            got = timed(fn, repeats)
            if arm not in out or got["median"] < out[arm]["median"]:
                out[arm] = got
    out["bytes"] = arr.nbytes
    return out


def overlap(width: int, layers: int, cap_mb: float, repeats: int) -> dict:
    """An MLP with several buckets: how long backward() runs after the last gradient is
    ready (waiting for all-reduces) against all buckets' all-reduce time alone."""
    tracegrad.manual_seed(0)
    mods = []
    for _ in range(layers):
        mods += [nn.Linear(width, width), nn.Tanh()]
    model = DDP(nn.Sequential(*mods, nn.Linear(width, 10)), bucket_cap_mb=cap_mb)
    x = tracegrad.randn(32, width)
    y = tracegrad.randint(0, 10, (32,))
    reducer = model.reducer
    tails, backwards = [], []
    comm = dist.process_group.comm_for(None, "benchmark")
    MPI = dist.process_group.mpi()
    for i in range(repeats + 1):
        model.zero_grad()
        loss = F.cross_entropy(model(x), y)
        reducer.timeline = []
        dist.barrier()
        t0 = time.perf_counter()
        loss.backward()
        t1 = time.perf_counter()
        last_grad = max(t for e, t in reducer.timeline if e == "grad")
        if i:  # the first is a warm-up
            # NOTE: perf_counter is one clock for all processes on a machine, so this is
            # the time from the last gradient on any rank to the end of the last backward.
            ends = comm.allreduce((t1, last_grad, t0), op=_max_each)
            tails.append(ends[0] - ends[1])
            backwards.append(ends[0] - ends[2])
    reducer.timeline = None
    flats = [b.flat for b in reducer.buckets]

    def all_buckets():
        reqs = [comm.Iallreduce(MPI.IN_PLACE, f, MPI.SUM) for f in flats]
        MPI.Request.Waitall(reqs)
    comm = reducer.comm
    alone = timed(all_buckets, repeats)
    return {"tail": statistics.median(tails), "backward": statistics.median(backwards),
            "all_buckets": alone["median"], "buckets": len(flats),
            "bytes": sum(f.nbytes for f in flats)}


def _max_each(a, b, datatype=None):
    return tuple(max(x, y) for x, y in zip(a, b))


def main() -> None:
    mode, size = sys.argv[1], sys.argv[2]  # size: tiny | quick | full
    pick = {"tiny": 0, "quick": 1, "full": 2}[size]
    dist.init_process_group(backend="mpi")
    repeats = (3, 5, 11)[pick]
    result = {"world": dist.get_world_size()}
    result["epoch"] = epoch_arms((256, 512, None)[pick], repeats)
    if mode == "all":
        result["all_reduce"] = all_reduce_arms((1, 25, 25)[pick], repeats * 2)
        result["overlap"] = overlap((256, 1024, 1024)[pick], 4, (0.25, 4, 4)[pick], repeats)
    if dist.get_rank() == 0:
        print("RESULT " + json.dumps(result), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
