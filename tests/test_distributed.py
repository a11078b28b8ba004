"""tracegrad.distributed across processes: each test spawns ``mpiexec -n 2`` on
tests/test_distributed_worker.py with a timeout (a hang fails the test, never blocks it).
One spawn checks many things (collectives against NumPy, the sampler's shards, DDP against
single-process training, no_sync, unused parameters, checkpoints, compile) to keep the
suite fast."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mpi4py")

ROOT = Path(__file__).resolve().parents[1]
WORKER = str(ROOT / "tests" / "test_distributed_worker.py")
# a job that takes longer hangs: only a broken job reaches it, so it can be generous
HANG_SECONDS = 120


def _mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec (pip install 'tracegrad[distributed]')")
    return found


def _run(args: list, tmp_path, timeout: float, ranks: int | None = 2):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1", TRACEGRAD_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, WORKER, *args]
    if ranks is not None:
        cmd = [_mpiexec(), "-n", str(ranks)] + cmd
    # A session of its own, so a timeout kills mpiexec and every rank it started.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(args)} hung for {timeout} s\n{out[-2000:]}\n{err[-3000:]}")
    return proc.returncode, out, err


CHECKS = ["all_reduce", "broadcast_gather_scatter", "point_to_point", "sampler",
          "loader_epoch", "ddp_mismatch", "ddp_equivalence_SGD", "ddp_equivalence_Adam",
          "ddp_no_sync", "ddp_unused", "ddp_grad_layouts", "checkpoint_resume", "compiled_ddp"]


def _passed(tmp_path, rank: int) -> list:
    log = tmp_path / f"rank{rank}.txt"
    return log.read_text().split("\n")[:-1] if log.exists() else []


def test_two_ranks_collectives_sampler_and_ddp(tmp_path):
    rc, out, err = _run(["all", str(tmp_path)], tmp_path, timeout=240)
    assert rc == 0, out[-2000:] + err[-4000:]
    for rank in (0, 1):
        assert _passed(tmp_path, rank) == [f"OK {name}" for name in CHECKS + ["done"]]


def test_exception_on_one_rank_aborts_the_job(tmp_path):
    # NOTE: rank 0 blocks in an all_reduce rank 1 never joins, so a job that ends at all
    # was aborted; a missing abort shows as the hang guard's failure. The seconds it took
    # are not bounded (it asserted < 30 s): two interpreters starting under mpiexec on a
    # loaded 2-core machine take what the scheduler gives them
    rc, out, err = _run(["fail", str(tmp_path)], tmp_path, timeout=HANG_SECONDS)
    assert rc != 0 and "UNREACHABLE" not in out
    assert err.count("ValueError: rank 1 fails on purpose") == 1, err
    assert "unhandled exception on rank 1" in err


def test_world_of_size_one_without_mpiexec(tmp_path):
    rc, out, err = _run(["single", str(tmp_path)], tmp_path, timeout=HANG_SECONDS, ranks=None)
    assert rc == 0, err[-3000:]
    assert _passed(tmp_path, 0) == ["OK single", "OK done"]


def test_benchmark_rows_run_under_mpiexec(tmp_path):
    pytest.importorskip("sklearn")
    out = tmp_path / "rows.json"
    env = dict(os.environ, TG_BENCH_NO_PEERS="1", TRACEGRAD_CACHE_DIR=str(tmp_path / "c"))
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--tiny", "--only",
                           "distributed", "--json", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["name"] for r in rows] == ["digits MLP epoch, DDP, 1 rank",
                                         "digits MLP epoch, DDP, 2 ranks",
                                         "dist.all_reduce, 2 ranks", "DDP backward, 2 ranks"]
    assert all(r["status"] == "ok" and r["times"]["eager"]["median"] > 0 for r in rows), rows
    assert "scaling efficiency" in rows[1]["note"] and "% of raw mpi4py" in rows[2]["note"]
    assert rows[2]["times"]["numpy"]["median"] > 0 and rows[2]["gbps"] > 0
    assert "last gradient to end of backward" in rows[3]["note"]


def test_docstring_examples_run(tmp_path):
    # in a child: the examples start MPI (a world of one), which pytest's process should not
    code = ("import doctest, importlib, sys\n"
            "failed = 0\n"
            "for name in ['tracegrad.distributed', 'tracegrad.distributed.process_group',\n"
            "             'tracegrad.distributed.collectives', 'tracegrad.nn.parallel.distributed',\n"
            "             'tracegrad.utils.data.distributed']:\n"
            "    r = doctest.testmod(importlib.import_module(name))\n"
            "    assert r.attempted > 0, name\n"
            "    failed += r.failed\n"
            "sys.exit(failed)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60,
                          env=dict(os.environ, TRACEGRAD_CACHE_DIR=str(tmp_path)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
