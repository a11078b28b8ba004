"""One compiled signature: trace the function, split forward from backward, plan and
compile both programs, and run them on each call."""
from __future__ import annotations

import contextlib
import gc
import inspect
import tempfile
import time
from pathlib import Path

import numpy as np

from .._primitives import PRIMITIVES
from .._tensor import Tensor, _wrap, replay_view_ops
from ..autograd.engine import run_backward
from ..autograd.grad_mode import state as grad_state
from ..codegen import horizontal, phase_clock
from ..runtime.cpu_program import (CANONICAL_NAME, CompiledProgram, ProgramCompileError,
                                   llvm_sources)
from ..runtime import disk_cache
from ..runtime.cuda_program import CudaProgram
from ..runtime.driver_call import link_together
from ..runtime.llvm_jit import compile_llvm_many
from ..runtime.warm_pages import fresh_bytes, warm
from . import plan_cache, pytree
from .access_paths import covered_reads, path_guards, recording
from .autograd_bridge import attach
from .debug import debug_level, logger
from .errors import TraceError
from .float_args import FloatArguments, FloatWrittenToState
from .held_output import stdout_held_until_success
from .int_args import CallValue
from .layouts import argument_layout
from .partition import split
from .python_guards import python_value_guards, requires_grad_guards
from .state_writes import given_objects
from .trace_reads import reads_for_backward, returned_argument, returned_views, saved_reads
from .tracer import Tracer, TraceValue, tracing
from .update_segments import update_segments


def extern_eval(node, arrays):
    """Run a primitive the generated code calls out to, with its NumPy implementation
    (RAND/RANDN draw from the process-wide generator, as eager mode does)."""
    return PRIMITIVES[node.op].eager(*arrays, **node.attrs)


class CapturedChanged(Exception):
    """A tensor the program reads outside its arguments changed shape or dtype: the call
    must retrace (compiler/function.py)."""


