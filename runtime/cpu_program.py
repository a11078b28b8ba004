"""Run a ``codegen.schedule.Program`` on the CPU.

``CompiledProgram(program, extern_eval)`` JIT-compiles every kernel (one LLVM module per
kernel through ``runtime.llvm_jit.compile_llvm``, so each kernel is cached on its own),
allocates the planned temp slots once, and runs the steps in order on each call.

Inputs: any NumPy arrays of the traced shapes and dtypes; a non-contiguous one is copied
to C order first (kernels index contiguous buffers; no strides are passed).
Outputs: fresh arrays on every call (a graph input returned as-is is the same object).
A ``CompiledProgram`` reuses its temp slots across calls: do not call one instance from
two threads at once.

>>> import numpy as np
>>> from tracegrad.codegen.graph import Graph
>>> from tracegrad.codegen.ops import Op
>>> from tracegrad.codegen.schedule import plan
>>> g = Graph(); x = g.add(Op.INPUT, (), (3,), "float32", index=0)
>>> g.outputs = [g.add(Op.NEG, (x.id,), (3,), "float32").id]
>>> CompiledProgram(plan(g), None)([np.arange(3, dtype=np.float32)])[0].tolist()
[-0.0, -1.0, -2.0]
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..codegen.schedule import ExternStep, KernelStep, Program
from ..codegen.view import gather_numpy, strided_numpy

from . import allocator
from .llvm_jit import compile_llvm

_POOL_MIN_BYTES = 1 << 16
ExternEval = Callable[[object, list], np.ndarray]


class ProgramCompileError(RuntimeError):
    """A kernel of the program failed to compile (the frontend falls back to eager)."""


def _contiguous(x, dtype=None) -> np.ndarray:
    # NOTE: np.ascontiguousarray turns a 0-d array into shape (1,); keep 0-d as is
    x = np.asarray(x, dtype=dtype)
    return x if x.flags.c_contiguous else np.ascontiguousarray(x).reshape(x.shape)


def _view_array(base: np.ndarray, view) -> np.ndarray:
    if view is None:
        return base
    out = strided_numpy(view, base)
    return gather_numpy(view, base) if out is None else out


class CompiledProgram:
    """The executable form of a Program; call it with the input arrays."""

    def __init__(self, program: Program, extern_eval: ExternEval | None):
        self.program = program
        self.extern_eval = extern_eval
        self.kernels = {}
        self.compile_seconds = 0.0
        start = time.perf_counter()
        for step in program.kernels:
            try:
                module = compile_llvm(step.source, [step.name])
            except Exception as exc:  # noqa: BLE001 - any LLVM failure means "fall back"
                raise ProgramCompileError(f"kernel {step.name} failed to compile: {exc}") from exc
            self.kernels[step.name] = (module, module.functions[step.name])
        self.compile_seconds = time.perf_counter() - start
        # buffers: index per name; temps live in slots allocated once
        names = list(program.buffers)
        self._index = {n: k for k, n in enumerate(names)}
        self._template: list = [None] * len(names)
        slots = [allocator.empty((n,), np.uint8) for n in program.slots]
        self._slots = slots
        for name, info in program.buffers.items():
            if info.kind == "temp" and info.slot >= 0:
                count = int(np.prod(info.shape, dtype=np.int64))
                arr = slots[info.slot][:count * info.dtype.itemsize].view(info.dtype)
                self._template[self._index[name]] = arr.reshape(info.shape)
        self._inputs = [(self._index[n], program.buffers[n]) for n in program.inputs]
        self._fresh = [(self._index[name], info,
                        int(np.prod(info.shape)) * info.dtype.itemsize >= _POOL_MIN_BYTES)
                       for name, info in program.buffers.items()
                       if info.kind == "output" and self._produced_by_kernel_or_matmul(name)]
        self._plan = []
        for step in program.steps:
            if isinstance(step, KernelStep):
                if step.outer == 0:
                    continue
                fn = self.kernels[step.name][1]
                idx = [self._index[b] for b in step.buffers]
                self._plan.append((0, fn, step.outer, idx, step.work))
            else:
                ins = []
                for b, view in step.inputs:
                    if b.startswith("const:"):
                        _, value, dt = b.split(":", 2)
                        ins.append((-1, np.array(eval(value), dtype=np.dtype(dt)), None))
                    else:
                        ins.append((self._index[b], None, view))
                out_name = step.output or program_buffer_of(program, step.node.id)
                self._plan.append((1, step, ins, self._index[out_name], step.output is not None))

    def _produced_by_kernel_or_matmul(self, name: str) -> bool:
        return self.program.buffers[name].slot != -2

    def __call__(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Run the program on ``inputs`` (in graph-input order); returns the outputs."""
        program = self.program
        if len(inputs) != len(self._inputs):
            raise TypeError(f"program takes {len(self._inputs)} inputs, got {len(inputs)}")
        arrays = list(self._template)
        for (k, info), x in zip(self._inputs, inputs):
            x = _contiguous(x)
            if x.shape != info.shape or x.dtype != info.dtype:
                raise TypeError(f"input {info.name}: expected {info.dtype}{list(info.shape)}, "
                                f"got {x.dtype}{list(x.shape)}")
            arrays[k] = x
        for k, info, big in self._fresh:
            # the pool saves page faults on big outputs; small ones are cheaper from NumPy
            arrays[k] = allocator.empty(info.shape, info.dtype) if big else np.empty(
                info.shape, info.dtype)
        for entry in self._plan:
            if entry[0] == 0:
                _, fn, outer, idx, work = entry
                fn(outer, [arrays[i] for i in idx], (), work=work)
            else:
                _, step, ins, out, planned = entry
                args = [const if k < 0 else _view_array(arrays[k], view)
                        for k, const, view in ins]
                if planned:
                    np.matmul(*args, out=arrays[out])
                else:
                    if self.extern_eval is None:
                        raise RuntimeError(f"extern {step.node.op.name} needs extern_eval")
                    res = _contiguous(self.extern_eval(step.node, args), step.node.dtype)
                    if res.shape != step.node.shape:
                        raise ValueError(f"extern {step.node} returned shape {res.shape}")
                    arrays[out] = res
        results = []
        for spec in program.outputs:
            if spec.kind == "buffer":
                results.append(arrays[self._index[spec.buffer]])
            elif spec.kind == "input":
                results.append(inputs[spec.index])
            elif spec.kind == "const":
                base = np.array(spec.value, dtype=spec.dtype)
                val = base if spec.view is None else gather_numpy(spec.view, base)
                results.append(np.array(np.broadcast_to(val, spec.shape)))
            else:
                results.append(np.array(_view_array(arrays[self._index[spec.buffer]], spec.view)))
        return results


def program_buffer_of(program: Program, node_id: int) -> str:
    for name, info in program.buffers.items():
        if info.node == node_id:
            return name
    raise KeyError(node_id)
