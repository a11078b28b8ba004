"""``tracegrad.compile``: specialise a function per signature, trace it once per
signature, compile the forward (and, when gradients are needed, the backward) graph,
and replay the compiled programs on later calls with the same signature."""
from __future__ import annotations

import functools
import inspect
import sys
import time
import traceback
import warnings
from collections import namedtuple
from pathlib import Path

import numpy as np

from .. import cuda
from .._dispatch import is_tracing
from .._tensor import Tensor
from ..nn import Module
from ..codegen.phase_clock import FIT_PHASE
from ..runtime.cpu_program import ProgramCompileError
from ..autograd.grad_mode import state as grad_state
from . import pytree
from .debug import debug_level, describe_key, logger, retrace_reason
from .dynamic import SymbolicGroup, candidate_dims, group_size, symbolic_key
from .dynamic_dims import sizes_served_by_dim
from .dump import dump_entry
from .entry import CapturedChanged, Entry, build_entry
from .errors import TraceError
from .fit_checks import FailedRegions, _changed_dims
from .float_args import float_cell
from .int_signature import IntArguments
from .layouts import argument_layout, has_layout, overlaps_itself
from .report import Report
from .symbolic import NotSymbolic
from .torch_api import LIVE, backend_name, check_mode

_POSITIONAL_TENSORS: dict = {}
# NOTE: ``dtype.str`` builds a new string at each read (~0.35 µs, twice per call of a
# two-argument function); a dict lookup by the dtype is ~0.04 µs. Equal dtypes have equal
# ``.str`` (byte order is part of both), so the key a call builds is unchanged.
_DTYPE_STRS: dict = {}


def _dtype_str(dtype) -> str:
    text = _DTYPE_STRS.get(dtype)
    if text is None:
        if len(_DTYPE_STRS) > 256:   # structured dtypes are many: keep the dict small
            _DTYPE_STRS.clear()
        text = _DTYPE_STRS[dtype] = dtype.str
    return text
# ``symbolic``: one line per symbolic group (its dims, guards, sizes served, broken guards)
# and per dimension that could not be symbolic (why)
EARLIER_ENTRIES = 3   # traces kept per signature besides the current one (NOTE (programs
#                       per signature))
CacheInfo = namedtuple("CacheInfo", ["hits", "misses", "entries", "compile_seconds",
                                     "symbolic"])
SIGNATURE_WARN_LIMIT = 8
# tracegrad/, codegen/ and runtime/ (installed as one package, in the repo as three folders)
_PACKAGE_DIRS = tuple({str(Path(__file__).resolve().parents[1]),
                       str(Path(__file__).resolve().parents[2] / "codegen"),
                       str(Path(__file__).resolve().parents[2] / "runtime")})
BACKENDS = ("auto", "llvm", "cuda", "eager")


def user_frame(tb, fn=None) -> str:
    """The innermost traceback frame outside tracegrad: where the user's code stopped
    (else where ``fn`` is defined: a check after the function returned has no frame)."""
    frames = [f for f in traceback.extract_tb(tb) if not f.filename.startswith(_PACKAGE_DIRS)]
    if not frames:
        owner = getattr(fn, "__self__", None)
        if owner is not None and hasattr(owner, "forward"):  # a library module compiled
            return f"{type(owner).__name__}.forward"
        code = getattr(inspect.unwrap(fn), "__code__", None) if fn is not None else None
        if code is not None:
            return f"{code.co_filename}:{code.co_firstlineno} (def {code.co_name})"
        return "<unknown location>"
    f = frames[-1]
    return f"{f.filename}:{f.lineno} ({f.line})"


