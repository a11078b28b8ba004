"""Run a ``codegen.schedule.Program`` on the CPU.

``CompiledProgram(program, extern_eval)`` renders every kernel to LLVM IR
(``llvm_source``, one module text per kernel, cached by its own key), JIT-compiles them
(``runtime.llvm_jit.compile_llvm_many``: those no cache holds are optimised together as
one module), allocates the planned temp slots once, and runs the steps in order on each
call: every run of single-threaded kernels and 2-D float matmuls is one call of a
generated driver (``runtime.driver``; matmuls through NumPy's CBLAS gemm,
``runtime.cblas``), a run of one kernel one call of it with no driver (NOTE (lone
calls), ``runtime.lone_call``), and only a kernel or a big gemm split over the Python
thread pool or an extern NumPy evaluates is called from Python. A program that calls
BLAS holds OpenBLAS to one thread while it runs (NOTE (one kind of worker),
``runtime.blas_threads``).
Measured on the seed MLP (64x1000-100-10, 2-core VM under load, min of 15 x 200 calls):
forward 397 -> 279 µs, backward 559 -> 411 µs, results bit-identical.

Kernel names: the Program names its steps (``k3_exp_mul``) for people; the LLVM function
of every kernel is named ``CANONICAL_NAME`` instead. Each kernel's source is its own
module (the JIT links it under a name unique to its cache key), so the name carries
nothing, and kernels that differ only in their step names (an unrolled RNN repeats the
same few kernels at every time step) render to the same text and share one entry of the
module caches. This is the only place a CPU kernel is named.

Float arguments (a Python float passed to a compiled function) reach kernels as 0-d
buffers, not through the ABI's ``double`` scalar slots: the value is loaded once per
kernel call (LLVM hoists the load out of the loops), so a scalar slot would save
nothing measurable, while it would need the lowering to tell scalars from buffers and
both renderers to grow a parameter kind, and a 0-d buffer keeps the argument's dtype
(float32 arithmetic stays float32).

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
import dataclasses
import operator
import sys
import threading
import time
from typing import Any, Callable, Sequence

import numpy as np

from ..codegen.loop_ir import LoopKernel
from ..codegen.render_llvm import render_llvm
from ..codegen.schedule import (BufferRead, Constant, ExternStep, KernelStep,
                                Program, Storage)
from ..codegen.view import gather_numpy
from . import allocator, blas_threads, cpu_threads
from .cblas import SplitGemm, gemm_library, split_gemm
from .driver import (DRIVER_NAME, GemmCall, KernelCall, NativeCall, ParallelCall,
                     compile_drivers, driver_with_table, gemm_for_matmul)
from .native_split import split_gemm_natively, split_kernel
from .copy_table import TableCopy, copy_table
from .llvm_jit import JitModule, compile_llvm, compile_llvm_many
from .driver_call import _DriverCall
from .lone_call import LoneKernel, LoneSplit, lone_call
from .native_index import IndexCall, index_call_for
from .native_pool import native_pool
from .render_key import render_key
from .render_options import render_options
from .view_arrays import ViewMaker, view_array as _view_array, view_maker as _view_maker

_POOL_MIN_BYTES = 1 << 16
_CACHE_INPUT_BYTES = 1 << 20
CANONICAL_NAME = "tg_kernel"
# Runs of kernels and gemms go through one generated driver call (``runtime.driver``);
# False keeps the Python loop over steps (tests compare the two; benchmarks measure both).
USE_DRIVER = True
ExternEval = Callable[[Any, list], np.ndarray]


class ProgramCompileError(RuntimeError):
    """A kernel of the program failed to compile (the frontend falls back to eager)."""


def llvm_source(kernel: LoopKernel) -> str:
    """LLVM IR of ``kernel``, its function named ``CANONICAL_NAME`` (see module doc), in
    the forms the host runs fastest (``render_options``)."""
    return render_llvm(dataclasses.replace(kernel, name=CANONICAL_NAME), **render_options())


def _canonical(step: KernelStep) -> tuple[str, str]:
    """(LLVM source, function name) of a kernel step, as the CPU runtime compiles it."""
    return llvm_source(step.kernel), CANONICAL_NAME


# loop-IR body -> LLVM source, for the process: the programs of one function at other
# shapes (an RNN over another length) repeat most kernels, and rendering them again
# cost as much as lowering them (see the dump's "render" phase). Bounded; cleared whole.
_RENDERED: dict[tuple[str, object], str] = {}   # (loop body, renderer) -> LLVM source
_RENDERED_MAX = 4096
_STOCK_RENDERER = render_llvm   # what the plan cache's sources were made by


def _forget_rendered(source: str) -> None:
    """A rendering that failed to compile is never handed out again (a renderer swapped
    in by a test left its text in the memo, and a later program of the same body got it)."""
    for key in [k for k, text in _RENDERED.items() if text == source]:
        del _RENDERED[key]


def rendered_sources(program: Program) -> list[tuple[str, str]]:
    """(loop body, LLVM source) of each distinct kernel of ``program``, for a disk cache
    of planned programs (``tracegrad.compiler.plan_cache``) to store; none while a
    renderer is swapped in (a test's), whose text must not outlive it."""
    if render_llvm is not _STOCK_RENDERER:
        return []
    sources = llvm_sources(program)
    least = render_options()["stream_min_bytes"]
    return list({render_key(step, least): sources[step.name] for step in program.kernels}.items())


def remember_rendered(rendered: list[tuple[str, str]]) -> None:
    """Seed the render memo with ``rendered_sources`` saved by this same code (the plan
    cache checks that), so a program loaded from disk compiles without rendering."""
    for body, source in rendered:
        if len(_RENDERED) >= _RENDERED_MAX:
            _RENDERED.clear()
        _RENDERED.setdefault((body, _STOCK_RENDERER), source)


def llvm_sources(program: Program) -> dict[str, str]:
    """Step name -> LLVM source of every kernel step, each distinct loop body rendered
    once per process (an unrolled loop repeats its kernels, differing in names only)."""
    out, least = {}, render_options()["stream_min_bytes"]
    for step in program.kernels:
        # the renderer is part of the key: one swapped in (a test's) renders afresh
        key = (render_key(step, least), render_llvm)   # NOTE (render memo keys)
        source = _RENDERED.get(key)
        if source is None:
            if len(_RENDERED) >= _RENDERED_MAX:
                _RENDERED.clear()
            source = _RENDERED[key] = llvm_source(step.kernel)
        out[step.name] = source
    return out


def _contiguous(x: Any, dtype: Any = None) -> np.ndarray:
    # NOTE: np.ascontiguousarray turns a 0-d array into shape (1,); keep 0-d as is
    x = np.asarray(x, dtype=dtype)
    return x if x.flags.c_contiguous else np.ascontiguousarray(x).reshape(x.shape)


_char_over: Callable[[Any], ctypes.c_char] = ctypes.c_char.from_buffer


def _address(x: np.ndarray) -> int:
    """Data address of a C-contiguous array (~0.5 µs; ``x.ctypes.data`` costs ~1.5 µs)."""
    try:
        return ctypes.addressof(_char_over(x))
    except (TypeError, ValueError, BufferError):  # read-only or empty: the slower way
        return int(x.__array_interface__["data"][0])


class _KernelCall:
    """One kernel step, decided at build time: the function, the positions of its
    arguments in the per-call address list and its thread split (None: one thread)."""

    __slots__ = ("cfunc", "outer", "addresses", "chunks")

    def __init__(self, cfunc: Callable[..., None], outer: int, positions: list[int],
                 chunks: cpu_threads.Chunks | None) -> None:
        self.cfunc = cfunc
        self.outer = outer
        # itemgetter returns a tuple of the kernel's addresses (a bare value for one)
        self.addresses: Callable[[list], tuple] = (
            operator.itemgetter(*positions) if len(positions) > 1
            else (lambda i: lambda a: (a[i],))(positions[0]))
        self.chunks = chunks

    def run(self, arrays: list, addrs: list, table: tuple[np.ndarray, int]) -> None:
        if self.chunks is None:
            self.cfunc(0, self.outer, *self.addresses(addrs))
        else:
            cpu_threads.run_chunks(self.cfunc, self.chunks, self.addresses(addrs))


class _ExternCall:
    """One extern step: its operands (constants made once, views made per call) and
    where its result goes."""

    __slots__ = ("step", "operands", "out", "derived", "extern_eval")

    def __init__(self, step: ExternStep, operands: list[tuple[int, np.ndarray | None,
                                                              ViewMaker | None]],
                 out: int, derived: list[tuple[int, int]],
                 extern_eval: ExternEval | None) -> None:
        self.step = step
        self.operands = operands     # (buffer position or -1, constant, view maker)
        self.out = out
        self.derived = derived       # (address slot, byte offset) into the result
        self.extern_eval = extern_eval

    def run(self, arrays: list, addrs: list, table: tuple[np.ndarray, int]) -> None:
        args: list[Any] = [const if k < 0 else arrays[k] if view is None else view(arrays[k])
                for k, const, view in self.operands]
        step = self.step
        if step.fills_output:
            lhs, rhs = args
            np.matmul(lhs, rhs, out=arrays[self.out])
            return
        if self.extern_eval is None:
            raise RuntimeError(f"extern {step.node.op.name} needs extern_eval")
        res = _contiguous(self.extern_eval(step.node, args), step.node.dtype)
        if res.shape != step.node.shape:
            raise ValueError(f"extern {step.node} returned shape {res.shape}")
        arrays[self.out] = res
        addrs[self.out] = _address(res)
        for slot, delta in self.derived:
            addrs[slot] = addrs[self.out] + delta


class CompiledProgram:
    """The executable form of a Program; call it with the input arrays."""

    def __init__(self, program: Program, extern_eval: ExternEval | None,
                 kernels_from: "CompiledProgram | None" = None, size_table: bool = False,
                 link: bool = True):
        # ``kernels_from``: a program whose kernels have the same names and bodies (a
        # symbolic group's, see tracegrad.compiler.symbolic): its compiled kernels are used,
        # and its drivers where their text is the same.  ``size_table``: the drivers read
        # their integers at run time (NOTE (size table)), so the program of a symbolic
        # group at any size has the same driver text as at any other
        self.program = program
        self.size_table = size_table
        # driver source -> compiled module: shared by every program of a symbolic group
        self._driver_modules: dict[str, JitModule] = (
            {} if kernels_from is None else kernels_from._driver_modules)
        self.extern_eval = extern_eval
        self.kernels: dict[str, tuple[JitModule, Any]] = {}
        start = time.perf_counter()
        sources = {} if kernels_from is not None else llvm_sources(program)
        if kernels_from is not None:
            self.kernels = {k.name: kernels_from.kernels[k.name] for k in program.kernels}
        try:   # the kernels no cache holds compile as one LLVM module (llvm_jit's NOTE)
            modules = compile_llvm_many(list(sources.values()), CANONICAL_NAME)
        except Exception:  # noqa: BLE001 - one by one below, to name the kernel that fails
            modules = None
        for k, (name, source) in enumerate(sources.items()):
            try:
                module = modules[k] if modules else compile_llvm(source, [CANONICAL_NAME])
            except Exception as exc:  # noqa: BLE001 - any LLVM failure means "fall back"
                _forget_rendered(source)
                raise ProgramCompileError(f"kernel {name} failed to compile: {exc}") from exc
            self.kernels[name] = (module, module.functions[CANONICAL_NAME])
        self.compile_seconds = time.perf_counter() - start
        buffers = program.buffers
        names = list(buffers)
        self._index = {n: k for k, n in enumerate(names)}
        # NOTE (per-call cost): a call works on two lists indexed like ``program.buffers``,
        # the arrays and their integer data addresses, copied from templates in which the
        # temps (fixed for the program's life) are already filled in.  Kernels get ints:
        # ``arr.ctypes.data`` costs ~1.5 µs per array, more than the kernel call itself.
        # NOTE (hoisted offsets, see codegen.loop_ir): a kernel may take a buffer at an
        # element offset.  Each (buffer, byte offset) pair gets an address slot after the
        # buffers' own: filled in the template for temps, per call (``_derive``) for
        # inputs and outputs, and by an extern call for what an extern returns.
        self._slot_of: dict[tuple[int, int], int] = {}
        for kstep in program.kernels:
            for b, arg in zip(kstep.buffers, kstep.kernel.buffers):
                if arg.offset:
                    key = (self._index[b], arg.offset * arg.dtype.itemsize)
                    if key not in self._slot_of:
                        self._slot_of[key] = len(names) + len(self._slot_of)
        # NOTE (bad indices, runtime.native_index): the drivers' status word, after the
        # address slots; a GATHER / SCATTER_ADD computed in a driver writes a temp of its
        # own (made with the others), never an array returned to the caller
        self._status = len(names) + len(self._slot_of)
        results = {spec.buffer for spec in program.outputs if spec.buffer is not None}
        native_index: dict[int, IndexCall] = {}
        for step in program.steps if USE_DRIVER else ():
            if isinstance(step, ExternStep) and step.output not in results:
                found = index_call_for(step, buffers, self._index.__getitem__, self._status,
                                       len(native_index) + 1)
                if found is not None:
                    native_index[id(step)] = found
        self._native_out = [call.out for call in native_index.values()]
        self._template, self._addr_template = self._temps()
        # NOTE (threads): the temps are one set per program, so two threads calling the
        # same program at once would share them.  The thread that finds the program busy
        # (or a forked child that inherited it mid-call) runs on temps of its own instead.
        self._busy = threading.Lock()
        self._spares: dict[int, list[tuple[np.ndarray, int]]] = {}  # NOTE (recycled results)
        derived_of: dict[int, list[tuple[int, int]]] = {}
        for (k, delta), slot in self._slot_of.items():
            derived_of.setdefault(k, []).append((slot, delta))
        self._inputs = [(self._index[n], buffers[n].shape, buffers[n].dtype, n)
                        for n in program.inputs]
        # the last array seen at each input position and its address: a caller that passes
        # the same arrays again (weights, a reused batch) skips the address lookup.  Holding
        # the array also keeps NumPy from resizing it in place under us.
        self._last_in: list[Any] = [None] * len(self._inputs)
        self._last_addr: list[int] = [0] * len(self._inputs)
        self._fresh = [(self._index[name], info.shape, info.dtype,
                        info.nbytes >= _POOL_MIN_BYTES)
                       for name, info in buffers.items() if info.storage is Storage.FRESH]
        self._derive = [(slot, k, delta) for (k, delta), slot in self._slot_of.items()
                        if buffers[names[k]].storage in (Storage.ARGUMENT, Storage.FRESH,
                                                         Storage.INPLACE)]
        # NOTE (in-place results, codegen.schedule): bound to the argument they overwrite
        self._inplace = [(self._index[name], self._index[info.alias])
                         for name, info in buffers.items()
                         if info.storage is Storage.INPLACE and info.alias is not None]
        # every step as a native call (a single-threaded kernel, a matmul BLAS computes
        # in place) or a Python one (a kernel split over the pool, any other extern)
        plan_calls: list[NativeCall | _KernelCall | _ExternCall | SplitGemm] = []
        checked: dict[int, _ExternCall] = {}   # status code -> NumPy form of an IndexCall
        self._tables: list[np.ndarray] = []    # kept alive: the drivers read them by address
        fns: list[int] = []
        library = gemm_library() if USE_DRIVER else None
        for step in program.steps:
            if isinstance(step, KernelStep):
                if step.outer == 0:
                    continue
                positions = [self._slot_of[(self._index[b], arg.offset * arg.dtype.itemsize)]
                             if arg.offset else self._index[b]
                             for b, arg in zip(step.buffers, step.kernel.buffers)]
                kernel = self.kernels[step.name][1]
                chunks = cpu_threads.chunks(step.outer, step.work)
                def run_kernel(outer: int, src: int, dst: int,
                               f: Callable[..., None] = kernel.cfunc) -> None:
                    f(0, outer, src, dst)
                table = None if not USE_DRIVER or chunks is not None else copy_table(
                    step, run_kernel)
                if table is not None:   # a copy with costly index math: runtime.copy_table
                    self._tables.append(table[0])
                    fns.append(_address(table[0]))
                    plan_calls.append(TableCopy(positions[0], positions[1], len(fns) - 1,
                                                step.kernel.buffers[1].size,
                                                step.kernel.buffers[1].dtype, *table[1:]))
                    continue
                native: NativeCall | None = None   # one thread, or split over the native pool
                if USE_DRIVER:
                    fns.append(kernel.address)
                    native = KernelCall(len(fns) - 1, step.outer, tuple(positions))
                    native = native if chunks is None else split_kernel(native, chunks, fns)
                if native is not None:
                    plan_calls.append(native)
                else:
                    plan_calls.append(_KernelCall(kernel.cfunc, step.outer, positions, chunks))
                continue
            index_call = native_index.get(id(step))
            if index_call is not None:
                checked[index_call.code] = self._extern_call(step, derived_of, extern_eval)
                plan_calls.append(index_call)
                continue
            gemm = gemm_for_matmul(step, buffers, self._index.__getitem__, len(fns), library)
            gemm_address = None if gemm is None or library is None else library.address(gemm.dtype)
            if gemm is not None and gemm_address is not None:
                fns.append(gemm_address)   # a big one splits: natively, else over the pool
                split = split_gemm_natively(gemm, fns, size_table) or split_gemm(gemm, library)
                plan_calls.append(gemm if split is None else split)
                continue
            plan_calls.append(self._extern_call(step, derived_of, extern_eval))
        # a gemm in a driver or a NumPy extern (matmul among them) may call BLAS
        self._calls_blas = any(isinstance(c.call if isinstance(c, ParallelCall) else c,
                                          (GemmCall, SplitGemm, _ExternCall)) for c in plan_calls)
        # the driver's copy of the per-call addresses (NOTE (per-call cost))
        self._addr_table = np.zeros(len(self._addr_template), np.int64)
        self._table = (self._addr_table, _address(self._addr_table))
        self._calls: list[_KernelCall | _ExternCall | _DriverCall | SplitGemm | LoneKernel
                          | LoneSplit] = []
        self.drivers: list[str] = []   # the drivers' LLVM sources, for dumps and tests
        pieces: list = []   # each run of native calls as (run, stale), the other calls
        run: list[NativeCall] = []
        stale = True   # the address table must be refreshed before the next driver call
        for call in [*plan_calls, None]:
            if isinstance(call, (KernelCall, GemmCall, IndexCall, TableCopy, ParallelCall)):
                run.append(call)
                continue
            if run:   # its driver, or none for a lone kernel (NOTE (lone calls))
                lone = lone_call(run, fns, self._table, stale, native_pool)
                pieces.append(lone or (run, stale))
                run, stale = [], stale and lone is not None and not lone.reads_table
            if isinstance(call, _ExternCall) and not call.step.fills_output:
                stale = True   # it returns an array: its address is known only then
            if call is not None:
                pieces.append(call)
        self._all_buffers = all(spec.kind == "buffer" for spec in program.outputs)
        # the buffer each "buffer" or "view" result reads
        self._out_idx = [-1 if spec.buffer is None else self._index[spec.buffer]
                         for spec in program.outputs]
        runs = [p[0] for p in pieces if isinstance(p, tuple)]
        # each driver's (source, table), rendered once for ``driver_sources`` and ``link``
        self._runs = [driver_with_table(calls, fns, size_table) for calls in runs], pieces, checked
        if link:   # else the caller links it (``runtime.driver_call.link_together``)
            self.link()

    def driver_sources(self) -> list[str]:
        """The LLVM source of each driver the program calls (not compiled yet)."""
        return [source for source, _ in self._runs[0]]

    def link(self) -> None:
        """Compile the drivers no cache holds (one O0 module) and order the calls."""
        built, pieces, checked = self._runs
        try:
            drivers = iter(compile_drivers(built, self._driver_modules))
        except Exception as exc:  # noqa: BLE001 - any LLVM failure means "fall back"
            raise ProgramCompileError(f"driver failed to compile: {exc}") from exc
        for piece in pieces:
            if isinstance(piece, tuple):   # a native run: its driver, in order
                (run_calls, refresh), (src, sizes, mod) = piece, next(drivers)
                piece = self._driver(run_calls, refresh, src, sizes, mod, checked)
            self._calls.append(piece)

    def _temps(self) -> tuple[list[np.ndarray | None], list[int]]:
        """Fresh temp buffers: the arrays and addresses a call starts from."""
        buffers = self.program.buffers
        slots = [allocator.empty((n,), np.uint8) for n in self.program.slots]
        template: list[np.ndarray | None] = [None] * len(buffers)
        for name, info in buffers.items():
            if info.storage is Storage.SLOT and info.slot is not None:
                raw = slots[info.slot][:info.nbytes]
                template[self._index[name]] = raw.view(info.dtype).reshape(info.shape)
            elif info.storage is Storage.CONSTANT:
                template[self._index[name]] = info.value
        names = list(buffers)
        for k in self._native_out:   # NOTE (bad indices): a native GATHER's result
            info = buffers[names[k]]
            template[k] = allocator.empty(info.shape, info.dtype)
        addrs = [0 if arr is None else _address(arr) for arr in template]
        addrs.extend([0] * (len(self._slot_of) + 1))   # the offset slots, the status word
        for (k, delta), slot in self._slot_of.items():
            addrs[slot] = addrs[k] + delta if addrs[k] else 0
        return template, addrs

    def _recycled(self, k: int, shape: tuple[int, ...], dtype: np.dtype,
                  big: bool) -> tuple[np.ndarray, int]:
        """NOTE (recycled results): a fresh result (a weight's new ``.grad``, the loss) from
        an earlier call that nothing references any more (the step's ``zero_grad``
        dropped it), with its address, else a new array (pooled when ``big``). Two are
        kept per result: the one the caller holds and the one it let go. Skips the
        allocator's round trip (~10 µs per 400 KB result) and the address lookup
        (~0.5 µs); never hands out an array that anything, a view included, still reads."""
        spares = self._spares.get(k)
        if spares is None:
            spares = self._spares[k] = []
        for arr, addr in spares:
            # references: the list's pair, ``arr``, getrefcount's argument. NumPy points
            # every view at the first array that is no view (the pool's block array, our
            # array's base), so views are counted there: only our array and ``base``
            # may hold it.
            base = arr.base
            if sys.getrefcount(arr) == 3 and (base is None or sys.getrefcount(base) == 3):
                return arr, addr
        # the pool saves page faults on big outputs; small ones are cheaper from NumPy
        arr = allocator.empty(shape, dtype) if big else np.empty(shape, dtype)
        addr = _address(arr)
        if len(spares) < 2:
            spares.append((arr, addr))
        return arr, addr

    def _extern_call(self, step: ExternStep, derived_of: dict[int, list[tuple[int, int]]],
                     extern_eval: ExternEval | None) -> _ExternCall:
        """The Python call of an extern step: constants made once, views made per call."""
        buffers = self.program.buffers
        operands: list[tuple[int, np.ndarray | None, ViewMaker | None]] = []
        for a in step.inputs:
            if isinstance(a, Constant):
                operands.append((-1, a.array(), None))
            else:
                assert isinstance(a, BufferRead)
                operands.append((self._index[a.buffer], None,
                                 _view_maker(a.view, buffers[a.buffer])))
        out = self._index[step.output]
        return _ExternCall(step, operands, out, derived_of.get(out, []), extern_eval)

    def _driver(self, calls: list[NativeCall], refresh: bool, source: str, table: Any,
                module: JitModule, checked: dict[int, _ExternCall]) -> "_DriverCall":
        """One driver call of the run ``calls``, compiled by ``compile_drivers``."""
        k = len(self.drivers)
        self.drivers.append(source)
        self.kernels[f"driver{k}"] = (module, module.functions[DRIVER_NAME])
        codes = {c.code for c in calls if isinstance(c, IndexCall)}
        return _DriverCall(module.functions[DRIVER_NAME], table, refresh, self._status,
                           {code: checked[code] for code in codes})

    def _input_address(self, pos: int, x: Any, cached: bool) -> tuple[np.ndarray, int]:
        _, shape, dtype, name = self._inputs[pos]
        if cached and x is self._last_in[pos] and x.shape == shape and x.dtype == dtype:
            return x, self._last_addr[pos]
        if type(x) is not np.ndarray or not x.flags.c_contiguous:
            x = _contiguous(x)
        if x.shape != shape or x.dtype != dtype:
            raise TypeError(f"input {name}: expected {dtype}{list(shape)}, "
                            f"got {x.dtype}{list(x.shape)}")
        addr = _address(x)
        if cached and x.nbytes <= _CACHE_INPUT_BYTES:
            self._last_in[pos], self._last_addr[pos] = x, addr
        return x, addr

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run the program on ``inputs`` (in graph-input order); returns the outputs."""
        # NOTE (per-call cost): one Python frame from here to _run (this was three)
        if len(inputs) != len(self._inputs):
            raise TypeError(f"program takes {len(self._inputs)} inputs, got {len(inputs)}")
        blas = self._calls_blas
        if blas:
            blas_threads.hold_one_thread()   # NOTE (one kind of worker), runtime.blas_threads
        try:
            if not self._busy.acquire(blocking=False):
                table = np.zeros(len(self._addr_template), np.int64)
                return self._run(inputs, *self._temps(), False, (table, _address(table)))
            try:
                return self._run(inputs, self._template, self._addr_template, True,
                                 self._table)
            finally:
                self._busy.release()
        finally:
            if blas:
                blas_threads.release_one_thread()

    def _run(self, inputs: Sequence[np.ndarray], template: list, addr_template: list[int],
             cache_inputs: bool, table: tuple[np.ndarray, int]) -> list[np.ndarray]:
        arrays: list = template.copy()
        addrs = addr_template.copy()
        if cache_inputs:
            # the common call: the arrays of the last call again (weights, a reused batch),
            # checked here rather than in _input_address (a Python call per input)
            last_addr = self._last_addr
            for pos, (x, last, (k, shape, dtype, _)) in enumerate(
                    zip(inputs, self._last_in, self._inputs)):
                if x is last and x.shape == shape and x.dtype == dtype:
                    arrays[k] = x
                    addrs[k] = last_addr[pos]
                else:
                    arrays[k], addrs[k] = self._input_address(pos, x, True)
            for k, shape, dtype, big in self._fresh:
                arrays[k], addrs[k] = self._recycled(k, shape, dtype, big)
        else:
            for pos, x in enumerate(inputs):
                k = self._inputs[pos][0]
                arrays[k], addrs[k] = self._input_address(pos, x, False)
            for k, shape, dtype, big in self._fresh:
                arr = allocator.empty(shape, dtype) if big else np.empty(shape, dtype)
                arrays[k] = arr
                addrs[k] = _address(arr)
        for k, source in self._inplace:
            arrays[k] = arrays[source]
            addrs[k] = addrs[source]
        for slot, k, delta in self._derive:
            addrs[slot] = addrs[k] + delta
        for call in self._calls:
            call.run(arrays, addrs, table)
        if self._all_buffers:
            return [arrays[k] for k in self._out_idx]
        return self._results(inputs, arrays)

    def _results(self, inputs: Sequence[np.ndarray], arrays: list) -> list[np.ndarray]:
        results = []
        for spec, k in zip(self.program.outputs, self._out_idx):
            if spec.kind == "buffer":
                results.append(arrays[k])
            elif spec.kind == "input":
                assert spec.index is not None
                results.append(inputs[spec.index])
            elif spec.kind == "const":
                base = np.array(spec.value, dtype=spec.dtype)
                val = base if spec.view is None else gather_numpy(spec.view, base)
                results.append(np.array(np.broadcast_to(val, spec.shape)))
            else:
                results.append(np.array(_view_array(arrays[k], spec.view)))
        return results
