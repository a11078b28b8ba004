"""The import order of ``tracegrad/`` (DESIGN.md, "Layers"), checked over the AST.

Scope: all of ``tracegrad/``; the libraries (nn, optim, utils.data, distributed, the
autograd utilities over the public functions, serialization), the compile frontend and
the entry points are simply the upper floors of ``ORDER``. Three rules:

1. A module-level import points to a module on the same floor or a lower one. Importing
   ``tracegrad.a.b.c`` first runs the facades ``tracegrad/a/__init__.py`` and
   ``tracegrad/a/b/__init__.py``, so it depends on them too (unless the importer lives
   inside that package); a facade sits on the floor of what it imports.
2. The module-level import graph has no cycle (floors may hold several modules).
3. The core (every floor up to ``_ops.methods``) has no function-level import, except on
   a line whose comment says why (an optional dependency, a documented cycle).

``import tracegrad.codegen``/``tracegrad.runtime`` (the folders codegen/ and runtime/,
below all of tracegrad) and third-party imports are outside this check. ``if
TYPE_CHECKING:`` blocks never run and are skipped. A new module must be placed in
``ORDER`` (the test names it), except new files under ``_ops/`` (placed just below
``methods``) and under ``_primitives/`` (with the records).
"""
from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tracegrad"

# Bottom first. An entry names a module, or (ending in ".*") a package and everything in it.
ORDER: list[tuple[str, list[str]]] = [
    ("plain values, exceptions, per-thread trace state",
     ["_dtype", "_device", "_size", "_errors", "_random", "_repr", "_trace_state", "_untraced",
      "_numpy_aliases"]),
    ("Tensor: storage and view metadata", ["_tensor", "_cuda_tensor"]),
    ("legacy tensor types and devices over Tensor", ["legacy", "cuda"]),
    ("autograd records and grad mode", ["autograd.node", "autograd.grad_mode",
                                        "autograd"]),  # the lazy facade: NOTE (autograd facade)
    ("the registry and the one dispatcher", ["_primitives.registry", "_dispatch"]),
    ("the primitive layer's functions", ["_primitives.functions"]),
    ("primitive records with their derivative rules",
     ["_primitives.elementwise", "_primitives.movement", "_primitives.reduce",
      "_primitives.linalg_index", "_primitives.cat", "_primitives", "_primitives.*"]),
    ("the engine and custom Functions", ["autograd.engine", "autograd.profiler",
                                         "autograd.function"]),
    ("_ops: views", ["_ops", "_ops.views", "_ops.eager_views"]),
    ("_ops: dtype names", ["_ops.dtype_names"]),
    ("_ops: creation", ["_ops.creation"]),
    ("_ops: nonzero", ["_ops.nonzero"]),
    ("_ops: math", ["_ops.math"]),
    ("_ops: division", ["_ops.division", "_ops.division_eager"]),
    ("_ops: strided views", ["_ops.strided"]),
    ("_ops: shape", ["_ops.shape"]),
    ("_ops: in-place writes", ["_ops.writes"]),
    ("_ops: reductions", ["_ops.reduce"]),
    ("_ops: einsum (products and sums over shape ops)", ["_ops.einsum"]),
    ("_ops: linalg", ["_ops.linalg"]),
    ("_ops: indexing", ["_ops.indexing"]),
    ("_ops: in-place ops", ["_ops.inplace"]),
    ("_ops: files not listed above", ["_ops.*"]),
    ("_ops: Tensor methods", ["_ops.methods"]),
    ("libraries over the public functions",
     ["nn.*", "optim.*", "utils.*", "distributed.*", "autograd.gradcheck",
      "autograd.functional", "autograd.variable", "serialization", "_serialization_native",
      "_serialization_torch", "_serialization_safetensors", "onnx", "linalg", "linalg.*",
      "accelerator"]),
    ("the compile frontend", ["compiler.*", "_dynamo"]),
    ("entry points", ["", "__main__"]),  # "" is tracegrad/__init__.py
]
CORE_TOP = "_ops: Tensor methods"  # rule 3 covers this floor and everything below it
OUTSIDE = ("codegen", "runtime")  # tracegrad.codegen / tracegrad.runtime: below tracegrad


def floor_of(module: str) -> int | None:
    """The floor index of a module name relative to tracegrad ("" for the package)."""
    best, best_len = None, -1
    for i, (_, names) in enumerate(ORDER):
        for name in names:
            if name == module:
                return i
            if name.endswith(".*"):
                prefix = name[:-2]
                if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                    best, best_len = i, len(prefix)
    return best