class Entry:
    """A compiled signature. ``fallback`` entries run the original function eagerly."""

    def __init__(self) -> None:
        self.fallback = False
        self.forward = None            # runtime CompiledProgram (None when not compiled)
        self.backward = None
        self.forward_plan = None       # codegen Program
        self.backward_plan = None
        self.input_sources = []        # per forward input: ("arg", leaf index) | ("captured", t)
        #                                | ("leaf_grad", leaf): its current .grad | ("scalar", ..)
        self.n_outputs = 0
        self.out_treedef = None
        self.out_static = []           # per output leaf: None (tensor) or a constant
        self.written_args = ()         # leaf indices of the arguments written in place
        self.diff_outputs = frozenset()   # results that require grad
        self.writes = []               # per in-place write: (("arg", leaf index) |
        #                                ("captured", t), number of writes), see Entry.run
        self.diff_inputs = []          # per gradient: ("arg", leaf index) | ("captured", t)
        self.grad_present = []         # which backward outputs exist (others are zeros)
        self.saved_reads = ()          # forward inputs (results k: -1 - k) the backward
        #                                reads, version-checked
        self.out_aliases = ()          # (result k, "arg" | "captured" | "grad", leaf index
        #                                | tensor | leaf, view chain or None): NOTE
        #                                (returned arguments)
        self.saved_copies = ()         # saved inputs copied at the call (negative positions
        #                                in the forward's results), see NOTE (inputs read by
        #                                backward) in partition.py
        self.traced = None             # the joint graph, for reports
        self.compile_seconds = 0.0
        self.phase_seconds: dict[str, float] = {}  # codegen.phase_clock.PHASES -> seconds
        self.dump_stats = None         # [calls, seconds] while a dump folder is active
        self.grad_writes = []          # per .grad written in the step: (leaf, or the int
        #     position of an argument, has a value, accumulates into the old tensor)
        self.guards = []               # callables, all True while this entry is valid
        self.captured_meta = []        # (captured tensor, traced shape, dtype)
        self.made_inputs = []          # positions in input_sources of tensors the trace
        #                                made (Tracer.made_here_ids)
        self.stages = {}               # forward kernel name -> "forward", "backward",
        #                                "update" or a mix ("backward+update") in a step

    @classmethod
    def eager_fallback(cls) -> "Entry":
        e = cls()
        e.fallback = True
        return e

    def summary(self) -> str:
        if self.fallback:
            return "eager fallback"
        kernels = len(self.forward_plan.kernels)
        bwd = len(self.backward_plan.kernels) if self.backward_plan is not None else 0
        return (f"compiled {kernels} forward kernel(s)"
                + (f" and {bwd} backward kernel(s)" if self.backward_plan is not None else ""))

    def record_call(self, seconds: float, name: str) -> None:
        if self.dump_stats is not None:
            self.dump_stats[0] += 1
            self.dump_stats[1] += seconds
        if debug_level() > 1:
            logger.debug("%s: ran in %.3f ms", name, seconds * 1e3)

    # ---- calling ---------------------------------------------------------------------
    def _input_arrays(self, leaves) -> list:
        arrays = []
        for kind, ref in self.input_sources:
            if kind == "arg":
                leaf = leaves[ref]
                arrays.append(leaf._data if isinstance(leaf, Tensor) else np.array(leaf))
            elif kind == "captured":
                arrays.append(ref._data)
            elif kind == "leaf_grad":   # NOTE (gradient reads) in tracer.py
                arrays.append(ref._grad._data)
            else:  # a runtime scalar (NOTE (training step capture) in tracer.py)
                read, holder = ref
                # NOTE: one 0-d array per scalar, refilled: the program then finds the same
                # array as last call and skips its address lookup (~3 µs per input); one
                # per thread where the value is the call's own (NOTE (int arguments))
                if type(read) is CallValue:
                    holder = read.holder(holder.dtype)
                holder[()] = read()
                arrays.append(holder)
        return arrays

    def run(self, leaves):
        try:
            results = self.forward(self._input_arrays(leaves))
        except TypeError:
            changed = self.captured_changed()
            if changed is not None:
                raise CapturedChanged(changed) from None
            raise
        for k in self.saved_copies:   # before any write-back changes them
            results[k] = _copy_array(results[k])
        outs = [_wrap(a) for a in results[:self.n_outputs]]
        n_saved = self.n_outputs
        if self.writes:  # in-place writes to inputs and captured tensors, as eager does
            for ((kind, ref), count), value in zip(self.writes, results[n_saved:]):
                t = ref if kind == "captured" else _source_tensor(leaves, kind, ref)
                if value is not t._data:   # else the program wrote it in place
                    np.copyto(t._data, value, casting="unsafe")
                t._version[0] += count
            n_saved += len(self.writes)
        if self.grad_writes:
            n_saved = self._write_grads(leaves, results, n_saved)
        returned, views = outs, ()
        if self.out_aliases:   # NOTE (returned arguments)
            returned = list(outs)
            views = [(k, ref, chain) for k, kind, ref, chain in self.out_aliases
                     if kind == "out"]
            for k, kind, ref, chain in self.out_aliases:
                if kind == "out":
                    continue   # a view of another result: made below, once that has history
                base = leaves[ref] if kind == "arg" else ref.grad if kind == "grad" else ref
                returned[k] = base if chain is None else replay_view_ops(chain, base)
        if self.backward is not None:   # (the grad mode is part of the signature)
            saved = results[n_saved:]
            diff = [leaves[ref] if kind == "arg" else ref for kind, ref in self.diff_inputs]
            read = [self._input_tensor(leaves, k) if k >= 0 else returned[-1 - k]
                    for k in self.saved_reads]
            # an aliased result has eager history already (its gradient flows there)
            made = {k for k, _, _ in views}
            attach([o if o is r and k in self.diff_outputs and k not in made else None
                    for k, (o, r) in enumerate(zip(outs, returned))], diff,
                   self._backward_fn(saved, outs), "CompiledFunction", read)
        for k, j, chain in views:   # views of other results (trace_reads.returned_views)
            returned[k] = replay_view_ops(chain, returned[j])
        return pytree.unflatten_results(self.out_treedef, self.out_static, returned)

    def _input_tensor(self, leaves, k: int):
        """The tensor (or Python scalar) forward input ``k`` was read from this call."""
        return _source_tensor(leaves, *self.input_sources[k])

    def captured_changed(self) -> str | None:
        """A captured tensor whose shape or dtype changed since the trace (``p.data =
        torch.randn(4, 3)``, ``model.double()``), named; None when none did."""
        for t, shape, dtype in self.captured_meta:
            data = t._data
            if isinstance(data, np.ndarray) and (data.shape != tuple(shape)
                                                 or data.dtype != dtype):
                return (f"a captured tensor changed from {dtype}{list(shape)} to "
                        f"{data.dtype}{list(data.shape)}")
        return None

    def broken_guard(self) -> str:
        """What the first guard that does not hold checks, for TRACEGRAD_DEBUG."""
        for guard in self.guards:
            if not guard():
                what = getattr(guard, "what", None)
                return (what() if callable(what) else what) or "an unnamed guard"
        return "no guard (all hold)"

    def guards_hold(self) -> bool:
        for guard in self.guards:   # a plain loop: all() over a generator costs ~1 µs more
            if not guard():
                return False
        return True

    def _write_grads(self, leaves, results, n_saved: int) -> int:
        """Set each ``.grad`` the step wrote as eager mode would have left it."""
        used = set()
        for ref, has_value, accumulates in self.grad_writes:
            leaf = leaves[ref] if type(ref) is int else ref
            if not has_value:
                leaf.grad = None
                continue
            value = results[n_saved]
            n_saved += 1
            if type(ref) is int and leaf.grad is not None:
                # NOTE (argument gradients): the trace's stand-in for an argument had no
                # .grad, so the program computed the new gradient alone; eager adds it
                # into the .grad the argument came with
                np.add(leaf.grad._data, value, out=leaf.grad._data, casting="unsafe")
                leaf.grad._version[0] += 1
                continue
            if accumulates:   # eager ``+=`` into the gradient tensor the leaf had
                np.copyto(leaf.grad._data, value, casting="unsafe")
                leaf.grad._version[0] += 1
                continue
            if id(value) in used or not value.flags.writeable:
                value = np.array(value, copy=True)  # never two leaves on one storage
            used.add(id(value))
            leaf.grad = _wrap(value)
        return n_saved

    def _backward_fn(self, saved, outs):
        backward = self.backward
        present = self.grad_present
        out_specs = [(tuple(o._data.shape), o._data.dtype) for o in outs]

        def run(bundle):
            if grad_state.enabled:
                raise RuntimeError("double backward (create_graph=True) through a compiled "
                                   "function is not supported; call the function uncompiled")
            grads_in = []
            for k, (shape, dtype) in enumerate(out_specs):
                g = bundle.grads.get(k)
                grads_in.append(np.zeros(shape, dtype) if g is None else
                                g._data if g._data.dtype == dtype else  # (CUDA: no copy)
                                np.asarray(g._data, dtype=dtype))
            grads = iter(backward(list(saved) + grads_in))
            result = []
            for ok in present:
                # NOTE: an input the outputs do not depend on (differentiably) gets no
                # gradient, as in eager mode: its .grad stays None (optimizers skip it)
                result.append(_wrap(next(grads)) if ok else None)
            return tuple(result)
        return run


