"""The benchmark suite runs end to end at tiny sizes: a well-formed table and JSON."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAST = "overhead,elementwise,rownorm"


def _run(tmp_path, *args):
    env = dict(os.environ, TG_BENCH_TINY="1", TG_BENCH_NO_PEERS="1",
               TRACEGRAD_CACHE_DIR=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "rows.json"
    proc = _run(tmp, "--quick", "--tiny", "--only", FAST, "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, json.loads(out.read_text())


def test_table_is_well_formed(quick_run):
    stdout, _ = quick_run
    lines = stdout.splitlines()
    assert lines[0].startswith("machine: ") and "GB/s" in lines[0]
    table = [ln for ln in lines if ln.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    for col in ("workload", "size", "eager", "compiled", "speedup", "GB/s", "% BW",
                "compile cold / warm", "numpy"):
        assert col in header
    assert set(table[1]) <= set("|-")
    body = table[2:]
    assert all(ln.count("|") == table[0].count("|") for ln in body)
    names = [c.strip("| ").split("|")[0].strip() for c in body]
    assert {"add, no autograd", "add, autograd", "GELU (tanh)", "SiLU", "softmax",
            "layer_norm"} <= set(names)


def test_json_has_rows_and_machine(quick_run):
    _, doc = quick_run
    assert doc["machine"]["bandwidth"]["gbps"] > 0
    assert doc["machine_line"].startswith("machine: ")
    assert {r["workload"] for r in doc["rows"]} == set(FAST.split(","))
    for r in doc["rows"]:
        assert {"workload", "name", "size", "unit", "status", "times", "speedup", "gbps",
                "pct_bandwidth", "compile_cold_s", "compile_warm_s", "correct"} <= set(r)
        assert r["status"] == "ok", r
        assert r["times"]["eager"]["median"] > 0
        assert r["times"]["numpy"]["q1"] <= r["times"]["numpy"]["q3"]
        if r["workload"] != "overhead":
            assert r["correct"] is True, r
            assert r["times"]["compiled"]["median"] > 0
            assert r["compile_cold_s"] is not None and r["compile_warm_s"] is not None


def test_unknown_workload_and_cuda_are_clear(tmp_path):
    proc = _run(tmp_path, "--only", "nope")
    assert proc.returncode == 2 and "unknown workload" in proc.stderr
    import tracegrad
    if not tracegrad.cuda.is_available():
        proc = _run(tmp_path, "--device", "cuda")
        assert proc.returncode == 2 and "CUDA is not available" in proc.stderr