def _user_stacklevel() -> int:
    """The ``stacklevel`` that attributes a warning issued by the caller to the first frame
    outside tracegrad (the user's call), however many library frames lie between."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIRS):
        frame, level = frame.f_back, level + 1
    return level


class CompiledFunction:
    """What ``tracegrad.compile(fn)`` returns: call it like ``fn``."""

    def __init__(self, fn, backend: str = "auto", fullgraph: bool = False,
                 static_argnames=(), dynamic=None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"compile: unknown backend {backend!r}; expected one of {BACKENDS}")
        if dynamic not in (None, True, False):
            raise ValueError(f"compile: dynamic must be None, True or False, got {dynamic!r}")
        self.dynamic = dynamic
        self._groups: dict = {}        # symbolic key -> SymbolicGroup
        self._not_symbolic: dict = {}  # symbolic key -> why it could not be symbolic
        self._refused_on: dict = {}    # symbolic key -> the entry it was refused on, once
        self._failed_regions: dict = {}  # symbolic key -> FailedRegions, or None: no retry
        # NOTE (dims that change together) in dynamic_dims.py: (structure, dims that
        # changed) -> (the signature, which dims stay specialised and why), latest first
        self._specialised: dict = {}
        self.fn = fn
        self.backend = backend
        self.fullgraph = fullgraph
        self.static_argnames = frozenset((static_argnames,) if isinstance(static_argnames, str)
                                         else static_argnames)
        self._cache: dict = {}
        self._earlier: dict = {}       # key -> earlier entries whose guards failed, newest first
        self._signatures: list = []
        self._warned_signatures = False
        self.hits = self.misses = 0
        self.compile_seconds = 0.0
        try:
            self._sig = inspect.signature(fn)
        except (TypeError, ValueError):
            self._sig = None
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self._ints = IntArguments(dynamic, self)  # NOTE (int arguments)
        self._float_cell = float_cell(self)       # NOTE (float arguments)
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn
        LIVE.add(self)   # torch.compiler.reset() clears every cache

    # ---- public API ----------------------------------------------------------------------
    def cache_info(self) -> CacheInfo:
        lines = [g.describe() + f", sizes {sorted(g.sizes_served)}" + _retraces(g)
                 for g in self._groups.values()]
        lines += [f"not symbolic: {why}" for why in self._not_symbolic.values()]
        lines += [f"specialised: {why}" for _, why in list(self._specialised.values())]
        lines += self._ints.describe()
        return CacheInfo(self.hits, self.misses, len(self._cache), self.compile_seconds,
                         tuple(lines))

    def cache_clear(self) -> None:
        self._cache.clear()
        self._earlier.clear()
        self._groups.clear()
        self._not_symbolic.clear()
        self._refused_on.clear()
        self._failed_regions.clear()
        self._specialised.clear()
        self._signatures.clear()
        self.__dict__.pop("_float_specialised", None)   # NOTE (float values traced)
        self._ints = IntArguments(self.dynamic, self)
        self.hits = self.misses = 0
        self.compile_seconds = 0.0

    def explain(self, *args, **kwargs):
        """Trace and compile for these arguments without running any kernel; returns a
        report whose ``str`` shows the graph, fused groups, loop IR and sources, and whose
        ``kernels`` list each kernel's ``name``, ``ops`` and ``source``."""
        treedef, leaves, key = self._signature(args, kwargs)
        traced_on, rec = self._ints.trace_treedef(key[0])
        try:
            try:
                entry = build_entry(self, traced_on if rec is not None else treedef, leaves,
                                    args, kwargs, compile_code=False)
            except BaseException as e:
                if rec is None or not isinstance(e, Exception):
                    raise
                rec.active = False   # as _build: traced again on the ints' values
                self._ints.failed(key[0], e)
                entry, rec = build_entry(self, treedef, leaves, args, kwargs,
                                         compile_code=False), None
        except TraceError as e:
            if self.fullgraph:
                raise
            # what a call does too: it runs eagerly (dynamo's explain lists the break)
            return Report(self.__name__, key, Entry.eager_fallback(),
                          self._backend_for(leaves), eager_reason=str(e))
        self._ints.finish(entry, rec, key[0])
        symbolic = tuple(g.describe() + f", sizes served {sorted(g.sizes_served)}"
                         + _retraces(g)
                         for skey, g in self._groups.items()
                         if group_size(g, key) and symbolic_key(key, g.dims) == skey)
        symbolic += tuple(f"specialised: {why}" for noted, why in list(self._specialised.values())
                          if _changed_dims(noted, key) is not None)
        symbolic += self._ints.guard_texts(entry)
        return Report(self.__name__, key, entry, self._backend_for(leaves), symbolic)

    def _backend_for(self, leaves) -> str:
        """"auto" follows the inputs' device; explain works for any backend anywhere."""
        if self.backend in ("llvm", "cuda"):
            return self.backend
        on_cuda = any(isinstance(x, Tensor) and x._device.type == "cuda" for x in leaves)
        return "cuda" if on_cuda else "llvm"

    def __call__(self, *args, **kwargs):
        if self.backend == "eager" or is_tracing():
            return self.fn(*args, **kwargs)  # inside another trace: inline
        treedef, leaves, key = self._signature(args, kwargs)
        entry = self._cache.get(key)
        # NOTE: checked on a miss only (~0.6 µs a call): an entry of this key was made by
        # an earlier call that passed it, and a CUDA tensor exists only while CUDA does
        if (entry is None and self._backend_for(leaves) == "cuda"
                and not cuda.is_available()):
            raise RuntimeError(f"compile(backend='cuda'): CUDA is not available "
                               f"({cuda.why_unavailable()}); explain() still renders the CUDA C")
        if (entry is None and self.dynamic is not False
                and self._ints.dims_first(key, self._signatures)):
            treedef, leaves, key = self._signature(args, kwargs)   # its ints as values
            entry = self._cache.get(key)
        # NOTE: after the lookup by the ints' values too: the entry found there was traced
        # with the state of its own last call (x * cfg["eps"] replayed a stale eps)
        guard_failed = entry is not None and bool(entry.guards) and not entry.guards_hold()
        if guard_failed:
            # what the trace read outside the arguments changed (a .grad cleared, optimizer
            # state created, param_groups edited, requires_grad toggled): an earlier trace
            # of this signature whose guards hold, else trace again
            broken, entry = entry, self._earlier_entry(key)
            if entry is None and debug_level():
                logger.debug("%s: a guard of the traced call failed (%s), retracing",
                             self.__name__, broken.broken_guard())
        if entry is None and self._groups and key[0] not in self._ints.keys_with_symbols:
            entry = self._symbolic_instance(key, treedef, leaves)
        if entry is None:
            if not self._fits_signature(args, kwargs):
                # Python's own TypeError ("f() missing 1 required positional argument"),
                # at once: a trace would fail on it, warn, and only then raise
                return self.fn(*args, **kwargs)
            self.misses += 1
            if debug_level():
                logger.debug("%s: cache miss, tracing %s (%s)", self.__name__,
                             describe_key(key), "a guard failed" if guard_failed
                             else retrace_reason(key, self._signatures))
            if not guard_failed:   # the same signature again is no new one
                self._note_signature(key)
            start = time.perf_counter()
            entry = self._build(treedef, leaves, args, kwargs, key[0])
            if (self.dynamic is not False and not entry.fallback and not has_layout(key)
                    and key[0] not in self._ints.keys_with_symbols):
                fit_start = time.perf_counter()
                self._try_symbolic(key, treedef, leaves, entry)
                # probes traced and planned at other sizes, guards, the group's drivers
                entry.phase_seconds[FIT_PHASE] = time.perf_counter() - fit_start
            seconds = time.perf_counter() - start
            self.compile_seconds += seconds
            entry.compile_seconds = seconds
            if guard_failed:
                self._keep_earlier(key, self._cache[key])
            self._cache[key] = entry
            if debug_level():
                logger.debug("%s: %s in %.1f ms", self.__name__, entry.summary(), seconds * 1e3)
            dump_entry(self, key, entry)
        else:
            self.hits += 1
            if debug_level():
                logger.debug("%s: cache hit %s", self.__name__, describe_key(key))
        if entry.fallback or (entry.written_args and _written_arg_aliased(entry, leaves)):
            warning = getattr(entry, "failure_warning", None)
            result = self.fn(*args, **kwargs)
            if warning is not None:
                entry.failure_warning = None
                warnings.warn(warning, RuntimeWarning, stacklevel=2)
            return result
        try:
            if debug_level() > 1 or entry.dump_stats is not None:
                start = time.perf_counter()
                result = entry.run(leaves)
                entry.record_call(time.perf_counter() - start, self.__name__)
                return result
            return entry.run(leaves)
        except CapturedChanged as changed:
            # nothing ran yet (the program checks its inputs first): forget every trace
            # of this signature read from the old tensor, and trace again
            if getattr(self, "_retracing", False):
                raise RuntimeError(f"{self.__name__}: {changed} and the new trace does "
                                   f"not read it at its new size") from None
            if debug_level():
                logger.debug("%s: %s, retracing", self.__name__, changed)
            self._cache.pop(key, None)
            self._earlier.pop(key, None)
            self._retracing = True
            try:
                return self(*args, **kwargs)
            finally:
                self._retracing = False

    # NOTE (programs per signature): an option switched back and forth by hand between
    # calls (weight_decay 0 <-> 0.1) fails the guards of one trace, then of the other;
    # keeping the last few traces of a signature (each with its own guards) replays them
    # instead of tracing again at every switch.
    def _keep_earlier(self, key, entry) -> None:
        earlier = self._earlier.setdefault(key, [])
        earlier.insert(0, entry)
        del earlier[EARLIER_ENTRIES:]

    def _earlier_entry(self, key):
        """An earlier trace of ``key`` whose guards hold, made the current one (the
        current one becomes the newest earlier one), or None."""
        earlier = self._earlier.get(key, ())
        for k, entry in enumerate(earlier):
            if entry.guards_hold():
                earlier[k] = self._cache[key]
                earlier.insert(0, earlier.pop(k))
                self._cache[key] = entry
                return entry
        return None

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return functools.partial(self, obj)

    def __repr__(self) -> str:
        return f"<compiled {self.__name__} backend={self.backend}>"

    # ---- symbolic sizes (dynamic.py, symbolic.py) ------------------------------------------
    def _symbolic_instance(self, key, treedef, leaves):
        for skey, group in list(self._groups.items()):   # (another thread may add one)
            n = group_size(group, key)
            if not n or symbolic_key(key, group.dims) != skey:
                continue
            start = time.perf_counter()
            served = group.served_without_retrace
            try:
                entry = group.instance(self, treedef, leaves, n)
            except AssertionError:
                raise               # dynamic.CHECK_INSTANCES: the fitted program was wrong
            except Exception as e:  # noqa: BLE001 - a failed reuse specialises, as before
                group.note_retrace(f"s0={n}: {type(e).__name__}: {e}")
                entry = None
            if entry is None:
                if debug_level():
                    logger.debug("%s: guard broken (%s); specialising", self.__name__,
                                 group.guard_failures[-1])
                return None
            self.compile_seconds += time.perf_counter() - start  # a hit: counted by __call__
            self._cache[key] = entry
            group.keep(key, self._cache)
            if debug_level():
                how = ("its guards hold, no trace" if group.served_without_retrace > served
                       else "traced again")
                logger.debug("%s: symbolic program serves %s (s0=%d; %s)", self.__name__,
                             describe_key(key), n, how)
            return entry
        return None

    def _try_symbolic(self, key, treedef, leaves, entry) -> None:
        candidates, note = candidate_dims(self.dynamic, key, leaves, self._signatures[:-1],
                                          sizes_served_by_dim(self._groups, key))
        if note is not None:
            self._note_specialised(key, note)
        for dims, n in candidates:
            skey = symbolic_key(key, dims)
            if skey in self._groups:   # a trace its fits do not serve: fit it too
                self._groups[skey].add_fit(self, n, entry, treedef, leaves)
                return
            retried = False
            if skey in self._not_symbolic:
                # NOTE: refused on a trace whose guards broke since (an optimizer's first
                # step, which made its state: SGD's momentum buffer is a clone of the
                # first gradient), the refusal may not hold for the steps after it: with
                # dynamic=True every later size compiled again. One more fit, then never.
                refused_on = self._refused_on.pop(skey, None)
                retried = refused_on is not None and not refused_on.guards_hold()
                failed = self._failed_regions.get(skey)
                if not retried and (failed is None or failed.holds(n)):
                    continue   # (a size outside the region where the fit failed tries again)
            try:
                self._groups[skey] = group = SymbolicGroup(self, dims, n, entry, treedef,
                                                           leaves)
            except Exception as e:  # noqa: BLE001 - not symbolic: stay specialised
                why = str(e) if isinstance(e, NotSymbolic) else f"{type(e).__name__}: {e}"
                dims_text = ", ".join(f"arg {i} dim {d}" for i, d in sorted(dims))
                self._not_symbolic[skey] = f"{dims_text}: {why}"
                if entry.guards and not retried:
                    self._refused_on[skey] = entry
                # NOTE (a guard near the call's size): sizes outside a region bounded by
                # guards may try again (None: none may)
                regions = self._failed_regions.get(skey) or FailedRegions()
                self._failed_regions[skey] = regions if regions.add(e) else None
                if debug_level():
                    logger.debug("%s: %s stays specialised (%s)", self.__name__, dims_text, why)
                continue
            self._not_symbolic.pop(skey, None)
            if debug_level():
                logger.debug("%s: symbolic %s", self.__name__, group.describe())
            return

    def _note_specialised(self, key, note: str) -> None:
        """Keep ``note`` (NOTE (dims that change together)) for cache_info, explain and the
        recompile warning, one per argument structure and set of dims that changed."""
        previous = self._signatures[:-1]
        changed = next((c for old in reversed(previous)
                        if (c := _changed_dims(old, key))), set())
        noted = (key[0], tuple(p[1:] if isinstance(p, tuple) else p for p in key[1]),
                 frozenset(changed))
        self._specialised.pop(noted, None)
        self._specialised[noted] = (key, note)
        if debug_level():
            logger.debug("%s: %s", self.__name__, note)

    # ---- signatures --------------------------------------------------------------------
    def _signature(self, args, kwargs):
        if self.static_argnames and self._sig is not None:
            bound = self._sig.bind(*args, **kwargs)
            for k in self.static_argnames:
                if k in bound.arguments:
                    bound.arguments[k] = pytree.Static(bound.arguments[k])
            args, kwargs = bound.args, bound.kwargs
        if not kwargs:
            for a in args:
                if type(a) is not Tensor:
                    break
            else:
                # The common call (positional tensors only) skips the general flatten.
                treedef = _POSITIONAL_TENSORS.get(len(args))
                if treedef is None:
                    treedef = _POSITIONAL_TENSORS[len(args)] = pytree.flatten(
                        (tuple(args), {}))[0]
                # NOTE: the layout read inline, one flags read for a C-contiguous array
                # without size-1 or empty dims (NOTE (layout signatures)); device arrays
                # (no flags) take the except
                try:
                    parts = tuple([(s := (d := a._data).shape, _dtype_str(d.dtype),
                                    a._device, bool(a._requires_grad), None
                                    if d.flags.c_contiguous and 1 not in s and d.size
                                    else argument_layout(d)) for a in args])
                except AttributeError:
                    parts = tuple([((d := a._data).shape, _dtype_str(d.dtype), a._device,
                                    bool(a._requires_grad), argument_layout(d)) for a in args])
                return treedef, list(args), (treedef, parts, grad_state.enabled)
        treedef, leaves = pytree.flatten((tuple(args), dict(kwargs)))
        key_treedef = self._ints.key_treedef(treedef)   # NOTE (int arguments)
        parts = []
        for leaf in leaves:
            if isinstance(leaf, Tensor):
                data = leaf._data
                parts.append((data.shape, _dtype_str(data.dtype), leaf._device,
                              bool(leaf._requires_grad), argument_layout(data)))
            else:
                parts.append("float")
                self._float_cell.values = leaves   # NOTE (float arguments): guards read it
        key = (key_treedef, tuple(parts), grad_state.enabled)
        return treedef, leaves, key

    def _fits_signature(self, args, kwargs) -> bool:
        if self._sig is None:
            return True
        try:
            self._sig.bind(*args, **kwargs)
        except TypeError:
            return False
        return True

    def _note_signature(self, key) -> None:
        self._signatures.append(key)
        if len(self._signatures) > SIGNATURE_WARN_LIMIT and not self._warned_signatures:
            self._warned_signatures = True
            warnings.warn(f"compile: {self.__name__} has been compiled for "
                          f"{len(self._signatures)} signatures; {_what_changes(self._signatures)} "
                          f"keeps changing. Each new signature costs a trace and a compile."
                          + "".join(f" Specialised: {why}."
                                    for _, why in list(self._specialised.values())[-2:]),
                          RuntimeWarning, stacklevel=3)

    # ---- building ----------------------------------------------------------------------
    def _build(self, treedef, leaves, args, kwargs, key_treedef=None) -> Entry:
        # NOTE (int arguments): the symbolic ints of the key are traced as SymArgs
        traced_on, rec = self._ints.trace_treedef(key_treedef)
        if rec is not None:
            try:
                entry = build_entry(self, traced_on, leaves, args, kwargs, compile_code=True)
            except BaseException as e:
                rec.active = False
                if not isinstance(e, Exception):
                    raise   # (KeyboardInterrupt)
                self._ints.failed(key_treedef, e)   # traced again on the values, below
            else:
                self._ints.finish(entry, rec, key_treedef)
                return entry
        entry = self._build_on(treedef, leaves, args, kwargs)
        if rec is not None:   # every symbolic int of the key at its value
            self._ints.specialise_all(entry, key_treedef)
        return entry

    def _build_on(self, treedef, leaves, args, kwargs) -> Entry:
        try:
            return build_entry(self, treedef, leaves, args, kwargs, compile_code=True)
        except TraceError as e:
            where = user_frame(e.__traceback__, self.fn)
            message = (f"compile: {self.__name__} cannot be traced at {where}: {e}. "
                       f"Running it eagerly for this signature.")
            if self.fullgraph:
                raise TraceError(message.replace(" Running it eagerly for this signature.",
                                                 " (fullgraph=True)")) from None
            warnings.warn(message, RuntimeWarning, stacklevel=_user_stacklevel())
            return Entry.eager_fallback()
        except Exception as e:  # noqa: BLE001 - compiling must never change the answer
            if isinstance(e, ProgramCompileError):
                warnings.warn(f"compile: code generation for {self.__name__} failed ({e}); "
                              f"running eagerly", RuntimeWarning,
                              stacklevel=_user_stacklevel())
                return Entry.eager_fallback()
            # A genuine error in the function (bad shapes...) or a tracing limitation:
            # running eagerly either raises the user's real error or works.
            if self.fullgraph:
                raise
            entry = Entry.eager_fallback()
            # warned once eager has run: when eager raises too, that error is the user's
            # (a batch of 1 into BatchNorm), as PyTorch shows it, with no compile noise
            entry.failure_warning = (f"compile: tracing {self.__name__} failed at "
                                     f"{user_frame(e.__traceback__, self.fn)} "
                                     f"({type(e).__name__}: {e}); running it eagerly")
            return entry


