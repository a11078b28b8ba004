"""docs/pytorch_coverage.md is what docs/coverage.py generates from the code now."""
import importlib.util
import subprocess
import sys
import types
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _coverage_module():
    spec = importlib.util.spec_from_file_location("tracegrad_docs_coverage",
                                                  DOCS / "coverage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_coverage_file_is_up_to_date():
    # a fresh interpreter: other tests add names to tracegrad (a test primitive) in-process
    expected = subprocess.run(
        [sys.executable, "-c", "import runpy, sys; "
         "sys.stdout.write(runpy.run_path('docs/coverage.py')['render']())"],
        cwd=DOCS.parent, capture_output=True, text=True, check=True).stdout
    actual = (DOCS / "pytorch_coverage.md").read_text()
    assert actual == expected, ("docs/pytorch_coverage.md is stale: run "
                                "`python docs/coverage.py` and commit the result")


def test_counts_names_in_the_right_place():
    cov = _coverage_module()
    fake = types.SimpleNamespace(__name__="fake", zeros=1, Tensor=type("T", (), {"add": 1}),
                                 nn=types.SimpleNamespace(Linear=1, functional=None),
                                 linalg=None, optim=types.SimpleNamespace(SGD=1))
    result = cov.coverage(fake)
    assert "zeros" in result["torch"][0] and "ones" in result["torch"][1]
    assert result["tensor"][0] == ["add"]
    assert result["nn"][0] == ["Linear", "functional"] and result["optim"][0] == ["SGD"]
    assert result["nn_functional"][0] == [] and result["linalg"][0] == []