def _source_tensor(leaves, kind: str, ref):
    """The tensor an input source (``Entry.input_sources``) names this call: an argument,
    a leaf's gradient or a captured tensor; None for a runtime scalar."""
    return (leaves[ref] if kind == "arg" else ref._grad if kind == "leaf_grad"
            else ref if kind == "captured" else None)


def _copy_array(a):
    """A copy of a host or device array (on the device: a device-to-device copy)."""
    if not getattr(a, "on_device", False):
        return np.array(a, copy=True)
    out = a.device.empty(a.shape, a.dtype)
    if a.nbytes:
        a.device.driver.copy_dtod(out.ptr, a.ptr, a.nbytes)
    return out


def _backward_possible(outputs) -> bool:
    """Whether a backward from ``outputs`` can run: not after autograd.grad (without
    retain_graph) freed the graph they hang on, as eagerly."""
    try:
        # a trial run: what it records is dead code of the trace, dropped by planning
        run_backward(outputs, [(o * 0 + 1).detach() for o in outputs], retain_graph=True,
                     create_graph=False, capture=[], accumulate_into_leaves=False)
    except RuntimeError:
        return False
    return True


def build_entry(compiled, treedef, leaves, args, kwargs, compile_code: bool,
                plan_programs: bool = True, symbols=None) -> Entry:
    """Trace ``compiled.fn`` on ``leaves``' shapes; plan the programs unless
    ``plan_programs`` is False (a symbolic group's guard check needs the trace only), and
    compile them when ``compile_code``.  ``symbols``: a guard trace (``Tracer``)."""
    floats = FloatArguments(compiled, leaves)   # NOTE (float arguments) in float_args.py
    floats.refuse_past_limit()
    try:
        return _build_traced(compiled, treedef, leaves, args, kwargs, compile_code,
                             plan_programs, symbols, floats)
    except Exception as e:
        if floats.rec is None or isinstance(e, FloatWrittenToState):
            raise
        floats.close()   # (the trace on followed floats failed: again on their values)
        if debug_level():
            logger.debug("%s: float arguments traced as values: the trace on followed "
                         "floats raised %s: %s", compiled.__name__, type(e).__name__, e)
        return _build_traced(compiled, treedef, leaves, args, kwargs, compile_code,
                             plan_programs, symbols,
                             FloatArguments(compiled, leaves, False))
    finally:
        floats.close()


