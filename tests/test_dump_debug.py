"""The dump folder, debug logging, and the tracegrad command."""
import logging
import os
import subprocess
import sys

import llvmlite.binding as llvm

import tracegrad as torch

SCRIPT = """
import tracegrad as torch
f = torch.compile(lambda x: (x - x.amax(-1, keepdim=True)).exp().sum(-1))
for n in (4, 4, 8):
    f(torch.randn(n, 16))
"""


def _run(args, tmp_path, env=None):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    full_env = {**os.environ, "TRACEGRAD_CACHE_DIR": str(tmp_path / "cache"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "tracegrad", *args, str(script)],
                          env=full_env, capture_output=True, text=True, timeout=120)


def test_dump_writes_every_stage(tmp_path):
    out = tmp_path / "dump"
    result = _run(["dump", "--out", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == 2  # two signatures
    files = {p.name for p in folders[0].iterdir()}
    assert {"graph.txt", "graph.dot", "groups.txt"} <= files
    kernels = [p for p in folders[0].iterdir() if p.suffix == ".ll" and not p.name.endswith(".opt.ll")]
    assert kernels
    llvm.initialize_native_target()
    for k in kernels:
        llvm.parse_assembly(k.read_text()).verify()
        stem = k.name[:-3]
        assert (folders[0] / f"{stem}.opt.ll").exists()
        assert (folders[0] / f"{stem}.s").read_text().strip()
        assert (folders[0] / f"{stem}.loop.txt").exists()
    index = (out / "index.md").read_text()
    assert "MAX + SUB + EXP + SUM" in index
    assert "| 2 |" in index  # the first signature ran twice
    # re-running overwrites cleanly
    assert _run(["dump", "--out", str(out)], tmp_path).returncode == 0
    assert len([p for p in out.iterdir() if p.is_dir()]) == 2


def test_dump_takes_the_short_out_option(tmp_path):
    out = tmp_path / "short"
    result = _run(["dump", "-o", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "MAX + SUB + EXP + SUM" in (out / "index.md").read_text()


def test_debug_logging_names_the_changed_part_of_a_retrace(caplog, monkeypatch):
    from tracegrad.compiler import debug
    monkeypatch.setenv("TRACEGRAD_DEBUG", "1")
    debug.set_debug_level()
    f = torch.compile(lambda x: x * 2)
    try:
        with caplog.at_level(logging.DEBUG, logger="tracegrad"):
            f(torch.ones(3))
            f(torch.ones(3))
            f(torch.ones(5))
    finally:
        debug.set_debug_level(0)
    text = caplog.text
    assert "cache hit" in text
    assert "argument 0 shape changed ((3,) -> (5,))" in text


def test_warns_once_after_eight_signatures():
    import pytest
    f = torch.compile(lambda x: x + 1, dynamic=False)
    with pytest.warns(RuntimeWarning, match="tensor argument 0's shape keeps changing"):
        for n in range(1, 11):
            f(torch.ones(n))
    g = torch.compile(lambda x: x + 1)  # automatic dynamic (PyTorch's)
    for n in range(1, 11):
        g(torch.ones(n))
    assert g.cache_info().misses == 3  # sizes 1 (specialised) and 2, then s0 from 3 on


def test_info_and_cache_commands(tmp_path):
    env = {**os.environ, "TRACEGRAD_CACHE_DIR": str(tmp_path)}
    info = subprocess.run([sys.executable, "-m", "tracegrad", "info"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert info.returncode == 0 and "LLVM target" in info.stdout and str(tmp_path) in info.stdout
    clear = subprocess.run([sys.executable, "-m", "tracegrad", "cache", "clear"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert clear.returncode == 0 and "cleared" in clear.stdout
