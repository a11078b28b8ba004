"""Run a ``codegen.schedule.Program`` on a CUDA device (beside ``runtime.cpu_program``).

``CudaProgram(program, extern_eval)`` renders every kernel step to CUDA C
(``codegen.render_cuda``, the function named ``CANONICAL_NAME`` so that kernels which
differ only in their step names share one binary), builds it through the device's module
cache (memory, then disk keyed by source, arch and versions, then the compiler), takes
the launch geometry from ``launch_config`` for the device's block limit, and allocates
the planned temp slots once from the caching allocator.

A call takes ``DeviceArray`` inputs (NumPy arrays are copied to the device first) and
returns ``DeviceArray`` outputs allocated from the caching allocator. Launches are
queued on the device's stream; ``DeviceArray.get()`` waits for them.

Extern steps: a float32/float64 MATMUL whose operands are whole buffers (2-D, or batched
with the result's batch shape or none) or transposed matrices runs the tiled kernel of
``codegen.render_cuda_matmul``, one launch per batch entry. Every other extern step (a
matmul through a transposed view, gathers, random numbers, float16) takes a host round
trip: its operands are copied to the host, ``extern_eval`` computes it with NumPy, the
result is copied back (NOTE (host externs): correct, but slow on a real GPU;
``CudaProgram.host_externs`` names the steps that take it).

>>> CANONICAL_NAME
'tg_kernel'
"""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, Callable, Sequence

import numpy as np

from ..codegen.loop_ir import LoopKernel
from ..codegen.render_cuda import launch_config, render_cuda
from ..codegen.render_cuda_matmul import matmul_launch_config, render_cuda_matmul
from ..codegen.schedule import (BufferRead, Constant, ExternStep, KernelStep, Program, Storage,
                               without_lengths)
from ..codegen.view import ShapeTracker, gather_numpy, strided_numpy
from . import cuda_device
from .cuda_device import CudaDevice, DeviceArray

CANONICAL_NAME = "tg_kernel"
MATMUL_NAME = "tg_matmul"
ExternEval = Callable[[Any, list], np.ndarray]
Geometry = tuple[tuple[int, int, int], tuple[int, int, int]]


def cuda_source(kernel: LoopKernel) -> str:
    """CUDA C of ``kernel`` with its function named ``CANONICAL_NAME``."""
    return render_cuda(dataclasses.replace(kernel, name=CANONICAL_NAME))


def _host_view(base: np.ndarray, view: ShapeTracker | None) -> np.ndarray:
    if view is None:
        return base
    out = strided_numpy(view, base)
    return gather_numpy(view, base) if out is None else out


class _Launch:
    """One kernel launch: the function, its geometry and where its pointers come from
    (buffer name, byte offset)."""

    __slots__ = ("name", "function", "grid", "block", "operands")

    def __init__(self, name: str, function: Any, geometry: Geometry,
                 operands: list[tuple[str, int]]):
        self.name, self.function = name, function
        self.grid, self.block = geometry
        self.operands = operands

    def run(self, device: CudaDevice, arrays: dict[str, DeviceArray]) -> None:
        ptrs = [arrays[b].ptr + delta for b, delta in self.operands]
        device.launch(self.name, self.function, self.grid, self.block, ptrs)


def _stored_transposed(read: BufferRead, base_shape: tuple[int, ...]) -> bool | None:
    """How a matmul operand is stored: False as read, True as the transpose of a stored
    matrix (``w.T``, what a matmul's backward reads), None for any other view."""
    if read.view is None:
        return False
    views = read.view.views
    v = views[-1]
    if len(views) != 1 or v.mask is not None or v.offset or len(v.shape) != 2 \
            or len(base_shape) != 2:
        return None
    rows, cols = v.shape
    if tuple(base_shape) == (rows, cols) and v.is_contiguous:
        return False
    # size-1 dims may carry any stride (views canonicalise them)
    if tuple(base_shape) == (cols, rows) and all(
            n == 1 or s == want for n, s, want in zip(v.shape, v.strides, (1, rows))):
        return True
    return None


