"""The dump folder: every stage of every compiled signature, written as files.

Active when ``TRACEGRAD_DUMP=DIR`` is set (``tracegrad dump SCRIPT`` sets it). For each
compiled function and signature, ``DIR/<function>-<n>/`` holds the traced graph (text and
Graphviz ``.dot``, plus ``.svg`` when ``dot`` is installed), the fused groups, and per
kernel its loop IR, LLVM IR before and after optimisation, and assembly (on CUDA: the
CUDA C, its PTX from ``nvcc --ptx`` or why there is none, and the launch geometry). ``DIR/index.md``
lists every kernel with its fused ops, shapes, bytes moved and compile time, where each
signature's compile time went (trace, passes, lower, render, LLVM opt, codegen, load;
``codegen.phase_clock``), and, when the program exits, each signature's calls and total
run time.
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
from pathlib import Path

from ..codegen.phase_clock import FIT_PHASE, PHASES
from ..runtime.cpu_program import llvm_sources
from ..runtime.cuda_ptx import ptx_of
from .debug import describe_key

_records: list = []       # (folder, compiled name, entry) for the index
_cleaned: set = set()


def dump_dir() -> Path | None:
    d = os.environ.get("TRACEGRAD_DUMP")
    return Path(d) if d else None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60] or "fn"


def graph_dot(graph) -> str:
    lines = ["digraph traced {", "  node [shape=box, fontname=monospace];"]
    for n in graph.nodes:
        label = f"%{n.id} {n.op.name}\\n{n.dtype.name}{list(n.shape)}"
        lines.append(f'  n{n.id} [label="{label}"];')
        for i in n.inputs:
            lines.append(f"  n{i} -> n{n.id};")
    lines.append("}")
    return "\n".join(lines)


def _kernel_rows(program, compiled_program, stage):
    rows = []
    for step in program.kernels:
        infos = [program.buffers[b] for b in step.buffers]
        nbytes = sum(int(_numel(i.shape)) * i.dtype.itemsize for i in infos)
        shapes = ", ".join(f"{i.dtype.name}{list(i.shape)}" for i in infos)
        seconds = None
        if step.name in getattr(compiled_program, "kernels", {}):   # CUDA: no LLVM modules
            seconds = compiled_program.kernels[step.name][0].compile_seconds
        rows.append((stage, step, shapes, nbytes, seconds))
    return rows


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def dump_entry(compiled, key, entry) -> None:
    root = dump_dir()
    if root is None or entry.fallback:
        return
    if root not in _cleaned:  # re-running overwrites cleanly
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        _cleaned.add(root)
        atexit.register(write_index, root)
    n = sum(1 for r in _records if r[1] == compiled.__name__)
    folder = root / f"{_safe(compiled.__name__)}-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "graph.txt").write_text(str(entry.traced) + "\n")
    dot = graph_dot(entry.traced)
    (folder / "graph.dot").write_text(dot)
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg", "-o", str(folder / "graph.svg"), str(folder / "graph.dot")],
                       check=False, capture_output=True)
    groups = []
    for stage, program, runner in (("forward", entry.forward_plan, entry.forward),
                                   ("backward", entry.backward_plan, entry.backward)):
        if program is None:
            continue
        groups.append(f"# {stage}")
        groups += [f"kernel {k.name} [{entry.stages.get(k.name, stage)}]: {' + '.join(k.ops)}"
                   for k in program.kernels]
        groups += [f"extern {s.node.op.name}" for s in program.externs]
        (folder / f"{stage}_program.txt").write_text(str(program) + "\n")
        if runner is not None and hasattr(runner, "geometry"):   # a CudaProgram
            _dump_cuda(folder, program, runner)
            continue
        sources = llvm_sources(program)
        for step in program.kernels:
            (folder / f"{step.name}.loop.txt").write_text(step.loop_ir + "\n")
            (folder / f"{step.name}.ll").write_text(sources[step.name])
            if runner is not None and step.name in runner.kernels:
                module = runner.kernels[step.name][0]
                (folder / f"{step.name}.opt.ll").write_text(module.optimized_ir)
                (folder / f"{step.name}.s").write_text(module.assembly)
    (folder / "groups.txt").write_text("\n".join(groups) + "\n")
    entry.dump_stats = [0, 0.0]
    _records.append((folder, compiled.__name__, entry, key))
    write_index(root)


def _dump_cuda(folder: Path, program, runner) -> None:
    """Per kernel of a program run on CUDA: loop IR, CUDA C as launched, its PTX (or why
    there is none) and launch geometry."""
    for step in program.kernels:
        (folder / f"{step.name}.loop.txt").write_text(step.loop_ir + "\n")
        if step.name not in runner.sources:   # an empty kernel is never built
            continue
        source = runner.sources[step.name]
        (folder / f"{step.name}.cu").write_text(source)
        (folder / f"{step.name}.ptx").write_text(ptx_of(source))
        grid, block = runner.geometry[step.name]
        (folder / f"{step.name}.geometry.txt").write_text(f"grid={grid} block={block}\n")


def write_index(root: Path) -> None:
    lines = ["# tracegrad dump", "",
             "| function | signature | calls | total run ms | compile ms | folder |",
             "|---|---|---|---|---|---|"]
    columns = (*PHASES, FIT_PHASE)
    phase_lines = ["", "## where compile time goes (ms)", "",
                   "| folder | " + " | ".join(columns) + " | total |",
                   "|---|" + "---|" * (len(columns) + 1)]
    kernel_lines = ["", "## kernels", "",
                    "| folder | stage | kernel | fused ops | buffers | bytes moved | compile ms |",
                    "|---|---|---|---|---|---|---|"]
    for folder, name, entry, key in _records:
        calls, seconds = entry.dump_stats or (0, 0.0)
        lines.append(f"| {name} | {describe_key(key)} | {calls} | {seconds * 1e3:.3f} | "
                     f"{entry.compile_seconds * 1e3:.1f} | {folder.name} |")
        phases = entry.phase_seconds
        phase_lines.append(f"| {folder.name} | "
                           + " | ".join(f"{phases.get(p, 0.0) * 1e3:.1f}" for p in columns)
                           + f" | {entry.compile_seconds * 1e3:.1f} |")
        for stage, program, runner in (("forward", entry.forward_plan, entry.forward),
                                       ("backward", entry.backward_plan, entry.backward)):
            if program is None:
                continue
            for stage_, step, shapes, nbytes, secs in _kernel_rows(program, runner, stage):
                ms = "" if secs is None else f"{secs * 1e3:.1f}"
                stage_ = entry.stages.get(step.name, stage_)
                kernel_lines.append(f"| {folder.name} | {stage_} | {step.name} | "
                                    f"{' + '.join(step.ops)} | {shapes} | {nbytes} | {ms} |")
    if root.exists():
        (root / "index.md").write_text("\n".join(lines + phase_lines + kernel_lines) + "\n")