def _build_traced(compiled, treedef, leaves, args, kwargs, compile_code, plan_programs,
                  symbols, floats) -> Entry:
    tracer = Tracer(symbols)
    try:
        with _collector_paused(), stdout_held_until_success():
            entry = _build_entry(tracer, compiled, treedef, leaves, args, kwargs,
                                 compile_code, plan_programs, floats)
        floats.finish(entry)
        return entry
    except BaseException:
        tracer.rollback()  # the eager fallback must start from eager mode's state
        raise
    finally:
        tracer.release()


# NOTE (no collector while compiling): a compile makes ~10^5 objects that live until it
# ends (graph nodes, edges, loop IR), so Python's cyclic collector ran ~240 times over the
# LSTM's cold compile (4 lengths) and went through the growing graphs again each time:
# 132 ms of its 1.7 s of CPU, 36 of the CNN's 611 ms. Paused for the compile, it runs once
# after it (reference counting still frees everything acyclic at once).
@contextlib.contextmanager
def _collector_paused():
    was_enabled = gc.isenabled()   # a nested compile (a symbolic probe) or the user's choice
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _build_entry(tracer, compiled, treedef, leaves, args, kwargs, compile_code: bool,
                 plan_programs: bool, floats) -> Entry:
    entry = Entry()
    clock, start = phase_clock.totals(), time.perf_counter()
    with tracing(tracer):
        traced_leaves = []
        for position, leaf in enumerate(leaves):
            if isinstance(leaf, Tensor):
                traced_leaves.append(tracer.argument(leaf._data.shape, leaf._data.dtype,
                                                     leaf._requires_grad, position,
                                                     argument_layout(leaf._data)))
            else:  # a Python float: followed, never part of the signature
                traced_leaves.append(floats.traced(position, leaf))
        t_args, t_kwargs = pytree.unflatten(treedef, traced_leaves)
        with recording() as reads:   # NOTE (access paths)
            reads.writes.outside = given_objects(compiled.fn, args, kwargs)   # NOTE (state writes)
            tracer.undo.append(reads.writes.undo)   # a failed trace's writes are taken back
            out = compiled.fn(*t_args, **t_kwargs)
        if not pytree.rebuilt_unchanged(treedef, traced_leaves, (t_args, t_kwargs)):
            raise TraceError(f"{compiled.__name__} changes a list or dict it was passed "
                             f"(append, d[key] = value, ...): a compiled call would not "
                             f"repeat the change on the caller's own container")
        if inspect.isgenerator(out) or inspect.iscoroutine(out) or inspect.isasyncgen(out):
            out.close()  # never started: nothing of the function ran
            raise TraceError(f"{compiled.__name__} returned a {type(out).__name__}, whose body "
                             f"runs only when it is iterated, after tracing; compile traces "
                             f"functions that return tensors")
        out_treedef, out_leaves = pytree.flatten(out, static=True, followed=True)
        outputs, out_static = [], []
        aliases = []
        for leaf in out_leaves:
            if not isinstance(leaf, Tensor):
                out_static.append(leaf)
                continue
            if leaf._retains_grad and not tracer.ran_backward:
                # NOTE: the compiled backward computes the arguments' gradients only, so a
                # returned intermediate's .grad would stay None: eager mode fills it
                raise TraceError(f"{compiled.__name__} returns a tensor marked with "
                                 f"retain_grad(), whose .grad the compiled backward does not "
                                 f"compute")
            if leaf._view is not None:   # a view behind a write through another view
                tracer.refuse_stale_view(leaf)   # of its root would return old values
            alias = returned_argument(leaf, traced_leaves, tracer)
            if alias is not None:
                aliases.append((len(outputs),) + alias)
            if not isinstance(leaf._data, TraceValue):
                leaf = leaf * 1 if leaf._data.dtype.kind != "b" else leaf & True  # lift constant
            outputs.append(leaf)
            out_static.append(None)

        aliases += returned_views(outputs, {a[0] for a in aliases})
        grads, grad_inputs, diff_sources, eager_reads = [], [], [], set()
        differentiable = [o for o in outputs if o._requires_grad]
        # the results that require grad (eagerly, x.detach() * 3 does not)
        entry.diff_outputs = frozenset(k for k, o in enumerate(outputs) if o._requires_grad)
        if tracer.ran_backward or (tracer.graph_freed
                                   and not _backward_possible(differentiable)):
            # a training step (backward(), or autograd.grad(loss, params) and a manual
            # update): its outputs (the loss) are results, not the start of a second
            # backward through the compiled function (eagerly one raises: graph freed)
            differentiable = []
        # NOTE: whatever the grad mode of the call: a function may enable grad inside
        # (``with enable_grad():``), and then returns results that require grad eagerly
        if differentiable:
            diff_tensors = []
            for position, (leaf, t) in enumerate(zip(leaves, traced_leaves)):
                if isinstance(leaf, Tensor) and leaf._requires_grad:
                    diff_tensors.append(t)
                    diff_sources.append(("arg", position))
            for t, _node in list(tracer.captured.values()):
                if t._requires_grad:
                    diff_tensors.append(t)
                    diff_sources.append(("captured", t))
            eager_reads = reads_for_backward(outputs, tracer, traced_leaves)
            grad_tensors = [tracer.grad_input(o, k) for k, o in enumerate(outputs)]
            grad_inputs = [g._data.node for g in grad_tensors]
            roots = [(o, g) for o, g in zip(outputs, grad_tensors) if o._requires_grad]
            with recording(reads):   # the user's tensor hooks run here
                captured = run_backward([r for r, _ in roots], [g for _, g in roots],
                                        retain_graph=True, create_graph=False,
                                        capture=diff_tensors, accumulate_into_leaves=False)
            for g in captured:
                if g is not None and not isinstance(g._data, TraceValue):
                    g = g * 1  # a constant gradient: make it a graph value
                grads.append(g)
            for o in outputs:  # the forward outputs must not keep the traced graph alive
                o.grad_fn = None
        # read before the trace ends: a written tensor gets its concrete value back then
        out_ids = [o._data.node for o in outputs]
        arg_writes = []
        for position, (leaf, t) in enumerate(zip(leaves, traced_leaves)):
            if isinstance(leaf, Tensor) and tracer.rebind_count(t):
                arg_writes.append((("arg", position), t._data.node, tracer.rebind_count(t)))

    entry.out_aliases = tuple(aliases)
    writes = arg_writes + [(tracer.source_of(t), node, count)
                           for t, node, count in tracer.written]
    if not tracer.training_step and any(kind == "captured" and t._requires_grad
                                       for (kind, t), _, _ in writes):
        raise TraceError("an in-place write to a tensor that requires grad, outside the "
                         "function's arguments, cannot be compiled")
    entry.writes = [(ref, count) for ref, _, count in writes]
    entry.written_args = tuple(ref for (kind, ref), _ in entry.writes if kind == "arg")
    write_ids = [node for _, node, _ in writes]
    write_ids += [node for _, node, _ in tracer.grad_writes if node is not None]
    # an argument's stand-in is this trace's object: each call writes its argument's .grad
    position_of = {id(t): k for k, t in enumerate(traced_leaves)}
    entry.grad_writes = [(position_of.get(id(leaf), leaf), node is not None, acc)
                         for leaf, node, acc in tracer.grad_writes]
    entry.guards = (list(tracer.guards) + requires_grad_guards(tracer)
                    + python_value_guards(compiled.fn)
                    + path_guards(reads, covered_reads(compiled.fn), compiled.__name__))
    grad_ids = [None if g is None else g._data.node for g in grads]
    tracer.graph.outputs = out_ids + write_ids + [g for g in grad_ids if g is not None]
    parts = split(tracer.graph, out_ids + write_ids, grad_ids, grad_inputs, eager_reads)
    entry.traced = tracer.graph
    entry.n_outputs = len(out_ids)
    entry.out_treedef = out_treedef
    entry.out_static = out_static
    kinds = tracer.input_kinds
    index_of_node = {n: k for k, n in enumerate(tracer.graph.inputs)}
    entry.input_sources = []
    for n in parts.forward_inputs:
        kind = kinds[index_of_node[n]]
        entry.input_sources.append(kind if kind[0] != "scalar"
                                   else ("scalar", (kind[1], np.zeros((), kind[2]))))
    entry.captured_meta = [(ref, node.shape, node.dtype) for (kind, ref), node in zip(
        entry.input_sources, map(tracer.graph.node, parts.forward_inputs))
        if kind == "captured"]
    made = tracer.made_here_ids()
    entry.made_inputs = [k for k, (kind, ref) in enumerate(entry.input_sources)
                         if kind == "captured" and id(ref) in made]
    traced, clock_traced = time.perf_counter(), phase_clock.totals()
    if parts.backward is not None:
        entry.diff_inputs = diff_sources
        entry.grad_present = [g is not None for g in grads]
        entry.saved_reads = saved_reads(parts, tracer.graph, out_ids)
        entry.saved_copies = tuple(k - len(parts.saved) for k in parts.copied)
    if not plan_programs:
        return entry
    # CUDA when the arguments (backend "auto") or the captured tensors live there
    on_cuda = compiled._backend_for(leaves) == "cuda" or any(
        kind == "captured" and ref._device.type == "cuda" for kind, ref in entry.input_sources)
    entry.forward_plan = plan_cache.plan(parts.forward, _inplace_writes(entry, len(out_ids)),
                                         None if on_cuda or not horizontal.ENABLED else
                                         update_segments(tracer, parts.forward_ids))
    if tracer.training_step:
        entry.stages = _kernel_stages(entry.forward_plan, parts.forward_ids, tracer)
    if parts.backward is not None:
        entry.backward_plan = plan_cache.plan(parts.backward)
    planned = time.perf_counter()
    # lowering, and loading a planned program from the disk cache, are timed as they run
    not_passes = phase_clock.since(clock_traced)
    if compile_code:
        # NOTE (warm results), runtime.warm_pages: the first call's memory is faulted in
        # on another thread while LLVM compiles; joined before that call
        warming = None if on_cuda else warm(fresh_bytes(entry.forward_plan)
                                            + fresh_bytes(entry.backward_plan))
        try:
            # NOTE (deferred writes), runtime.disk_cache: the cache entries are written
            # on the helper thread while this call runs the program
            with disk_cache.deferred():
                _compile_programs(entry, on_cuda)
        except ProgramCompileError as e:
            raise ProgramCompileError(f"{e}; the generated IR is in {_save_sources(entry)}") from e
        finally:
            if warming is not None:
                warming.join()
    # where the time went (the dump's index): lowering is timed inside planning
    spent = phase_clock.since(clock)
    spent["trace"] = traced - start
    spent["passes"] = max(planned - traced - not_passes.get("lower", 0.0)
                          - not_passes.get("load", 0.0), 0.0)
    entry.phase_seconds = {k: spent.get(k, 0.0) for k in phase_clock.PHASES}
    return entry


