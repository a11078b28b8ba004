"""Checks on the shape of the code itself (STYLE.md): small files."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("tracegrad", "codegen", "runtime", "benchmarks", "tests", "examples")
MAX_LINES = 600  # a file past this holds more than one idea: split it


def _python_files():
    for folder in FOLDERS:
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_no_file_over_the_line_budget():
    long = {str(p.relative_to(ROOT)): n for p in _python_files()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines (split them by idea): {long}"
