"""Planned programs on disk, so a warm start skips the passes, lowering and rendering.

``plan(graph, inplace)`` (``codegen.schedule.plan``) is a pure function of the traced
graph and the in-place map: the same graph always plans to the same program, whose kernels
render to the same LLVM sources. A second process that traces the same function therefore
loads both from the disk cache (``runtime.disk_cache``, entry kind ``"plan"``): the planned
program, pickled, and each kernel's rendered source, which seeds the runtime's render memo
(``cpu_program.remember_rendered``), so the object code is then found under the same keys
as before without rendering anything. Warm, a compile is trace + hash + load.

The key hashes an exact encoding of the graph (every node's op, inputs, shape, dtype and
attributes: floats by their hex, arrays by their bytes), the in-place map, and the source
of the code that plans and renders (every file of ``codegen/`` and ``cpu_program.py``), so
an edit to a pass or the renderer misses old entries instead of trusting them. A graph
with an attribute the encoding does not know (or a str, possibly a sentinel compared by
identity) is planned afresh and never stored. An entry
that fails to unpickle or holds something else is deleted and planned again, never
trusted (the disk cache's digest already rejects damaged bytes).

>>> from tracegrad.codegen.graph import Graph
>>> from tracegrad.codegen.ops import Op
>>> g = Graph(); x = g.add(Op.INPUT, (), (3,), "float32", index=0)
>>> g.outputs = [g.add(Op.MUL, (x.id, g.add(Op.CONST, (), (), "float32", value=2.0).id),
...                    (3,), "float32").id]
>>> len(graph_key(g, None)), graph_key(g, None) == graph_key(g, {})
(64, True)
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import os
import pickle
import sys
import time
from typing import Any

import numpy as np

from ..codegen import phase_clock, scalar_ops, schedule
from ..codegen.graph import Graph
from ..codegen.horizontal import merge_segments
from ..runtime import cpu_program, cpu_threads, disk_cache
from ..runtime.render_options import render_options

__all__ = ["plan", "save", "graph_key"]

_KIND = "plan"
# what the entry's pickle holds; a change to the layout must miss old entries
_LAYOUT = "program + [(loop body, llvm source)] v1"


class Uncacheable(TypeError):
    """The graph holds a value ``_encode`` cannot write exactly."""


def _code_version() -> str:
    return _code_version_of(_scalar_op_rules())


def _scalar_op_rules() -> tuple:
    """The functions that expand or render the scalar ops defined so far: a primitive's
    record (``tracegrad/_primitives``, or a user's own) hands them to codegen."""
    rules = [rule.expand for rule in scalar_ops.SCALAR_OPS.values() if rule.expand]
    for table in scalar_ops.RENDERINGS.values():
        rules.extend(table.values())
    return tuple(rules)


@functools.lru_cache(maxsize=4)
def _code_version_of(rules: tuple) -> str:
    """Hash of the code whose output an entry holds: codegen's files, the CPU runtime's
    kernel naming and render memo (``cpu_program.py``), and the files of ``rules`` (a
    fixed atan2 expansion in ``_primitives/trig.py`` must not load the kernels of the old
    one). Raises Uncacheable where the source files cannot be read (an install without
    them, a rule typed at the prompt).

    NOTE (code version cost): paid once per process, by its first compile. Through
    pathlib and ``inspect.getsourcefile`` it cost 2.3 ms on the quiet 2-core VM (4.3 ms
    in a benchmark's first workload), of which reading and hashing the ~40 files is
    ~0.5 ms; plain ``os.path`` and a function's ``co_filename`` cost 0.85 ms. Keying it
    by the files' mtimes instead (as .pyc files are) would save the rest, but a rewrite
    of the same size within the clock's tick would then load the old code's kernels."""
    h = hashlib.sha256()
    codegen = os.path.dirname(os.path.realpath(schedule.__file__))
    paths = {os.path.join(codegen, name) for name in os.listdir(codegen)
             if name.endswith(".py")}
    if not paths:
        raise Uncacheable("codegen's source files are not installed")
    paths |= {os.path.realpath(cpu_program.__file__), os.path.realpath(__file__)}
    paths |= {os.path.realpath(source) for source in {_source_file(rule) for rule in rules}}
    for path in sorted(paths):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise Uncacheable(f"cannot read {path}: {e}") from None
        h.update(os.path.basename(path).encode() + b"\0" + data + b"\0")
    # the stored sources are rendered for this host (runtime.render_options)
    for part in (_LAYOUT, np.__version__, sys.version, str(pickle.HIGHEST_PROTOCOL),
                 repr(sorted(render_options().items()))):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def _source_file(rule) -> str:
    """The file that defines ``rule`` (raises Uncacheable)."""
    fn = getattr(rule, "func", rule)   # (a partial)
    code = getattr(fn, "__code__", None)
    source = code.co_filename if code is not None else None
    if source is None or not source.endswith(".py"):
        try:
            source = inspect.getsourcefile(fn)
        except TypeError:
            source = None
    if source is None or not os.path.isfile(source):
        raise Uncacheable(f"the source of {rule!r}, which lowers a scalar op, is unknown")
    return source


def _encode(value: Any, out: list[str]) -> None:
    """Append an exact, type-tagged text of ``value`` (raises Uncacheable)."""
    kind = type(value)
    if kind is str:
        # NOTE: a str attribute may be a sentinel compared by identity (INDEX's "<tensor>"
        # in a spec), which a pickled copy would not be: such graphs are never stored
        raise Uncacheable("a str attribute")
    if value is None or kind in (bool, int):
        out.append(f"{kind.__name__}:{value!r}")
    elif kind is float:
        out.append(f"float:{value.hex()}")
    elif kind in (tuple, list):
        out.append(f"{kind.__name__}({len(value)})")
        for item in value:
            _encode(item, out)
    elif kind is slice:
        out.append("slice")
        for item in (value.start, value.stop, value.step):
            _encode(item, out)
    elif isinstance(value, np.dtype):
        out.append(f"dtype:{value.str}")
    elif kind is np.ndarray or isinstance(value, np.generic):
        arr = np.ascontiguousarray(value)
        if arr.dtype.hasobject:
            raise Uncacheable(f"an object array: {arr.dtype}")
        digest = hashlib.sha256(arr.tobytes()).hexdigest()
        out.append(f"{kind.__name__}:{arr.dtype.str}{list(arr.shape)}:{digest}")
    else:
        raise Uncacheable(f"a {kind.__name__} attribute")


def graph_key(graph: Graph, inplace: dict[int, int] | None) -> str:
    """The disk-cache key of ``plan(graph, inplace)`` (raises Uncacheable)."""
    parts = [_code_version(), f"inputs {graph.inputs}", f"outputs {graph.outputs}",
             f"inplace {sorted((inplace or {}).items())}"]
    for n in graph.nodes:
        if not all(type(d) is int for d in n.shape):
            raise Uncacheable(f"a shape {n.shape}")
        parts.append(f"{n.id} {n.op.name} {n.inputs} {n.shape} {n.dtype.str}")
        for name, value in n.attrs.items():
            parts.append(name)
            _encode(value, parts)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def plan(graph: Graph, inplace: dict[int, int] | None = None,
         segments: dict[int, int] | None = None) -> schedule.Program:
    """``codegen.schedule.plan(graph, inplace)``, from the disk cache when it holds it.
    A program planned afresh is stored by ``save`` once it has compiled. ``segments``
    (graph node -> optimizer group of a training step's update): those kernels merge
    (NOTE (horizontal fusion), codegen.horizontal)."""
    if not disk_cache.enabled() or schedule.CHECK_REUSE:   # tests that check lowering
        return _plan(graph, inplace, segments)
    try:
        key = graph_key(graph, inplace)
    except Uncacheable:
        return _plan(graph, inplace, segments)
    if segments:
        key = hashlib.sha256(f"{key} horizontal {sorted(segments.items())} "
                             f"{cpu_threads.PARALLEL_MIN_WORK}".encode()).hexdigest()
    start = time.perf_counter()
    program = _load(key, graph)
    if program is not None:   # the dump's "load" phase (a miss costs a failed open)
        phase_clock.add("load", time.perf_counter() - start)
    if program is None:
        program = _plan(graph, inplace, segments)
        _unsaved[id(program)] = (key, program)
    return program


def _plan(graph: Graph, inplace, segments) -> schedule.Program:
    program = schedule.plan(graph, inplace)
    if segments:
        # kernels the pool would split stay apart: a merged kernel runs on one thread
        merge_segments(program, segments, inplace, cpu_threads.PARALLEL_MIN_WORK)
    return program


# id(program) -> (key, program): planned here, not yet saved (bounded: a program that
# never compiles is forgotten with the rest when it fills)
_unsaved: dict[int, tuple[str, schedule.Program]] = {}
_UNSAVED_MAX = 64


def save(program: schedule.Program | None, with_sources: bool = True) -> None:
    """Store ``program`` (planned by ``plan``; it compiled) with its kernels' LLVM
    sources (``with_sources``: they are in the render memo after a CPU compile)."""
    if program is None:
        return
    got = _unsaved.pop(id(program), None)
    if len(_unsaved) > _UNSAVED_MAX:
        _unsaved.clear()
    if got is None or got[1] is not program:
        return
    try:
        rendered = cpu_program.rendered_sources(program) if with_sources else []
        # the traced graph is the caller's at load time: not stored (a third of the bytes)
        stored = dataclasses.replace(program, traced=None)
        data = pickle.dumps((stored, rendered), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - a program that cannot be stored is only not cached
        return
    disk_cache.store_blob(got[0], _KIND, data, {})


def _load(key: str, graph: Graph) -> schedule.Program | None:
    got = disk_cache.load_blob(key, _KIND)
    if got is None:
        return None
    try:
        program, rendered = pickle.loads(got[0])
        if not isinstance(program, schedule.Program) or not isinstance(rendered, list) \
                or not all(isinstance(pair, tuple) and len(pair) == 2
                           and all(type(text) is str for text in pair) for pair in rendered):
            raise TypeError("not a planned program")
    except Exception:  # noqa: BLE001 - anything unreadable is a miss, never trusted
        disk_cache.remove(key, _KIND)
        return None
    program.traced = graph   # the caller's graph, as planning would have kept it
    cpu_program.remember_rendered(rendered)
    return program
