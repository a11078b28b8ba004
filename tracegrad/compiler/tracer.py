"""Tracing: run a function on tensors that carry only a shape and a dtype, recording
every primitive call into a ``codegen.graph.Graph``.

The dispatcher (``tracegrad._dispatch.apply``) hands each primitive call to the active
``Tracer``. Tensor arguments become INPUT nodes; a concrete tensor the function reads
without receiving it (a module parameter, a closure variable, a constant it built) is
*captured*: it becomes an INPUT node too, and its storage is read again at every call,
so it is never baked into the generated code. Python scalars become CONST nodes.
"""
from __future__ import annotations

import functools
import weakref

import numpy as np

from .. import _trace_state
from .._cuda_tensor import _scalar_dtype, _sibling_dtype   # one rule, eager and traced
from .._dispatch import is_tracing
from .._random import default_generator
from .._tensor import Tensor, _wrap
from ..codegen.graph import Graph
from ..codegen.ops import MOVEMENT, Op
from .errors import TraceError
from .float_args import check_scalar_read
from .int_args import CallValue, SymArg
from .dead_aliases import WrittenAliases
from .python_guards import attributes, attributes_guard, described
from .symint import symbol
from .trace_value import TraceValue, Write   # noqa: F401 - re-exported

# NOTE (in-place writes while tracing): ``_ops.inplace.commit_inplace`` writes functionally
# under a trace: it rebinds ``x._data`` to the traced result, through
# ``_dispatch.rebind_data``, which tells this thread's tracer (``note_rebind``).  For a
# tensor that existed before the trace (a module buffer such as BatchNorm's running_mean, a
# closure variable) that rebinding must neither outlive the trace (the tensor would hold a
# TraceValue) nor be lost (eager mode writes the new value into its storage on every call).
# ``tracing.__exit__`` puts each written tensor back as it was, and the frontend returns each
# one's final value from the forward program and writes it into the tensor's storage after
# every call (``Entry.run``).  Tensors made during the trace (``_tensor._wrap`` reports them
# through ``_trace_state.note_new_tensor``) are locals of the function: never written back.
# Views and detach() aliases share storage (NOTE (views) in _ops/views.py), which rebinding
# one tensor cannot express: a write through a view or alias, and a read of one after the
# tensor it shares storage with was written in the trace, raise TraceError (the call runs
# eagerly, with the usual warning), never a wrong answer.

# NOTE (training step capture): ``backward()``, ``zero_grad()``, ``clip_grad_norm_`` and
# ``optimizer.step()`` run inside a trace (DESIGN.md "Training step capture"). The engine
# hands each leaf gradient to ``store_grad`` (the ``.grad`` field gets a traced value);
# ``zero_grad`` reports clearing one (``note_grad``); ``finish`` puts every ``.grad`` back
# and lists ``grad_writes``, which ``Entry.run`` applies after every call: None, a fresh
# tensor, or (when eager mode would have accumulated with ``+=``) a copy into the old
# one. Optimizer rules run as in-place tensor ops (``optim/_capture.py``), so parameters
# and state are ordinary in-place writes of captured tensors (the NOTE above), computed
# over their own storage where safe (NOTE (in-place results) in codegen/schedule.py);
# state made during the trace is ``keep``-t. Hyper-parameters are ``runtime_scalar``
# inputs; what the trace branched on is a guard (``guards``): ``CompiledFunction``
# retraces when one fails. ``phases`` label kernels forward / backward / update.