def _retraces(group) -> str:
    """Why sizes were traced again: not served (``retraced``), or a broken guard whose
    trace the fitted program still serves (``traced again``)."""
    return ("".join(f"; retraced {f}" for f in group.guard_failures)
            + "".join(f"; traced again {f}, served" for f in group.traced_again))


def _what_changes(keys) -> str:
    first = keys[0]
    changing = []
    if any(k[0] != first[0] for k in keys):
        changing.append("the argument structure or a non-tensor argument's value")
    parts = first[1]
    for i in range(len(parts)):
        values = {k[1][i] if i < len(k[1]) else None for k in keys}
        if len(values) > 1:
            sample = parts[i]
            if isinstance(sample, tuple):
                fields = ["shape", "dtype", "device", "requires_grad", "layout"]
                diff = [f for j, f in enumerate(fields)
                        if len({(k[1][i][j] if i < len(k[1]) else None) for k in keys}) > 1]
                changing.append(f"tensor argument {i}'s {'/'.join(diff)}")
    if any(k[2] != first[2] for k in keys):
        changing.append("grad mode")
    return ", ".join(changing) or "the signature"


def compile(fn=None, *, backend: str = "auto", fullgraph: bool = False, static_argnames=(),
            dynamic=None, mode=None, options=None, disable: bool = False):
    """Compile ``fn`` (a function or an ``nn.Module``) into fused kernels, per signature.

    PyTorch's arguments: ``mode`` is checked and compiles the same program (tracegrad has
    one way to compile), ``options`` (Inductor's settings) are accepted and have no
    effect, ``backend="inductor"``/``"aot_eager"`` mean ``"auto"``/``"eager"``, and
    ``disable=True`` returns ``fn`` itself.

    >>> import tracegrad as torch
    >>> @torch.compile
    ... def gelu(x):
    ...     return 0.5 * x * (1 + torch.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))
    >>> y = gelu(torch.randn(1000))
    >>> gelu.cache_info().misses
    1
    """
    check_mode(mode, options)
    backend = backend_name(backend, BACKENDS)
    if fn is None:
        return lambda f: compile(f, backend=backend, fullgraph=fullgraph,
                                 static_argnames=static_argnames, dynamic=dynamic,
                                 mode=mode, options=options, disable=disable)
    if disable:
        return fn
    if _is_module(fn):
        from .module import OptimizedModule  # module.py builds on CompiledFunction
        return OptimizedModule(fn, backend=backend, fullgraph=fullgraph, dynamic=dynamic)
    return CompiledFunction(fn, backend=backend, fullgraph=fullgraph,
                            static_argnames=static_argnames, dynamic=dynamic)


def _is_module(obj) -> bool:
    return isinstance(obj, Module)


def _shares_memory(a, b) -> bool:
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return np.may_share_memory(a, b)   # bounds only: may say yes where nothing overlaps
    return getattr(a, "block", a) is getattr(b, "block", b)   # device arrays: one block


def _written_arg_aliased(entry, leaves) -> bool:
    """An argument the function writes in place shares memory with another argument
    (``f(x, x)``, ``f(x[1:], x)``): eagerly the other one sees the write, while the
    program reads each argument as it was at the call, so such a call runs eagerly; so
    does one whose written argument holds an element twice (NOTE (layout signatures))."""
    for p in entry.written_args:
        written = leaves[p]._data
        if overlaps_itself(written):
            return True
        for q, other in enumerate(leaves):
            if q != p and isinstance(other, Tensor) and _shares_memory(written, other._data):
                return True
    return False
