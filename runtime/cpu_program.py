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

import ctypes
import operator
import time
from typing import Callable

import numpy as np

from ..codegen.schedule import KernelStep, Program
from ..codegen.view import gather_numpy, strided_numpy

from . import allocator
from .llvm_jit import PARALLEL_MIN_WORK, compile_llvm, n_threads, thread_pool

_POOL_MIN_BYTES = 1 << 16
_CACHE_INPUT_BYTES = 1 << 20
ExternEval = Callable[[object, list], np.ndarray]


class ProgramCompileError(RuntimeError):
    """A kernel of the program failed to compile (the frontend falls back to eager)."""


def _contiguous(x, dtype=None) -> np.ndarray:
    # NOTE: np.ascontiguousarray turns a 0-d array into shape (1,); keep 0-d as is
    x = np.asarray(x, dtype=dtype)
    return x if x.flags.c_contiguous else np.ascontiguousarray(x).reshape(x.shape)


def _address(x: np.ndarray) -> int:
    """Data address of a C-contiguous array (~0.5 µs; ``x.ctypes.data`` costs ~1.5 µs)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(x))
    except (TypeError, ValueError, BufferError):  # read-only or empty: the slower way
        return x.__array_interface__["data"][0]


def _view_maker(view, info) -> Callable[[np.ndarray], np.ndarray] | None:
    """A fast maker of ``view`` over the (C-contiguous) buffer ``info``, decided once.

    A single unmasked view (a transpose, a slice, a broadcast) becomes an ``ndarray``
    over the same memory with byte strides (~1 µs; ``as_strided`` costs 20-40 µs)."""
    if view is None:
        return None
    v = view.last
    if len(view.views) != 1 or v.mask is not None or not v.shape or 0 in v.shape \
            or 0 in info.shape:
        return lambda base: _view_array(base, view)
    item = info.dtype.itemsize
    shape, strides = tuple(v.shape), tuple(s * item for s in v.strides)
    offset, dtype = v.offset * item, info.dtype

    def make(base: np.ndarray) -> np.ndarray:
        if not base.flags.c_contiguous:
            return _view_array(base, view)
        out = np.ndarray(shape, dtype, buffer=base, offset=offset, strides=strides)
        out.flags.writeable = False
        return out
    return make


def _view_array(base: np.ndarray, view) -> np.ndarray:
    if view is None:
        return base
    out = strided_numpy(view, base)
    return gather_numpy(view, base) if out is None else out


CANONICAL_NAME = "tg_kernel"


def _canonical(step) -> tuple[str, str]:
    """The kernel's source under one fixed function name. Kernels that differ only in
    their names (an unrolled RNN repeats the same few kernels at every time step) then
    share one entry of the module cache instead of each paying for LLVM."""
    quoted = f'@"{step.name}"'
    if step.source.count(quoted) != 1:
        return step.source, step.name
    return step.source.replace(quoted, f'@"{CANONICAL_NAME}"'), CANONICAL_NAME


class CompiledProgram:
    """The executable form of a Program; call it with the input arrays."""

    def __init__(self, program: Program, extern_eval: ExternEval | None):
        self.program = program
        self.extern_eval = extern_eval
        self.kernels = {}
        self.compile_seconds = 0.0
        start = time.perf_counter()
        for step in program.kernels:
            source, name = _canonical(step)
            try:
                module = compile_llvm(source, [name])
            except Exception as exc:  # noqa: BLE001 - any LLVM failure means "fall back"
                raise ProgramCompileError(f"kernel {step.name} failed to compile: {exc}") from exc
            self.kernels[step.name] = (module, module.functions[name])
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
        # NOTE (per-call cost): a call works on two lists indexed like ``program.buffers``,
        # the arrays and their integer data addresses, copied from templates in which the
        # temps (fixed for the program's life) are already filled in.  Kernels get ints:
        # ``arr.ctypes.data`` costs ~1.5 µs per array, more than the kernel call itself.
        self._addr_template: list = [0] * len(names)
        for k, arr in enumerate(self._template):
            if arr is not None:
                self._addr_template[k] = _address(arr)
        # NOTE (hoisted offsets, see codegen.loop_ir): a kernel may take a buffer at an
        # element offset.  Each (buffer, byte offset) pair gets an address slot after the
        # buffers' own: filled in the template for temps, per call (``_derive``) for
        # inputs and outputs, and by ``_extern`` for what an extern returns.
        self._slot_of: dict[tuple[int, int], int] = {}
        for step in program.kernels:
            for b, arg in zip(step.buffers, step.kernel.buffers):
                if arg.offset:
                    key = (self._index[b], arg.offset * arg.dtype.itemsize)
                    if key not in self._slot_of:
                        self._slot_of[key] = len(self._addr_template)
                        base = self._addr_template[key[0]]
                        self._addr_template.append(base + key[1] if base else 0)
        self._derived_of: dict[int, list[tuple[int, int]]] = {}
        for (k, delta), slot in self._slot_of.items():
            self._derived_of.setdefault(k, []).append((slot, delta))
        self._inputs = [(self._index[n], program.buffers[n].shape, program.buffers[n].dtype,
                         program.buffers[n].name) for n in program.inputs]
        # the last array seen at each input position and its address: a caller that passes
        # the same arrays again (weights, a reused batch) skips the address lookup.  Holding
        # the array also keeps NumPy from resizing it in place under us.
        self._last_in: list = [None] * len(self._inputs)
        self._last_addr: list = [0] * len(self._inputs)
        self._fresh = [(self._index[name], info.shape, info.dtype,
                        int(np.prod(info.shape)) * info.dtype.itemsize >= _POOL_MIN_BYTES)
                       for name, info in program.buffers.items()
                       if info.kind == "output" and self._produced_by_kernel_or_matmul(name)]
        self._derive = [(slot, k, delta) for (k, delta), slot in self._slot_of.items()
                        if program.buffers[names[k]].kind == "input"
                        or (program.buffers[names[k]].kind == "output"
                            and self._produced_by_kernel_or_matmul(names[k]))]
        self._plan = []
        for step in program.steps:
            if isinstance(step, KernelStep):
                if step.outer == 0:
                    continue
                kernel = self.kernels[step.name][1]
                idx = [self._slot_of[(self._index[b], arg.offset * arg.dtype.itemsize)]
                       if arg.offset else self._index[b]
                       for b, arg in zip(step.buffers, step.kernel.buffers)]
                # itemgetter returns a tuple of the kernel's addresses (a bare value for one)
                get = (operator.itemgetter(*idx) if len(idx) > 1
                       else (lambda i: lambda a: (a[i],))(idx[0]))
                chunks = None
                if step.outer >= 2 and step.work >= PARALLEL_MIN_WORK and n_threads() >= 2:
                    n = min(n_threads(), step.outer)
                    chunks = [(step.outer * k // n, step.outer * (k + 1) // n) for k in range(n)]
                self._plan.append((0, kernel._cfunc, step.outer, get, tuple(step.scalars),
                                   chunks))
            else:
                ins = []
                for b, view in step.inputs:
                    if b.startswith("const:"):
                        _, value, dt = b.split(":", 2)
                        ins.append((-1, np.array(eval(value), dtype=np.dtype(dt)), None))
                    else:
                        ins.append((self._index[b], None, _view_maker(view, program.buffers[b])))
                out_name = step.output or program_buffer_of(program, step.node.id)
                self._plan.append((1, step, ins, self._index[out_name], step.output is not None,
                                   None))
        self._all_buffers = all(spec.kind == "buffer" for spec in program.outputs)
        self._out_idx = [self._index[spec.buffer] if spec.kind == "buffer" else -1
                         for spec in program.outputs]

    def _produced_by_kernel_or_matmul(self, name: str) -> bool:
        return self.program.buffers[name].slot != -2

    def _input_address(self, pos: int, x) -> tuple[np.ndarray, int]:
        info_k, shape, dtype, name = self._inputs[pos]
        if x is self._last_in[pos] and x.shape == shape and x.dtype == dtype:
            return x, self._last_addr[pos]
        if type(x) is not np.ndarray or not x.flags.c_contiguous:
            x = _contiguous(x)
        if x.shape != shape or x.dtype != dtype:
            raise TypeError(f"input {name}: expected {dtype}{list(shape)}, "
                            f"got {x.dtype}{list(x.shape)}")
        addr = _address(x)
        if x.nbytes <= _CACHE_INPUT_BYTES:
            self._last_in[pos], self._last_addr[pos] = x, addr
        return x, addr

    def __call__(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Run the program on ``inputs`` (in graph-input order); returns the outputs."""
        if len(inputs) != len(self._inputs):
            raise TypeError(f"program takes {len(self._inputs)} inputs, got {len(inputs)}")
        arrays = self._template.copy()
        addrs = self._addr_template.copy()
        for pos, x in enumerate(inputs):
            k = self._inputs[pos][0]
            arrays[k], addrs[k] = self._input_address(pos, x)
        for k, shape, dtype, big in self._fresh:
            # the pool saves page faults on big outputs; small ones are cheaper from NumPy
            arr = allocator.empty(shape, dtype) if big else np.empty(shape, dtype)
            arrays[k] = arr
            addrs[k] = _address(arr)
        for slot, k, delta in self._derive:
            addrs[slot] = addrs[k] + delta
        for kind, a, b, c, d, chunks in self._plan:
            if kind == 0:
                args = c(addrs) + d if d else c(addrs)
                if chunks is None:
                    a(0, b, *args)
                else:
                    _run_parallel(a, chunks, args)
            else:
                self._extern(a, b, c, d, arrays, addrs)
        if self._all_buffers:
            return [arrays[k] for k in self._out_idx]
        return self._results(inputs, arrays)

    def _extern(self, step, ins, out, planned, arrays, addrs) -> None:
        args = [const if k < 0 else arrays[k] if view is None else view(arrays[k])
                for k, const, view in ins]
        if planned:
            np.matmul(*args, out=arrays[out])
            return
        if self.extern_eval is None:
            raise RuntimeError(f"extern {step.node.op.name} needs extern_eval")
        res = _contiguous(self.extern_eval(step.node, args), step.node.dtype)
        if res.shape != step.node.shape:
            raise ValueError(f"extern {step.node} returned shape {res.shape}")
        arrays[out] = res
        addrs[out] = _address(res)
        for slot, delta in self._derived_of.get(out, ()):
            addrs[slot] = addrs[out] + delta

    def _results(self, inputs, arrays) -> list[np.ndarray]:
        results = []
        for spec in self.program.outputs:
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


def _run_parallel(cfunc, chunks, args) -> None:
    pool = thread_pool()
    futures = [pool.submit(cfunc, lo, hi, *args) for lo, hi in chunks[1:]]
    cfunc(chunks[0][0], chunks[0][1], *args)  # the caller does its share too
    for f in futures:
        f.result()


def program_buffer_of(program: Program, node_id: int) -> str:
    for name, info in program.buffers.items():
        if info.node == node_id:
            return name
    raise KeyError(node_id)