class Tracer:
    """Records primitive calls. ``inputs`` are the argument tensors' INPUT nodes in order;
    ``captured`` maps each captured tensor's id to its (tensor, node id)."""

    def __init__(self, symbols=None) -> None:
        # NOTE (guards instead of a retrace) in symint.py: (Recorder, {argument position:
        # dims that are s0}, made_sizes.made) for a guard trace, whose argument shapes hold
        # SymInts there; the third makes the tensors the function builds from a size
        # (NOTE (tensors made from a size) in made_sizes.py)
        self.symbols = symbols
        self.made_from_sizes = None if symbols is None else functools.partial(symbols[2], self)
        self.graph = Graph()
        self.n_inputs = 0
        self.input_kinds: list[tuple] = []  # ("arg", k) | ("captured", tensor) | ("grad", k)
        #                                     | ("leaf_grad", leaf) | ("scalar", ...)
        self.captured: dict[int, tuple[Tensor, int]] = {}
        self._consts: dict = {}
        self._born: set[int] = set()          # ids of tensors created during the trace
        self._writes: dict[int, Write] = {}   # id -> concrete tensor rebound to a trace value
        self._rebinds: dict[int, int] = {}    # id -> times a traced tensor was rebound
        self._dead_aliases = WrittenAliases()   # NOTE (aliases of a dead tensor)
        self.written: list[tuple[Tensor, int, int]] = []  # after the trace: see finish()
        self.kept_history = None   # shape of a tensor from before the trace given history
        self._rng_state = None
        # NOTE (training step capture): backward() and optimizer steps inside a trace
        self.ran_backward = False
        self.graph_freed = False              # a backward in the trace freed its graph
        self.stepped = False                  # an optimizer step ran (optim/_capture.py)
        self.phases: list[tuple[int, str]] = [(0, "forward")]  # (first node id, phase)
        self.update_groups: list[int] = []    # first node id of each optimizer group's update
        self._grads: dict[int, list] = {}     # id -> [leaf, .grad before, cleared]
        self._grad_reads: dict[int, tuple] = {}  # id of a .grad read -> (leaf, .grad)
        self._leaf_grads: dict[int, tuple] = {}  # id -> (leaf, .grad): ("leaf_grad", leaf)
        self._grad_guarded: set[tuple] = set()   # (id of a .grad, id of its leaf)
        self.grad_writes: list[tuple[Tensor, int | None, bool]] = []  # see finish()
        self.guards: list = []                # callables: True while the trace is valid
        self.undo: list = []                  # callables that take back the trace's side
                                              # effects on Python state if it is not used

    # ---- in-place writes (see the NOTE at the top) -------------------------------------
    def note_born(self, t: Tensor) -> None:
        self._born.add(id(t))

    def is_born(self, t: Tensor) -> bool:
        """``t`` was created during the trace."""
        return id(t) in self._born

    def note_rebind(self, t: Tensor, value) -> None:
        old = t._data
        if type(value) is not TraceValue:
            return
        self._refuse_aliased_write(t)
        key = id(t)
        if type(old) is TraceValue:
            if key in self._writes:
                self._writes[key].count += 1
            elif (key not in self._rebinds and old.tracer is self
                  and self.graph.node(old.node).op in MOVEMENT):
                # NOTE: a view made by a primitive call outside the view ops (so without
                # a ``_base``): eager mode writes through it into the tensor it views
                raise TraceError("an in-place write into a view (a slice, reshape, "
                                 "transpose, ...) changes the viewed tensor too, which a "
                                 "compile trace cannot follow")
            self._rebinds[key] = self._rebinds.get(key, 0) + 1
            return
        write = self._writes.get(key)
        if write is None:
            self._dead_aliases.note_write(t, self._writes)
            if key not in self.captured and key in self._grad_reads:
                self._as_leaf_grad(t)   # a .grad written before it is read (zero_())
            write = self._writes[key] = Write(t, old, key in self._born)
        write.count += 1

    def may_write_view_of(self, view: Tensor) -> bool:
        """Whether a write into ``view`` can rebind its root (NOTE (view writes in a
        trace) in _ops/writes.py): the view is made in this trace (one from before it
        would keep the trace's value after it), its root a value of this trace (an
        argument, a result) or a tensor from before it (a buffer's ``count[0] += 1``),
        whose storage the program then writes back like any captured tensor's."""
        mine, data = view._data, view._view[0]._data
        return (type(mine) is TraceValue and mine.tracer is self
                and id(view) not in self._writes
                and (type(data) is np.ndarray
                     or (type(data) is TraceValue and data.tracer is self)))

    def note_view_write(self, view: Tensor) -> None:
        """``view`` (of a root ``may_write_view_of`` allowed) now holds written values."""
        self._rebinds[id(view)] = self._rebinds.get(id(view), 0) + 1

    def _refuse_aliased_write(self, t: Tensor) -> None:
        """Eagerly, a write into a view or a detach() alias is a write into the tensor
        whose storage it shares (NOTE (views) in _ops/views.py). A trace rebinds one
        tensor to a new value, so it refuses such a write (the call falls back to eager)
        rather than lose it."""
        if t._view is not None or (t._alias_of is not None and t._alias_of[0]() is not None):
            what = "a view" if t._view is not None else "a tensor made by detach() or .data"
            raise TraceError(f"an in-place write into {what} (shape {tuple(t.shape)}) "
                             f"changes the tensor whose storage it shares too, which a "
                             f"compile trace does not follow")

    def refuse_stale_view(self, t: Tensor) -> None:
        """``t``, a view the function returns, must show every write into its root."""
        self._refuse_stale_alias(t)

    def _refuse_stale_alias(self, t: Tensor) -> None:
        """A view or alias read after its root was written in this trace: eagerly it shows
        the write; its trace value (or, for a concrete tensor, the storage read when a call
        starts) would not."""
        root = _written_since_made(t)
        if root is not None and (id(root) in self._writes or id(root) in self._rebinds):
            raise TraceError(f"a view or detach() of a tensor is read (shape "
                             f"{tuple(t.shape)}) after that tensor was written in place; "
                             f"a compile trace does not follow that")
        self._dead_aliases.refuse_stale_read(t, self._writes)

    # ---- .grad fields and optimizer state (NOTE (training step capture)) ---------------
    def grads_written(self) -> list:
        """[leaf, its .grad before the trace, cleared] of each .grad the trace changed."""
        return list(self._grads.values())

    def note_grad(self, leaf: Tensor, cleared: bool = False) -> None:
        """``leaf.grad`` is about to change (the engine stores a gradient, or
        ``zero_grad`` clears it, ``cleared``)."""
        self.ran_backward = self.ran_backward or not cleared
        entry = self._grads.get(id(leaf))
        if entry is None:
            entry = self._grads[id(leaf)] = [leaf, leaf.grad, False]
            # NOTE: the guard keeps whether a gradient existed, never the tensor: holding
            # it would keep a ("leaf_grad", leaf) input's old gradient alive, whose guard
            # then fails at every new gradient (NOTE (gradient reads))
            # a leaf made in the trace (x.clone().requires_grad_() for a gradient
            # penalty: a traced value, never a tensor from before the trace written in
            # it) is a new tensor at every call: the .grad the last call left on this
            # trace's object says nothing about the next call (it retraced every step)
            if type(leaf._data) is not TraceValue or id(leaf) in self._writes:
                had_none = leaf.grad is None
                self.guards.append(described(lambda: (leaf.grad is None) == had_none,
                                             "a .grad was set or cleared outside the step"))
        entry[2] = entry[2] or cleared

    # NOTE (gradient reads): a ``.grad`` from before the trace that the program reads or
    # writes (clip_grad_norm_ or opt.step() after an eager backward()) is an input of kind
    # ("leaf_grad", leaf): each call reads, and writes back into, the leaf's CURRENT
    # ``.grad`` (zero_grad() then backward() make a new tensor every step; replaying must
    # neither read the old one nor recompile). The trace relied on no more than the
    # gradient's existence, shape, dtype and layout: those are its guards. The old tensor
    # must also be dead or still be the ``.grad``: while another reference could reach
    # it, the program could not tell which of the two a read meant. A ``.grad`` tensor
    # captured before it was read through ``.grad``, shared by two leaves, or requiring
    # grad stays a ("captured", t) input guarded by ``leaf.grad is t`` (retraces).
    def note_grad_read(self, leaf: Tensor, g: Tensor) -> None:
        """``leaf.grad`` was read and is ``g`` (Tensor.grad's getter, while tracing)."""
        leaves = self._grad_reads.setdefault(id(g), ([], g))[0]   # holds g: id stays its own
        if not any(x is leaf for x in leaves):
            leaves.append(leaf)
        if id(g) in self.captured or id(g) in self._writes:
            self._guard_grad_read(g)

    def _guard_grad_read(self, g: Tensor) -> None:
        """``g`` is already an input or written: every leaf whose ``.grad`` it was read as
        must keep it, unless ``g`` is that leaf's ("leaf_grad", leaf) input."""
        own = self._leaf_grad_of(g)
        for leaf in self._grad_reads.get(id(g), ((), None))[0]:
            if leaf is not own and (id(g), id(leaf)) not in self._grad_guarded:
                self._grad_guarded.add((id(g), id(leaf)))
                self.guards.append(described(lambda leaf=leaf: leaf.grad is g,
                                             "a .grad the step reads was replaced"))

    def _leaf_grad_of(self, t: Tensor):
        """The leaf whose current ``.grad`` stands for ``t`` at every call, or None."""
        return self._leaf_grads.get(id(t), (None,))[0]

    def _as_leaf_grad(self, t: Tensor) -> bool:
        """Make ``t`` (about to be captured or written, not yet either) a ("leaf_grad",
        leaf) input if it is a ``.grad`` read in this trace (NOTE (gradient reads))."""
        leaves, read = self._grad_reads.get(id(t), ((), None))
        if len(leaves) != 1 or read is not t or t._requires_grad:
            return False
        leaf = leaves[0]
        data = t._data
        layout = (type(data), data.shape, data.dtype, getattr(data, "strides", None),
                  t._view is None, t._alias_of is None)
        old = weakref.ref(t)

        def holds() -> bool:
            g = leaf._grad
            if g is None or g._requires_grad:
                return False
            was = old()
            d = g._data
            return ((was is None or was is g)
                    and (type(d), d.shape, d.dtype, getattr(d, "strides", None),
                         g._view is None, g._alias_of is None) == layout)
        self._leaf_grads[id(t)] = (leaf, t)
        self.guards.append(described(holds, "a .grad the step reads changed its layout"))
        return True

    def source_of(self, t: Tensor) -> tuple:
        """How a call finds the tensor ``t`` the trace captured or wrote."""
        leaf = self._leaf_grad_of(t)
        return ("leaf_grad", leaf) if leaf is not None else ("captured", t)

    def store_grad(self, leaf: Tensor, g: Tensor) -> None:
        """The engine's ``leaf.grad = g`` (or ``+= g``) in a trace.  The stored value is
        the leaf's own tensor, as eagerly (where the engine copies an aliasing gradient),
        so an in-place write into it (clipping) is no write into a view."""
        self.note_grad(leaf)
        value = g if leaf.grad is None else leaf.grad + g
        self._rebinds.setdefault(id(value), 0)
        leaf.grad = value

    def note_module(self, module) -> None:
        """``module`` ran in the trace: what it did may depend on ``module.training``
        (dropout, batch norm), so switching train()/eval() retraces; so does a change of
        a plain attribute the trace baked in as a constant (dropout's ``p``, a leaky
        ReLU's slope, a scale set by hand), and a parameter, buffer or submodule of it or
        of a container below it replaced, added or removed (NOTE (module members))."""
        seen = self.__dict__.setdefault("_modules", set())
        if id(module) not in seen:
            seen.add(id(module))
            mode = module.training
            self.guards.append(described(lambda: module.training == mode,
                                         f"{type(module).__name__} switched train()/eval()"))
            noted = self._noted_modules
            if not noted:   # the first module: one guard serves them all
                self.guards.append(attributes_guard(noted))
            snapped = self.__dict__.setdefault("_modules_snapped", set())
            for below in module.modules():   # a ModuleList/ParameterDict indexed in forward
                if id(below) not in snapped:
                    snapped.add(id(below))
                    noted.append((below, attributes(below)))

    @property
    def _noted_modules(self) -> list:
        return self.__dict__.setdefault("_modules_read", [])

    def rollback(self) -> None:
        """The trace will not be used (it failed, or its code did not compile): take back
        what it did to Python objects that outlive it (an optimizer's lazily made state),
        so that the eager fallback starts from where eager mode would."""
        undo, self.undo = self.undo, []
        for fn in reversed(undo):
            fn()

    def release(self) -> None:
        """The entry is built: drop the tensors the trace saw. A trace is a reference
        cycle (its values point back at it) that lives until the next garbage collection;
        holding a ``.grad`` until then would fail its (leaf_grad) guard at the next call
        (NOTE (gradient reads))."""
        self.captured.clear()
        self.written = []
        self._grad_reads.clear()
        self._leaf_grads.clear()
        self.input_kinds = [k if k[0] != "captured" else ("captured", None)
                            for k in self.input_kinds]

    def made_here_ids(self) -> set[int]:
        """Ids of the captured tensors made during the trace (cross_entropy's arange of
        the classes, a constant built from a size): their values are this trace's."""
        return {id(t) for t, _ in self.captured.values() if id(t) in self._born}

    def made_here(self, t: Tensor) -> bool:
        """``t`` was made during this trace (and not ``keep``-t): its in-place writes are
        never written back, so it must not outlive the trace."""
        return id(t) in self._born

    def keep(self, t: Tensor) -> Tensor:
        """``t``, made during the trace, outlives it (lazily created optimizer state):
        its in-place writes are written back like those of a captured tensor."""
        self._born.discard(id(t))
        return t

    def runtime_scalar(self, read, dtype) -> Tensor:
        """A 0-d input whose value ``read()`` gives at every call (a learning rate a
        scheduler changes, a bias correction): never a constant in the code."""
        if type(read) is not CallValue:
            check_scalar_read(read)   # NOTE (float arguments written to state)
        node = self._new_input((), dtype, ("scalar", read, np.dtype(dtype)))
        return _wrap(TraceValue((), dtype, node, self))

    def _finish_grads(self) -> None:
        """Put each ``.grad`` back; ``grad_writes`` lists ``(leaf, node of its final
        gradient or None for no gradient, whether it accumulated into the old tensor)``."""
        outside = False
        for leaf, original, cleared in self._grads.values():
            final = leaf.grad
            leaf.grad = original
            if final is None:
                self.grad_writes.append((leaf, None, False))
            elif isinstance(final._data, TraceValue) and final._data.tracer is self:
                if (original is not None and id(original) in self.captured
                        and self._leaf_grad_of(original) is not leaf):
                    # the old gradient is read at every call: it must be the same tensor,
                    # unless it is read as the leaf's current .grad (NOTE (gradient reads)):
                    # accumulating micro-batches then replays after every zero_grad()
                    self.guards.append(described(lambda leaf=leaf, old=original:
                                                 leaf.grad is old,
                                                 "a .grad the step accumulates into was "
                                                 "replaced"))
                self.grad_writes.append((leaf, final._data.node,
                                         not cleared and original is not None))
            elif final is not original:
                outside = True   # raised once every field is back (the eager fallback
                #                  then starts from the .grad fields the call began with)
        self._grads.clear()
        if outside:
            raise TraceError("a .grad field was set to a tensor made outside the trace")

    def mark_phase(self, phase: str) -> None:
        """Nodes recorded from now on belong to ``phase`` ("backward", "update"): reports
        label each kernel of a training step with the phases of its nodes."""
        if self.phases[-1][1] != phase:
            nodes = self.graph.nodes
            self.phases.append((nodes[-1].id + 1 if nodes else 0, phase))

    def mark_update_group(self) -> None:
        """Nodes recorded from now on update the next optimizer group: its kernels may run
        as one (NOTE (horizontal fusion), codegen.horizontal)."""
        self.mark_phase("update")
        nodes = self.graph.nodes
        self.update_groups.append(nodes[-1].id + 1 if nodes else 0)

    def phase_of(self, node_id: int) -> str:
        phase = "forward"
        for start, name in self.phases:
            if node_id >= start:
                phase = name
        return phase

    @property
    def training_step(self) -> bool:
        """backward() or an optimizer step ran: writes into parameters are the point."""
        return self.ran_backward or self.stepped or self.graph_freed

    def rebind_count(self, t: Tensor) -> int:
        return self._rebinds.get(id(t), 0)

    def finish(self) -> None:
        """Put every written tensor back as it was before the trace.  ``written`` then
        lists ``(tensor, node of its final value, number of writes)`` for the tensors
        that outlive the trace; captures of their aliases read the tensor itself."""
        try:
            self._finish_grads()
        finally:   # a failed trace must still give back what it wrote (a parameter)
            self._restore_written()

    def _restore_written(self) -> None:
        if self.symbols is not None:
            self.symbols[0].active = False   # what the compiler does next is no guard
        written = []
        for w in self._writes.values():
            t = w.tensor
            final = t._data
            if not w.born and t.grad_fn is not None and t.grad_fn is not w.grad_fn:
                self.kept_history = tuple(t.shape)
            t._data = w.original
            t._version[0] = w.version
            t.grad_fn = w.grad_fn
            t._requires_grad = w.requires_grad
            if w.born or not isinstance(final, TraceValue) or final.tracer is not self:
                continue
            written.append((t, final.node, w.count))
            for k, kind in enumerate(self.input_kinds):
                c = kind[1] if kind[0] == "captured" else None
                if c is not None and c is not t and c._version is t._version \
                        and c._data is w.original:
                    self.input_kinds[k] = self.source_of(t)  # an alias made by the write
        self._writes.clear()
        self.written = written

    # ---- inputs ------------------------------------------------------------------------
    def _new_input(self, shape, dtype, kind) -> int:
        node = self.graph.add(Op.INPUT, (), tuple(shape), np.dtype(dtype), index=self.n_inputs)
        self.n_inputs += 1
        self.input_kinds.append(kind)
        return node.id

    def argument(self, shape, dtype, requires_grad: bool, position: int,
                 strides=None) -> Tensor:
        if self.symbols is not None and position in self.symbols[1]:
            rec, dims = self.symbols[0], self.symbols[1][position]
            shape = tuple(symbol(m, rec) if d in dims else m for d, m in enumerate(shape))
        node = self._new_input(shape, dtype, ("arg", position))
        t = _wrap(TraceValue(shape, dtype, node, self))
        t._data.strides = strides   # the call's layout: NOTE (layout signatures)
        t._requires_grad = bool(requires_grad)
        return t

    def grad_input(self, like: Tensor, position: int) -> Tensor:
        data = like._data
        node = self._new_input(data.shape, data.dtype, ("grad", position))
        return _wrap(TraceValue(data.shape, data.dtype, node, self))

    def _capture(self, t: Tensor) -> int:
        entry = self.captured.get(id(t))
        if entry is None:
            data = t._data
            if not isinstance(data, np.ndarray) and not getattr(data, "on_device", False):
                raise TraceError("a tensor from another trace was used inside this one")
            if id(t) not in self._leaf_grads and id(t) in self._grad_reads:
                self._as_leaf_grad(t)
            node = self._new_input(data.shape, data.dtype, self.source_of(t))
            entry = self.captured[id(t)] = (t, node)
            self._guard_grad_read(t)
        return entry[1]

    def _const(self, value, dtype) -> int:
        # NOTE: the sign too, as 0.0 == -0.0: merged, x / -0.0 after x * 0.0 divided by +0.0
        negative_zero = type(value) is float and value == 0 and bool(np.signbit(value))
        key = (type(value), value, negative_zero, np.dtype(dtype))
        node = self._consts.get(key)
        if node is None:
            node = self._consts[key] = self.graph.add(Op.CONST, (), (), np.dtype(dtype),
                                                      value=value).id
        return node

    # ---- recording ---------------------------------------------------------------------
    def record(self, prim, inputs, args, attrs) -> TraceValue:
        if prim.op is Op.INDEX and any(np.dtype(a.dtype) == np.bool_ for a in args[1:]):
            raise TraceError("indexing with a boolean mask has a data-dependent shape")
        avals, ids = [], []
        sibling = _sibling_dtype(prim.op, args)
        for x, a in zip(inputs, args):
            if isinstance(x, Tensor) and (x._view is not None or x._alias_of is not None):
                self._refuse_stale_alias(x)
            if isinstance(a, TraceValue):
                if a.tracer is not self:
                    raise TraceError("a tensor from another trace was used inside this one")
                ids.append(a.node)
                avals.append(a)
            elif isinstance(x, Tensor):
                ids.append(self._capture(x))
                avals.append(a)
            elif type(a) is SymArg and a.rec.active:   # NOTE (int arguments), int_args.py
                ids.append(a.runtime_input(self, sibling if sibling is not None
                                           else _scalar_dtype(a._v)))
                avals.append(a._v)
            else:
                ids.append(self._const(a, sibling if sibling is not None else _scalar_dtype(a)))
                avals.append(a)
        shape, dtype = prim.shape(*avals, **attrs)
        node = self.graph.add(prim.op, tuple(ids), tuple(shape), np.dtype(dtype), **attrs)
        return TraceValue(shape, dtype, node.id, self)