def read_package(root: Path = PACKAGE) -> dict[str, tuple[str, bool]]:
    """{module name relative to tracegrad: (source, is_package)}."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path.read_text(), is_pkg)
    return out


def _targets(module: str, is_pkg: bool, node: ast.AST, known) -> list[str]:
    """The tracegrad modules an import statement loads (names relative to tracegrad)."""
    def rel(absolute: str) -> str | None:
        if absolute == "tracegrad":
            return ""
        if absolute.startswith("tracegrad."):
            return absolute[len("tracegrad."):]
        return None

    if isinstance(node, ast.Import):
        names = [rel(a.name) for a in node.names]
        return [n for n in names if n is not None]
    if node.level:
        base = ["tracegrad"] + (module.split(".") if module else [])
        if not is_pkg:
            base = base[:-1]
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    target = rel(target)
    if target is None:
        return []
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}" if target else alias.name
        out.append(sub if sub in known else target)
    return out


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


@functools.lru_cache(maxsize=None)
def _imports(source: str):
    """(module-level imports, function-level imports) of one file."""
    tree = ast.parse(source)
    module_level, function_level = [], []

    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (function_level if in_function else module_level).append(child)
            walk(child, in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))
    walk(tree, False)
    return module_level, function_level


def _outside(module: str) -> bool:
    return module.split(".")[0] in OUTSIDE


def _facades(importer: str, target: str) -> list[str]:
    """The package __init__ files that importing ``target`` runs first."""
    parts = target.split(".")
    out = []
    for k in range(1, len(parts)):
        pkg = ".".join(parts[:k])
        if not (importer == pkg or importer.startswith(pkg + ".")):
            out.append(pkg)
    return out


def violations(sources: dict[str, tuple[str, bool]]) -> list[str]:
    known = set(sources)
    core_top = next(i for i, (label, _) in enumerate(ORDER) if label == CORE_TOP)
    problems, graph = [], {}
    for module, (source, is_pkg) in sources.items():
        name = module or "tracegrad/__init__"
        floor = floor_of(module)
        if floor is None:
            problems.append(f"{name}: not placed in tests/test_layering.py ORDER")
            continue
        lines = source.splitlines()
        module_level, function_level = _imports(source)
        edges = set()
        for node in module_level:
            for target in _targets(module, is_pkg, node, known):
                if _outside(target) or target == module:
                    continue
                for dep in _facades(module, target) + [target]:
                    if dep == "" or dep == module:
                        continue
                    edges.add(dep)
                    dep_floor = floor_of(dep)
                    if dep_floor is not None and dep_floor > floor:
                        problems.append(
                            f"{name}:{node.lineno}: imports {dep} ({ORDER[dep_floor][0]}) from "
                            f"a lower floor ({ORDER[floor][0]})"
                            + ("" if dep == target else f", a facade that importing {target} runs"))
        graph[module] = edges
        if floor <= core_top:
            for node in function_level:
                if "#" not in lines[node.lineno - 1]:
                    problems.append(f"{name}:{node.lineno}: function-level import in the core "
                                    f"without a comment saying why: {lines[node.lineno - 1].strip()}")
    problems += [f"import cycle: {' -> '.join(c)}" for c in _cycles(graph)]
    return list(dict.fromkeys(problems))  # one line per problem, in order


def _cycles(graph: dict[str, set]) -> list[list[str]]:
    """One cycle per strongly connected group found by a depth-first search."""
    state, stack, found = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


# ---- the tests ---------------------------------------------------------------------------

def test_tracegrad_imports_point_down_the_stated_order():
    problems = violations(read_package())
    assert not problems, "\n".join(problems)


def _with(overrides: dict[str, str]) -> dict[str, tuple[str, bool]]:
    sources = read_package()
    for module, source in overrides.items():
        sources[module] = (source, sources.get(module, ("", False))[1])
    return sources


def test_an_upward_module_level_import_fails():
    tensor_source = read_package()["_tensor"][0]
    found = violations(_with({"_tensor": tensor_source + "\nfrom ._ops.math import add\n"}))
    assert any(p.startswith("_tensor:") and "imports _ops.math" in p for p in found), found


def test_an_import_through_an_upper_facade_fails():
    # _dispatch may import autograd.node, but importing nn.functional from the records runs
    # tracegrad/nn/__init__.py first: both the facade and the module are upward.
    found = violations(_with({"_primitives.cat": "from ..nn import functional\n"}))
    assert any("imports nn (" in p for p in found), found
    assert any("imports nn.functional" in p for p in found), found


def test_a_function_level_import_in_the_core_needs_a_comment():
    bare = "def f():\n    from ._tensor import Tensor\n    return Tensor\n"
    found = violations(_with({"_dispatch": bare}))
    assert any(p.startswith("_dispatch:2: function-level import") for p in found), found
    commented = bare.replace("Tensor\n    return", "Tensor  # why: a documented reason\n    return")
    assert not violations(_with({"_dispatch": commented}))
    # the libraries above the core may import inside functions
    assert not violations(_with({"nn.init": read_package()["nn.init"][0] + "\n" + bare}))


def test_a_cycle_on_one_floor_fails():
    found = violations(_with({"optim.sgd": "from . import adam\n",
                              "optim.adam": "from . import sgd\n"}))
    assert any(p.startswith("import cycle:") and "optim.sgd" in p for p in found), found


def test_type_checking_imports_and_unplaced_modules():
    guarded = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .nn import Module\n"
    assert not violations(_with({"_size": guarded}))
    found = violations(_with({"brand_new": "x = 1\n"}))
    assert found == ["brand_new: not placed in tests/test_layering.py ORDER"]


def test_the_lazy_autograd_facade_binds_functions_over_submodules():
    # NOTE (autograd facade): importing the submodule first must not leave the module
    # where PyTorch has the function.
    code = ("import tracegrad.autograd.gradcheck, tracegrad as t; "
            "assert callable(t.autograd.gradcheck) and callable(t.autograd.gradgradcheck), "
            "t.autograd.gradcheck; assert t.autograd.Function.__name__ == 'Function'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