def _compile_programs(entry, on_cuda: bool) -> None:
    """The entry's programs made executable, and their plans stored (plan_cache)."""
    if not on_cuda and entry.backward_plan is not None:
        _compile_kernels_together(entry.forward_plan, entry.backward_plan)
    if on_cuda:
        entry.forward = CudaProgram(entry.forward_plan, extern_eval)
        if entry.backward_plan is not None:
            entry.backward = CudaProgram(entry.backward_plan, extern_eval)
    else:   # NOTE (one driver module per entry), runtime.driver_call
        entry.forward = CompiledProgram(entry.forward_plan, extern_eval, link=False)
        if entry.backward_plan is not None:
            entry.backward = CompiledProgram(entry.backward_plan, extern_eval, link=False)
        link_together([p for p in (entry.forward, entry.backward) if p is not None])
    for program_plan in (entry.forward_plan, entry.backward_plan):
        plan_cache.save(program_plan, with_sources=not on_cuda)


def _inplace_writes(entry, n_outputs: int) -> dict:
    """Result position -> (argument position, other positions of the same tensor) for
    each in-place write of a captured tensor (a parameter, optimizer state) in a training
    step: the program may compute it over the tensor's own storage instead of a fresh
    array copied back. A tensor may be captured at two positions (the forward's read and
    the update's); the planner must see both (NOTE (in-place results), schedule.py)."""
    positions: dict = {}
    for k, (kind, ref) in enumerate(entry.input_sources):
        if kind in ("captured", "leaf_grad"):
            positions.setdefault((kind, id(ref)), []).append(k)   # a leaf_grad's ref is its leaf
    out = {}
    for j, ((kind, ref), _count) in enumerate(entry.writes):
        if (kind, id(ref)) in positions:
            *others, last = positions[(kind, id(ref))]
            out[n_outputs + j] = (last, *others)
    return out