class _DeviceMatmul:
    """A float MATMUL on whole buffers or transposed matrices: the tiled kernel, once
    per batch entry."""

    def __init__(self, device: CudaDevice, step: ExternStep, program: Program):
        node = step.node
        reads = [a for a in step.inputs if isinstance(a, BufferRead)]
        bases = [program.buffers[a.buffer].shape for a in reads]
        a_shape, b_shape = (a.view.shape if a.view is not None else base
                            for a, base in zip(reads, bases))
        trans_a, trans_b = (bool(_stored_transposed(a, base)) for a, base in zip(reads, bases))
        m, k, n = a_shape[-2], a_shape[-1], b_shape[-1]
        self.name = f"matmul_{m}x{k}x{n}_%{node.id}"
        self.function = device.modules.function(
            render_cuda_matmul(MATMUL_NAME, m, n, k, node.dtype, trans_a, trans_b), MATMUL_NAME)
        self.geometry = matmul_launch_config(m, n)
        item = np.dtype(node.dtype).itemsize
        # operands without batch dims are shared by every batch entry
        self.strides = [(m * k * item if len(a_shape) > 2 else 0),
                        (k * n * item if len(b_shape) > 2 else 0), m * n * item]
        self.batch = int(np.prod(node.shape[:-2], dtype=np.int64))
        # k == 0 needs no care: the kernel stores its zero accumulators
        self.buffers = [reads[0].buffer, reads[1].buffer, step.output]

    @staticmethod
    def fits(step: ExternStep, program: Program) -> bool:
        node = step.node
        if not step.fills_output or node.dtype not in (np.float32, np.float64):
            return False
        for a in step.inputs:
            if not isinstance(a, BufferRead):
                return False
            shape = program.buffers[a.buffer].shape
            if _stored_transposed(a, shape) is None:
                return False
            if a.view is None and len(shape) > 2 and shape[:-2] != node.shape[:-2]:
                return False   # a broadcast batch: the host path
        return True

    def run(self, device: CudaDevice, arrays: dict[str, DeviceArray]) -> None:
        a, b, c = (arrays[name] for name in self.buffers)
        (sa, sb, sc), (grid, block) = self.strides, self.geometry
        for i in range(self.batch):
            device.launch(self.name, self.function, grid, block,
                          [a.ptr + i * sa, b.ptr + i * sb, c.ptr + i * sc])


class _HostExtern:
    """NOTE (host externs): an extern step computed by NumPy on copies of its operands."""

    def __init__(self, step: ExternStep, extern_eval: ExternEval | None):
        self.step, self.extern_eval = step, extern_eval
        self.constants = [a.array() if isinstance(a, Constant) else None for a in step.inputs]

    def run(self, device: CudaDevice, arrays: dict[str, DeviceArray]) -> None:
        step = self.step
        args: list[Any] = []
        for a, const in zip(step.inputs, self.constants):
            if const is not None:
                args.append(const)
            else:
                assert isinstance(a, BufferRead)
                args.append(_host_view(arrays[a.buffer].get(), a.view))
        if step.fills_output:
            res = np.matmul(*args)
        elif self.extern_eval is None:
            raise RuntimeError(f"extern {step.node.op.name} needs extern_eval")
        else:
            res = self.extern_eval(step.node, args)
        res = np.ascontiguousarray(res, dtype=step.node.dtype).reshape(step.node.shape)
        if step.fills_output:
            if res.nbytes:
                device.driver.copy_htod(arrays[step.output].ptr, res)
        else:
            arrays[step.output] = device.to_device(res)


