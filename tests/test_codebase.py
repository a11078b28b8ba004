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


def test_public_namespace_has_pytorchs_shape():
    """``tracegrad.*`` holds PyTorch's names, not the implementation's helpers or imports."""
    import types

    import tracegrad
    leaked = {"np", "Op", "apply", "P", "numbers", "promote", "cast", "annotations",
              "is_grad_enabled_"} & set(dir(tracegrad))
    assert not leaked, f"implementation names leak into tracegrad.*: {sorted(leaked)}"
    modules = {n for n in dir(tracegrad) if not n.startswith("_")
               and isinstance(getattr(tracegrad, n), types.ModuleType)}
    # PyTorch's subpackages, plus the compiler's stages that the design exposes.
    assert modules <= {"accelerator", "autograd", "codegen", "compiler", "cuda", "distributed",
                       "legacy", "linalg", "nn",
                       "onnx", "optim", "runtime", "serialization", "utils"}, modules
    for name in ("tensor", "zeros", "matmul", "relu", "sigmoid", "where", "cat", "no_grad",
                 "manual_seed", "float32", "compile", "save", "load", "Tensor", "Size"):
        assert hasattr(tracegrad, name), name


def test_import_tracegrad_leaves_the_compiler_unloaded():
    """Scripts that never compile do not pay for llvmlite, codegen and the LLVM runtime
    (NOTE (lazy compiler) in tracegrad/__init__.py); ``tracegrad.compile`` loads them."""
    import subprocess
    import sys
    code = ("import sys, tracegrad; heavy = [m for m in sys.modules if m.startswith("
            "('llvmlite', 'tracegrad.runtime', 'tracegrad.compiler'))]; print(heavy); "
            "tracegrad.compile; print('llvmlite' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "[]", out[0]
    assert out[1] == "True"