def _written_since_made(t: Tensor):
    """The tensor whose storage the view or alias ``t`` shares, if that tensor was written
    since ``t`` was made (its version counter moved; ``.data`` has a counter of its own),
    else None."""
    view = t._view
    root, version = (view[0], view[2]) if view is not None else (t._alias_of[0](), t._alias_of[1])
    return root if root is not None and root._version[0] != version else None


class tracing:
    """Context manager that makes ``tracer`` the active one."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def __enter__(self) -> Tracer:
        if is_tracing():
            raise TraceError("nested compile traces are not supported")
        self.tracer._rng_state = _generator_state()
        _trace_state.start(self.tracer)
        return self.tracer

    def __exit__(self, exc_type, *exc) -> bool:
        _trace_state.stop()
        self.tracer.finish()
        saved = self.tracer._rng_state
        if _generator_state() != saved:
            # NOTE: a value drawn while tracing would be baked into every call; the
            # generator goes back to where it was, for the eager fallback to draw it
            default_generator._seed, default_generator.numpy = saved[0], saved[1]
            saved[1].bit_generator.state = saved[2]
            if exc_type is not None:
                return False
            raise TraceError("the random generator was used eagerly while tracing (an "
                             "in-place random fill, randint, randperm, manual_seed, a module "
                             "built inside the function, ...); a compiled call would not "
                             "repeat that")
        if exc_type is None and self.tracer.kept_history is not None:
            # eagerly the tensor keeps this step's graph (the next backward through it
            # raises, as PyTorch's); the program writes back only its values
            raise TraceError(f"a tensor from before the call (shape "
                             f"{self.tracer.kept_history}) is written in place with grad "
                             f"mode on and keeps the autograd graph of the call, which a "
                             f"compiled call does not give it; write it under no_grad()")
        return False


def _generator_state():
    gen = default_generator.numpy
    return default_generator._seed, gen, gen.bit_generator.state


__all__ = ["TraceValue", "Tracer", "tracing"]