class CudaProgram:
    """The executable form of a Program on a CUDA device; call it with the inputs."""

    def __init__(self, program: Program, extern_eval: ExternEval | None,
                 device: CudaDevice | None = None):
        self.program = program
        self.device = device = device or cuda_device.current()
        self._lock = threading.Lock()
        self.sources: dict[str, str] = {}        # step name -> CUDA C
        self.geometry: dict[str, Geometry] = {}  # step name -> (grid, block)
        start = time.perf_counter()
        buffers = program.buffers
        self._slots = [device.empty((max(n, 1),), np.uint8) for n in program.slots]
        self._temps = {name: (info.slot, info.shape, info.dtype) for name, info in buffers.items()
                       if info.storage is Storage.SLOT and info.slot is not None}
        self._fresh = [(name, info.shape, info.dtype) for name, info in buffers.items()
                       if info.storage is Storage.FRESH]
        self._inputs = [(name, buffers[name].shape, buffers[name].dtype)
                        for name in program.inputs]
        self._calls: list[_Launch | _DeviceMatmul | _HostExtern] = []
        self.host_externs: list[str] = []
        for step in program.steps:
            if isinstance(step, KernelStep):
                self._add_kernel(step)
            elif _DeviceMatmul.fits(step, program):
                self._calls.append(_DeviceMatmul(device, step, program))
            else:
                self.host_externs.append(step.node.op.name)
                self._calls.append(_HostExtern(step, extern_eval))
        self.compile_seconds = time.perf_counter() - start

    def _add_kernel(self, step: KernelStep) -> None:
        step = without_lengths(step, self.program.buffers)   # NOTE (length parameters)
        source = self.sources[step.name] = cuda_source(step.kernel)
        geometry = self.geometry[step.name] = launch_config(
            step.kernel, max_threads=self.device.max_threads)
        if step.outer == 0:
            return
        function = self.device.modules.function(source, CANONICAL_NAME)
        operands = [(b, arg.offset * arg.dtype.itemsize)
                    for b, arg in zip(step.buffers, step.kernel.buffers)]
        self._calls.append(_Launch(step.name, function, geometry, operands))

    def _input(self, pos: int, x: Any) -> DeviceArray:
        name, shape, dtype = self._inputs[pos]
        if not isinstance(x, DeviceArray):
            x = self.device.to_device(x)
        if x.shape != shape or x.dtype != dtype:
            raise TypeError(f"input {name}: expected {dtype}{list(shape)}, "
                            f"got {x.dtype}{list(x.shape)}")
        if x.device is not self.device:
            raise RuntimeError(f"input {name} lives on another device (a stale one after a "
                               f"driver reset)")
        return x

    def __call__(self, inputs: Sequence[Any]) -> list[DeviceArray]:
        """Queue the program on ``inputs`` (graph-input order); returns the outputs."""
        if len(inputs) != len(self._inputs):
            raise TypeError(f"program takes {len(self._inputs)} inputs, got {len(inputs)}")
        # NOTE: the temps are shared by every call; the device runs one stream in order, so
        # calls are safe as long as their launch sequences do not interleave: one thread
        # queues a whole call at a time
        with self._lock:
            return self._queue(inputs)

    def _queue(self, inputs: Sequence[Any]) -> list[DeviceArray]:
        device = self.device
        arrays: dict[str, DeviceArray] = {}
        ins = [self._input(pos, x) for pos, x in enumerate(inputs)]
        for (name, _, _), x in zip(self._inputs, ins):
            arrays[name] = x
        for name, (slot, shape, dtype) in self._temps.items():
            arrays[name] = DeviceArray(shape, dtype, self._slots[slot].block, 0, device)
        for name, shape, dtype in self._fresh:
            arrays[name] = device.empty(shape, dtype)
        for call in self._calls:
            call.run(device, arrays)
        results = []
        for spec in self.program.outputs:
            if spec.kind == "buffer":
                results.append(arrays[spec.buffer])  # type: ignore[index]
            elif spec.kind == "input":
                results.append(ins[spec.index])      # type: ignore[index]
            elif spec.kind == "const":
                base = np.array(spec.value, dtype=spec.dtype)
                val = base if spec.view is None else gather_numpy(spec.view, base)
                results.append(device.to_device(np.broadcast_to(val, spec.shape)))
            else:  # a view of a computed buffer, copied (NOTE (host externs))
                host = arrays[spec.buffer].get()     # type: ignore[index]
                results.append(device.to_device(_host_view(host, spec.view)))
        return results