def _kernel_stages(program, forward_ids, tracer) -> dict:
    """Each kernel's phases of the training step, from the trace nodes fused into it."""
    joint_of = {f: j for j, f in forward_ids.items()}
    stages = {}
    order = ("forward", "backward", "update")
    for step in program.kernels:
        members = [n for ref in step.groups for n in program.fusion.groups[ref].members]
        phases = {tracer.phase_of(joint_of[n]) for n in members if n in joint_of}
        stages[step.name] = "+".join(p for p in order if p in phases) or "forward"
    return stages


# NOTE (one batch per entry): the forward and backward programs' kernels compile as one
# batch (llvm_jit's NOTE (one module per batch)) before either program is built, which then
# finds its kernels in memory: split into shards on two threads as one batch (NOTE
# (parallel batches)), a single-kernel backward no longer waits for the forward's LLVM
# to finish and then runs alone, and the pair pays one module's fixed cost, not two. A
# later process compiles the same pair and finds the same batch on disk.
def _compile_kernels_together(*plans) -> None:
    sources = list(dict.fromkeys(s for plan in plans for s in llvm_sources(plan).values()))
    if len(sources) < 2:
        return
    try:
        compile_llvm_many(sources, CANONICAL_NAME)
    except Exception:  # noqa: BLE001 - each program then compiles its own and names the failure
        pass


def _save_sources(entry) -> str:
    """Write every kernel's LLVM IR to a fresh folder, for the fallback warning."""
    folder = Path(tempfile.mkdtemp(prefix="tracegrad-failed-"))
    for program in (entry.forward_plan, entry.backward_plan):
        if program is not None:
            for name, source in llvm_sources(program).items():
                (folder / f"{name}.ll").write_text(source)
    return str(folder)
