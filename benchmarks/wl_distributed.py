"""Data parallelism on MPI (spawns mpiexec): digits MLP epoch on 1 and 2 ranks, all_reduce
bandwidth against raw mpi4py, and how much of DDP's all-reduce hides behind backward.

Rows: the epoch (eager and compiled loss, DDP, global batch 64) on 1 and on 2 ranks, the
2-rank row noting the scaling efficiency t1 / (2 t2); ``dist.all_reduce`` of 25 MiB float32
(eager column) against mpi4py's ``Allreduce`` on the same NumPy buffer (numpy column); and
a 4-layer MLP with several buckets whose note compares the time from the last gradient to
the end of ``backward()`` with the all-reduce of all buckets alone (the overlap target:
the first below the second).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .harness import Config, Row, Timing
from .training import skipped

NAME = "distributed"
ROOT = Path(__file__).resolve().parents[1]


def _mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def _spawn(ranks: int, mode: str, size: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    timeout = {"tiny": 120, "quick": 300, "full": 900}[size]
    proc = subprocess.run([_mpiexec(), "-n", str(ranks), sys.executable, "-m",
                           "benchmarks.dist_ranks", mode, size], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"mpiexec -n {ranks} benchmarks.dist_ranks failed "
                           f"(exit {proc.returncode}): {tail[0][:200]}")
    return json.loads(lines[-1][len("RESULT "):])


def _timing(d: dict) -> Timing:
    return Timing(d["median"], d["q1"], d["q3"], d["samples"], d["min"])


def run(cfg: Config) -> list[Row]:
    size = "tiny" if cfg.tiny else ("quick" if cfg.quick else "full")
    why = None
    if importlib.util.find_spec("mpi4py") is None:
        why = "mpi4py (pip install 'tracegrad[distributed]')"
    elif _mpiexec() is None:
        why = "mpiexec"
    if why:
        return [skipped(NAME, "digits MLP epoch, DDP", "—", why)]
    one = _spawn(1, "epoch", size)
    two = _spawn(2, "all", size)
    rows = []
    for res in (one, two):
        world, epoch = res["world"], res["epoch"]
        row = Row(NAME, f"digits MLP epoch, DDP, {world} rank{'s' if world > 1 else ''}",
                  f"{epoch['samples_per_rank']} samples/rank, global batch 64", "ms")
        row.times = {arm: _timing(epoch[arm]) for arm in ("eager", "compiled")}
        rows.append(row)
    eff = [one["epoch"][arm]["median"] / (2 * two["epoch"][arm]["median"])
           for arm in ("eager", "compiled")]
    rows[1].note = (f"scaling efficiency t1/(2 t2): eager {eff[0] * 100:.0f}%, compiled "
                    f"{eff[1] * 100:.0f}%")

    ar = two["all_reduce"]
    row = Row(NAME, "dist.all_reduce, 2 ranks", f"{ar['bytes'] / 2**20:.0f} MiB float32", "ms")
    row.times = {"eager": _timing(ar["tracegrad"]), "numpy": _timing(ar["mpi4py"])}
    row.bytes_moved = ar["bytes"]  # GB/s column: payload per call (algorithm bandwidth)
    pct = ar["mpi4py"]["median"] / ar["tracegrad"]["median"] * 100
    row.note = f"{pct:.0f}% of raw mpi4py Allreduce on the same buffer (numpy column)"
    rows.append(row)

    ov = two["overlap"]
    row = Row(NAME, "DDP backward, 2 ranks",
              f"MLP 4 layers, {ov['buckets']} buckets, {ov['bytes'] / 2**20:.1f} MiB", "ms")
    row.times = {"eager": Timing(ov["backward"], ov["backward"], ov["backward"], 1)}
    verdict = "overlapped" if ov["tail"] < ov["all_buckets"] else "not hidden"
    row.note = (f"last gradient to end of backward {ov['tail'] * 1e3:.1f} ms vs all buckets' "
                f"all-reduce alone {ov['all_buckets'] * 1e3:.1f} ms ({verdict})")
    rows.append(row)
    return rows
