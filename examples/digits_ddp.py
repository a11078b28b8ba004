"""Train the digits MLP data-parallel on several processes with MPI.

    pip install 'tracegrad[examples,distributed]'
    mpiexec -n 2 python examples/digits_ddp.py            # two ranks on this machine
    python examples/digits_ddp.py                          # one rank, the same training
    mpiexec -f hosts -n 4 python examples/digits_ddp.py    # across machines (MPICH hostfile)

Each rank reads its shard of the training set through DistributedSampler, in batches of
global-batch / N; DistributedDataParallel averages the gradients, so N ranks take the same
steps as one process on the global batch (the rank r of N reads every N-th index of the
same permutation) and reach the same accuracy. Rank 0 evaluates, prints, and saves.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one BLAS thread per rank

import numpy as np  # noqa: E402

import tracegrad as torch  # noqa: E402
import tracegrad.distributed as dist  # noqa: E402
import tracegrad.nn as nn  # noqa: E402
import tracegrad.nn.functional as F  # noqa: E402
from tracegrad.nn.parallel import DistributedDataParallel as DDP  # noqa: E402
from tracegrad.utils.data import DataLoader, TensorDataset  # noqa: E402
from tracegrad.utils.data.distributed import DistributedSampler  # noqa: E402


def load_digits_split(seed: int):
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        sys.exit("This example needs scikit-learn: pip install 'tracegrad[examples]'")
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--global-batch", type=int, default=64,
                        help="summed over ranks; each rank reads global-batch / ranks")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default="", help="checkpoint path (written by rank 0)")
    args = parser.parse_args(argv)

    dist.init_process_group(backend="mpi")  # outside mpiexec: a world of size 1
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(args.seed)  # DDP copies rank 0's parameters to every rank anyway
    x_train, x_test, y_train, y_test = load_digits_split(args.seed)
    train_set = TensorDataset(torch.tensor(x_train), torch.tensor(y_train))
    sampler = DistributedSampler(train_set, shuffle=True, seed=args.seed)
    if args.global_batch % world:
        raise ValueError(f"--global-batch {args.global_batch} must be a multiple of the "
                         f"{world} ranks")
    per_rank = args.global_batch // world
    loader = DataLoader(train_set, batch_size=per_rank, sampler=sampler)
    model = DDP(make_model())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    if rank == 0:
        print(f"{world} rank(s), {len(sampler)} training images and {len(loader)} batches "
              f"of {per_rank} per rank")

    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
        total = torch.zeros(2)  # summed loss, batches
        for xb, yb in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            total += torch.tensor([loss.item(), 1.0])
        dist.all_reduce(total)  # the mean loss over every rank's batches
        if rank == 0 and (epoch % 5 == 0 or epoch == args.epochs):
            print(f"epoch {epoch:3d}  loss {float(total[0] / total[1]):.4f}")
    elapsed = time.perf_counter() - start

    if rank == 0:
        model.eval()
        with torch.no_grad():
            pred = model.module(torch.tensor(x_test)).argmax(1)
        acc = float((pred == torch.tensor(y_test)).float().mean())
        print(f"test accuracy {acc * 100:.2f}% after {args.epochs} epochs in {elapsed:.1f} s "
              f"on {world} rank(s)")
        if args.save:
            torch.save(model.module.state_dict(), args.save)  # no "module." prefix
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
