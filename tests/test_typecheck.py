"""mypy runs clean on codegen/ and runtime/ with the ``[tool.mypy]`` config in pyproject.toml.

The repository's folders install under one package (``tracegrad.codegen`` is
``codegen/``, ``tracegrad.runtime`` is ``runtime/``), a mapping mypy cannot follow, so
the check runs on a tree of links laid out as the package is installed."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ["tracegrad.codegen", "tracegrad.runtime"]


def installed_layout(dest: Path) -> Path:
    """``dest/tracegrad`` with links to everything in tracegrad/ plus codegen/ and
    runtime/ under their installed names."""
    pkg = dest / "tracegrad"
    shutil.rmtree(pkg, ignore_errors=True)
    pkg.mkdir(parents=True)
    for entry in (ROOT / "tracegrad").iterdir():
        if entry.name != "__pycache__":
            (pkg / entry.name).symlink_to(entry)
    (pkg / "codegen").symlink_to(ROOT / "codegen")
    (pkg / "runtime").symlink_to(ROOT / "runtime")
    return dest


def test_mypy_runs_clean_on_codegen_and_runtime(request, tmp_path):
    pytest.importorskip("mypy")
    # the layout and mypy's cache at stable paths (pytest's cache folder): a rerun then
    # checks only what changed, in about a second instead of ten; without the cache
    # plugin (``-p no:cacheprovider``, as for shuffled runs) a fresh folder, checked whole
    cache = getattr(request.config, "cache", None)
    stable = cache.mkdir("mypy") if cache is not None else tmp_path / "mypy"
    layout = installed_layout(stable / "layout")
    args = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
            "--cache-dir", str(stable / "cache")]
    for package in CHECKED:
        args += ["-p", package]
    env = dict(os.environ, MYPYPATH=str(layout))
    res = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=600)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
