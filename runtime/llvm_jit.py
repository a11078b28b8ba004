"""LLVM IR text -> native callables, through llvmlite's MCJIT.

Kernel ABI (shared with the LLVM renderer; see DESIGN.md "Runtime"):

    void @name(i64 %start, i64 %end, ptr noalias %buf0, ..., double %s0, ...)

computes iterations ``start <= i < end`` of the kernel's outermost loop, so the
runtime may split ``[0, outer)`` across threads (``runtime.cpu_threads``).

Example:
    >>> src = '''define void @fill(i64 %s, i64 %e, ptr noalias %out, double %v) {
    ... entry:
    ...   br label %loop
    ... loop:
    ...   %i = phi i64 [%s, %entry], [%i1, %loop]
    ...   %p = getelementptr double, ptr %out, i64 %i
    ...   store double %v, ptr %p
    ...   %i1 = add i64 %i, 1
    ...   %c = icmp slt i64 %i1, %e
    ...   br i1 %c, label %loop, label %done
    ... done:
    ...   ret void
    ... }'''
    >>> import numpy as np
    >>> out = np.zeros(4)
    >>> compile_llvm(src, ["fill"]).functions["fill"](4, [out], [2.5])
    >>> out.tolist()
    [2.5, 2.5, 2.5, 2.5]
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import re
import threading
import time
from typing import Sequence

import llvmlite
import llvmlite.binding as llvm
import numpy as np

from ..codegen import phase_clock
from ..codegen.phase_clock import phase
from . import cpu_threads, disk_cache, llvm_shards
from .llvm_pipeline import PIPELINE, PIPELINE_O0, kernel_codegen, speed_level
from .llvm_pipeline import optimize as _optimize
from .cpu_threads import PARALLEL_MIN_WORK, n_threads, set_n_threads
from .disk_cache import Signatures

__all__ = ["CpuKernel", "JitModule", "compile_llvm", "compile_llvm_many", "cache_key", "clear_memory_cache",
           "host_cpu", "host_has_feature", "n_threads", "set_n_threads", "PARALLEL_MIN_WORK"]

_init_lock = threading.Lock()
_initialised = False
_memory_cache: dict[str, JitModule] = {}
_memory_lock = threading.Lock()


def _ensure_init() -> None:
    # NOTE: llvmlite 0.50's binding.initialize() raises; only the native target is needed.
    global _initialised
    with _init_lock:
        if not _initialised:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            _initialised = True


@functools.lru_cache(maxsize=1)
def host_cpu() -> tuple[str, str]:
    """(cpu name, feature string) of the machine the JIT targets (asked once: LLVM's
    query costs ~0.5 ms, and every kernel's cache key needs it)."""
    _ensure_init()
    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


def host_has_feature(name: str) -> bool:
    """True when the host CPU has e.g. ``"avx512f"`` (as LLVM names it)."""
    return f"+{name}" in host_cpu()[1].split(",")


def _target_machine(opt_level: int = 3) -> llvm.TargetMachine:
    # One per engine: MCJIT takes ownership of the target machine it is given.
    cpu, features = host_cpu()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=cpu, features=features, opt=opt_level, jit=True)


@functools.lru_cache(maxsize=None)
def _shared_target_machine(opt_level: int, shard: int = 0) -> llvm.TargetMachine:
    """The target machine that optimises modules and emits their objects (no engine owns
    it; compiles are serialised by ``_build_lock``); shard k > 0 of a parallel batch
    has one of its own (NOTE (parallel batches))."""
    return _target_machine(opt_level)


# NOTE (one engine): every module's object code is linked into one shared MCJIT engine
# instead of an engine of its own. An engine per module cost ~1.7 ms of CPU to create and
# finalise (0.14 ms per object linked into a shared one; 36 cached CNN kernels) and a
# target machine each; codegen now goes through one target machine's ``emit_object``,
# which makes the object the disk cache stores anyway. Objects in one engine share one
# symbol namespace, so each module's functions are linked under ``_symbol(key, name)``,
# unique per cache key (the same key means the same machine code). A fresh engine starts
# every ``_ENGINE_OBJECTS`` objects and at ``clear_memory_cache``, so code whose kernels are
# gone can be freed with its engine.
_ENGINE_OBJECTS = 512
_engine: "_Engine | None" = None
_build_lock = threading.RLock()


class _Engine:
    """A shared MCJIT engine and how many objects it holds."""

    def __init__(self) -> None:
        self.engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), _target_machine())
        self.objects = 0

    def address(self, key: str, name: str) -> int:
        return self.engine.get_function_address(_symbol(key, name))


def _symbol(key: str, name: str) -> str:
    return f"{name}.{key[:20]}"


def _make_unique(mod: llvm.ModuleRef, key: str) -> None:
    """Rename what ``mod`` defines and exports to ``_symbol(key, name)`` (NOTE (one
    engine)); its own uses follow the new names."""
    exported = [v for v in [*mod.functions, *mod.global_variables]
                if not v.is_declaration and v.linkage == llvm.Linkage.external]
    for value in exported:
        value.name = _symbol(key, value.name)


def _link(obj: bytes) -> _Engine:
    """Link ``obj`` into the current shared engine.

    A key linked twice (two threads built it, or a disk entry failed a later check and
    was rebuilt) defines its symbols twice: lookups find the newest, and one key's objects
    hold the same code, so that is harmless. An object that fails to link may leave the
    engine half-loaded: later objects go to a fresh one."""
    global _engine
    with _build_lock:
        if _engine is None or _engine.objects >= _ENGINE_OBJECTS:
            _engine = _Engine()
        engine = _engine
        try:
            engine.engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
            engine.engine.finalize_object()
        except RuntimeError:
            _engine = None
            raise
        engine.objects += 1
        return engine


# How an object names its functions (NOTE (one engine)): old objects must miss.
SYMBOLS = "name.key20"
OPT_LEVELS = (0, 3)


def cache_key(source: str, opt_level: int = 3) -> str:
    """Hash of everything that decides the machine code made from ``source``."""
    if opt_level not in OPT_LEVELS:
        raise ValueError(f"compile_llvm: opt_level must be one of {OPT_LEVELS}, got {opt_level!r}")
    cpu, features = host_cpu()
    h = hashlib.sha256()
    for part in (source, cpu, features, llvmlite.__version__, str(disk_cache.FORMAT_VERSION),
                 PIPELINE if opt_level == 3 else PIPELINE_O0, SYMBOLS):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


class CpuKernel:
    """A compiled kernel with the ABI above, callable from Python.

    ``kernel(outer, buffers, scalars)`` runs iterations ``[0, outer)``; buffers are
    NumPy arrays or raw integer addresses (faster: no attribute lookup per call).
    """

    __slots__ = ("address", "n_buffers", "n_scalars", "name", "cfunc", "_owner")

    def __init__(self, fn_address: int, n_buffers: int, n_scalars: int, owner: object = None,
                 name: str = "") -> None:
        if not fn_address:
            raise RuntimeError(f"kernel {name!r} has address 0")
        self.address = fn_address
        self.n_buffers = n_buffers
        self.n_scalars = n_scalars
        self.name = name
        # CFUNCTYPE (not PYFUNCTYPE) releases the GIL during the call.
        argtypes: list[type] = [ctypes.c_int64, ctypes.c_int64]
        argtypes += [ctypes.c_void_p] * n_buffers + [ctypes.c_double] * n_scalars
        self.cfunc = ctypes.CFUNCTYPE(None, *argtypes)(fn_address)
        self._owner = owner  # keeps the execution engine (the code) alive

    def __call__(self, outer: int, buffers: Sequence[np.ndarray | int],
                 scalars: Sequence[float] = (), parallel: bool | None = None,
                 work: int | None = None) -> None:
        if len(buffers) != self.n_buffers or len(scalars) != self.n_scalars:
            raise TypeError(f"kernel {self.name!r} takes {self.n_buffers} buffers and "
                            f"{self.n_scalars} scalars, got {len(buffers)} and {len(scalars)}")
        args: list[int | float] = [b if isinstance(b, int) else b.ctypes.data for b in buffers]
        args += scalars
        ranges = None
        if parallel is None:
            ranges = cpu_threads.chunks(outer, work)
        elif parallel:
            ranges = cpu_threads.chunks(outer, cpu_threads.PARALLEL_MIN_WORK)
        if ranges is None:
            self.cfunc(0, outer, *args)
        else:
            cpu_threads.run_chunks(self.cfunc, ranges, args)

    def __repr__(self) -> str:
        return f"CpuKernel({self.name!r}, buffers={self.n_buffers}, scalars={self.n_scalars})"


class JitModule:
    """An LLVM module turned into machine code; ``functions[name]`` is a CpuKernel."""

    def __init__(self, engine: "_Engine", functions: dict[str, CpuKernel],
                 signatures: dict[str, tuple[int, int]], optimized_ir: str,
                 compile_seconds: float, from_disk_cache: bool, key: str) -> None:
        self.engine = engine          # the engine holding the code (kept alive by kernels)
        self.functions = functions
        self.signatures = signatures  # name -> (n_buffers, n_scalars)
        self.optimized_ir = optimized_ir
        self.compile_seconds = compile_seconds
        self.from_disk_cache = from_disk_cache
        self.key = key
        self._assembly: str | None = None

    def kernel(self, name: str) -> CpuKernel:
        """The CpuKernel of function ``name`` (made on first use)."""
        if name not in self.functions:
            if name not in self.signatures:
                raise KeyError(f"no function {name!r} with the kernel ABI in the module")
            self.functions[name] = CpuKernel(self.engine.address(self.key, name),
                                             *self.signatures[name], owner=self, name=name)
        return self.functions[name]

    @property
    def assembly(self) -> str:
        """Host assembly; made on first use (a second codegen costs a few ms), then cached."""
        if self._assembly is None:
            self._assembly = disk_cache.load_text(self.key, "s")
        if self._assembly is None:
            mod = llvm.parse_assembly(self.optimized_ir)
            with kernel_codegen():   # the code generator as it made the object
                self._assembly = _target_machine().emit_assembly(mod)
            disk_cache.store_text(self.key, "s", self._assembly)
        return self._assembly


def _signature(mod: llvm.ModuleRef, name: str) -> tuple[int, int]:
    fn = mod.get_function(name)
    kinds = [str(a.type) for a in fn.arguments]
    if kinds[:2] != ["i64", "i64"]:
        raise TypeError(f"kernel {name!r} must start with (i64 start, i64 end), got {kinds}")
    n_buf = sum(k == "ptr" for k in kinds[2:])
    n_sc = sum(k == "double" for k in kinds[2:])
    if n_buf + n_sc != len(kinds) - 2 or kinds[2:] != ["ptr"] * n_buf + ["double"] * n_sc:
        raise TypeError(f"kernel {name!r} must take ptr... then double..., got {kinds}")
    return n_buf, n_sc


def _signatures(mod: llvm.ModuleRef) -> Signatures:
    """name -> (n_buffers, n_scalars) of every function of ``mod`` with the kernel ABI."""
    sigs = {}
    for fn in mod.functions:
        if not fn.is_declaration and fn.linkage == llvm.Linkage.external:
            try:
                sigs[fn.name] = _signature(mod, fn.name)
            except TypeError:
                pass  # a helper outside the kernel ABI: not callable from Python
    return sigs


# NOTE (signatures from text): reading a module's signatures through llvmlite costs
# ~0.35-2 ms per kernel (a parse, then several FFI calls per argument), paid again on
# every warm load. The renderers write each ``define`` on one line in a plain form; when
# every ``define`` of a source matches the strict pattern below, the signatures are read
# from the text. Anything else (a linkage keyword, a return value, an attribute with
# parentheses) is read through LLVM as before. Tests check both ways agree.
_DEFINE = re.compile(r'define void @("?)([A-Za-z_$.][\w$.]*)\1\(([^()]*)\)[^()]*$')
_ARGUMENT = re.compile(r'(i64|ptr|double)(?: noalias)? %"?[\w.]+"?')


def _text_signatures(source: str) -> Signatures | None:
    """``_signatures`` of ``source`` read from its text, or None where unsure."""
    sigs: Signatures = {}
    for line in source.splitlines():
        if not line.startswith("define") or line.startswith("define weak_odr"):
            continue   # not a kernel: a helper (codegen.llvm_vector_calls)
        m = _DEFINE.fullmatch(line.rstrip(" {"))
        if m is None:
            return None
        kinds = []
        for arg in m.group(3).split(","):
            a = _ARGUMENT.fullmatch(arg.strip())
            if a is None:
                return None
            kinds.append(a.group(1))
        n_buf = kinds[2:].count("ptr")
        if kinds[:2] == ["i64", "i64"] and kinds[2:] == ["ptr"] * n_buf + ["double"] * (
                len(kinds) - 2 - n_buf):
            sigs[m.group(2)] = (n_buf, len(kinds) - 2 - n_buf)
    return sigs


def _source_signatures(source: str, mod: llvm.ModuleRef | None = None) -> Signatures:
    """Signatures of every kernel-ABI function ``source`` defines (NOTE (signatures
    from text)); ``mod``: the source already parsed, when the text cannot say."""
    sigs = _text_signatures(source)
    if sigs is None:
        sigs = _signatures(mod if mod is not None else llvm.parse_assembly(source))
    return sigs


def compile_llvm(source: str, names: list[str], opt_level: int = 3) -> JitModule:
    """Compile LLVM IR text; return a JitModule exposing ``names`` as CpuKernels.

    Memory-cached per process and disk-cached (see ``disk_cache``) by a hash of the
    source, host target and pipeline, so an identical source never meets LLVM twice.
    ``opt_level`` 3 optimises for speed (kernels); 0 compiles fast, for glue code that
    only calls other functions (NOTE (glue at O0)).
    """
    _ensure_init()
    key = cache_key(source, opt_level)
    with _memory_lock:
        cm = _memory_cache.get(key)
    if cm is None:
        with _build_lock:   # a second thread asking for the same key waits, then finds it
            with _memory_lock:
                cm = _memory_cache.get(key)
            if cm is None:
                cm = _build(source, key, opt_level)
                with _memory_lock:
                    cm = _memory_cache.setdefault(key, cm)
    for name in names:
        cm.kernel(name)
    return cm


def compile_llvm_many(sources: Sequence[str], name: str, opt_level: int = 3) -> list[JitModule]:
    """``compile_llvm(source, [name], opt_level)`` of each source, with the sources found
    neither in memory nor on disk optimised and compiled as one module (NOTE (one module
    per batch)), a big batch at O3 as two on two threads (NOTE (parallel batches)). Raises
    like ``compile_llvm``; the caller may retry one by one to learn which source failed."""
    _ensure_init()
    keys = [cache_key(source, opt_level) for source in sources]
    with _build_lock:
        found: dict[str, JitModule] = {}
        pending: dict[str, str] = {}   # key -> source, in first-seen order
        for source, key in zip(sources, keys):
            if key in found or key in pending:
                continue
            with _memory_lock:
                cm = _memory_cache.get(key)
            if cm is None:
                cm = _from_disk(source, key)
            if cm is None:
                pending[key] = source
            else:
                found[key] = cm
        if len(pending) == 1:
            (key, source), = pending.items()
            found[key] = _build(source, key, opt_level)
        elif pending:
            found.update(_build_batch(pending, opt_level))
        with _memory_lock:
            for key in keys:
                found[key] = _memory_cache.setdefault(key, found[key])
    modules = [found[key] for key in keys]
    for cm in modules:
        cm.kernel(name)
    return modules


# NOTE (one module per batch): the kernels of a program that miss both caches are linked
# into one LLVM module, optimised by one pass-manager run and emitted as one object.
# LLVM's cost per module is mostly fixed (hundreds of passes set up and run over a
# ~75-line kernel): the CNN step's 36 kernels took 591-651 ms of CPU one by one and
# 455-535 ms as one module. Each function is still optimised on its own (no kernel calls
# another), so the code is the same. The disk entry is the batch's, keyed by its members'
# keys: a later process that compiles the same program misses the same kernels and finds
# it (the plan cache makes that the rule); a different mix compiles afresh.
def _batch_key(keys: Sequence[str]) -> str:
    return hashlib.sha256(("batch\0" + "\0".join(keys)).encode()).hexdigest()


def _build_batch(pending: dict[str, str], opt_level: int = 3) -> dict[str, JitModule]:
    """Compile ``pending`` (key -> source) as one module, or at O3 as shards on threads of
    their own (NOTE (parallel batches) in runtime.llvm_shards), each with its own disk
    entry. An O0 batch (drivers, NOTE (glue at O0)) is all fixed cost: one module."""
    t0 = time.perf_counter()
    got: dict[str, JitModule] = {}
    missing = []   # (batch key, shard, signatures)
    for shard in llvm_shards.split(pending) if opt_level else [pending]:
        bkey, sigs = _batch_key(list(shard)), [_source_signatures(s) for s in shard.values()]
        start = time.perf_counter()
        loaded = _load_batch(bkey, list(shard), sigs)
        if loaded is not None:
            phase_clock.add("load", time.perf_counter() - start)
            got.update(loaded)
        else:
            missing.append((bkey, shard, sigs))
    # two shards at once each run in a context and target machine of their own
    with kernel_codegen():   # around both threads (NOTE (no LSR) in runtime.llvm_pipeline)
        built = llvm_shards.run_all(lambda k, job: _batch_from_sources(
            *job[1:], _shared_target_machine(opt_level, k), len(missing) > 1, opt_level), missing)
    for (bkey, shard, sigs), (obj, texts, seconds) in zip(missing, built):
        for name, s in seconds.items():   # every shard's own seconds (two at once: summed)
            phase_clock.add(name, s)
        with phase("codegen"):
            engine = _link(obj)
            got.update({key: _module(engine, key, sig, text, False)
                        for key, sig, text in zip(shard, sigs, texts)})
        disk_cache.store_batch(bkey, obj, list(shard), texts, sigs)
    seconds = (time.perf_counter() - t0) / len(pending)
    for cm in got.values():
        cm.compile_seconds = seconds   # the batch's time, shared out
    return got


def _load_batch(bkey: str, keys: list[str], sigs: list[Signatures]) -> dict[str, JitModule] | None:
    entry = disk_cache.load_batch(bkey)
    if entry is None:
        return None
    obj, stored_keys, texts, stored_sigs = entry
    try:
        if stored_keys != keys or stored_sigs != sigs:
            raise RuntimeError("the batch entry holds other kernels or signatures")
        engine = _link(obj)
        return {key: _module(engine, key, sig, text, True)
                for key, sig, text in zip(keys, sigs, texts)}
    except RuntimeError:  # does not link, a kernel's address is 0, another batch
        disk_cache.remove(bkey)
        return None


def _batch_from_sources(pending: dict[str, str], sigs: list[Signatures], tm: llvm.TargetMachine,
                        unlocked: bool, opt_level: int) -> tuple[bytes, list[str], dict[str, float]]:
    """(object, each member's optimized IR, seconds per phase) of ``pending`` linked into
    one module, parsed into an LLVM context of its own when ``unlocked`` (a thread that
    may run beside another: NOTE (parallel batches))."""
    start = time.perf_counter()
    context = llvm.create_context() if unlocked else None
    merged = mod = None
    groups: dict[int, llvm.ModuleRef] = {}   # speed level -> its members' module
    try:
        for (key, source), sig in zip(pending.items(), sigs):
            mod = llvm.parse_assembly(source, context)
            mod.verify()
            _make_unique(mod, key)   # before linking (NOTE (one engine))
            level = speed_level([source])
            if level in groups:
                groups[level].link_in(mod)
            else:
                groups[level] = mod
        # NOTE (a pipeline per level): the members of each speed level (vector, light,
        # full: NOTE (short pipeline), NOTE (light pipeline)) run their own pipeline, and
        # the modules link after: one pipeline over all would run the longest over every
        # member, so a batch's one masked kernel put its light ones through O3 too
        for level, group in groups.items():
            group.triple = tm.triple
            group.data_layout = str(tm.target_data)
            if opt_level:
                _optimize(group, tm, unlocked, level)
        merged = groups.pop(max(groups))
        for level in sorted(groups):
            merged.link_in(groups.pop(level))
        # each member's text parses on its own (JitModule.assembly): the module's header,
        # declarations, attribute groups and metadata around the member's functions
        lines = str(merged).splitlines()
        head = [line for line in lines if line.startswith(("target ", "source_filename"))]
        # declarations, and helpers (codegen.llvm_vector_calls: weak_odr) the kernels call
        head += [str(f) for f in merged.functions
                 if f.is_declaration or f.linkage == llvm.Linkage.weak_odr]
        tail = [line for line in lines if line.startswith(("attributes ", "!"))]
        texts = ["\n".join(head + [str(merged.get_function(_symbol(key, name))) for name in sig]
                           + tail)
                 for key, sig in zip(pending, sigs)]
        optimized = time.perf_counter()
        obj = _emit(tm, merged, unlocked)
    finally:   # NOTE: a context frees its modules: each must go first, even on an error
        for m in (mod, merged, *groups.values()):
            if m is not None:
                m.close()   # (a module linked into another is closed already)
        if context is not None:
            context.close()
    return obj, texts, {"llvm opt": optimized - start, "codegen": time.perf_counter() - optimized}


def _module(engine: "_Engine", key: str, sigs: Signatures, optimized_ir: str,
            from_disk: bool) -> JitModule:
    cm = JitModule(engine, {}, sigs, optimized_ir, 0.0, from_disk, key)
    for fname in sigs:
        cm.kernel(fname)   # checks every address (0 raises)
    return cm


def _build(source: str, key: str, opt_level: int) -> JitModule:
    t0 = time.perf_counter()
    cm = _from_disk(source, key)
    if cm is None:
        cm, obj = _from_source(source, key, opt_level)
        disk_cache.store(key, obj, cm.optimized_ir, cm.signatures)
    cm.compile_seconds = time.perf_counter() - t0
    return cm


def _finish(obj: bytes, sigs: Signatures, optimized_ir: str, from_disk: bool,
            key: str) -> JitModule:
    return _module(_link(obj), key, sigs, optimized_ir, from_disk)


def _from_disk(source: str, key: str) -> JitModule | None:
    """The cached module for ``source``, or None (the entry deleted, so the caller
    rebuilds it) when there is none or it fails a check.

    The calling signatures come from the source itself (parsed, not optimised: well under
    a millisecond) and must equal the entry's: ctypes calls a kernel with the argument
    list the signature says, and a wrong one would crash the process, not raise."""
    start = time.perf_counter()
    cm = _load(source, key)
    if cm is not None:  # a miss costs a failed open(): not a phase of its own
        phase_clock.add("load", time.perf_counter() - start)
    return cm


def _load(source: str, key: str) -> JitModule | None:
    entry = disk_cache.load(key)
    if entry is None:
        return None
    obj, optimized_ir, stored = entry
    try:
        expected = _source_signatures(source)
        if stored != expected:
            raise RuntimeError(f"cached signatures {stored} differ from the source's {expected}")
        return _finish(obj, expected, optimized_ir, True, key)
    except RuntimeError:  # does not link, a kernel's address is 0, a signature differs
        disk_cache.remove(key)
        return None


def _from_source(source: str, key: str, opt_level: int) -> tuple[JitModule, bytes]:
    with phase("llvm opt"):
        tm = _shared_target_machine(opt_level)
        mod = llvm.parse_assembly(source)
        mod.verify()
        # The vectoriser's cost model needs the real target, not "unknown-unknown-unknown".
        mod.triple = tm.triple
        mod.data_layout = str(tm.target_data)
        if opt_level:
            _optimize(mod, tm, level=speed_level([source]))
        optimized_ir = str(mod)
        sigs = _source_signatures(source, mod)
        _make_unique(mod, key)
    with phase("codegen"):
        with kernel_codegen():
            obj = _emit(tm, mod)
        cm = _finish(obj, sigs, optimized_ir, False, key)
    return cm, obj


def _emit(tm: llvm.TargetMachine, mod: llvm.ModuleRef, unlocked: bool = False) -> bytes:
    """Machine code for ``mod`` (the one place objects are made: tests count calls)."""
    return llvm_shards.emit_object(tm, mod, unlocked)


def clear_memory_cache() -> None:
    """Forget modules compiled in this process (the disk cache is untouched)."""
    global _engine
    with _memory_lock:
        _memory_cache.clear()
    with _build_lock:
        _engine = None   # later modules link into a fresh engine (NOTE (one engine))


def _reset_locks_after_fork() -> None:
    # NOTE: a lock another thread held at fork time stays held forever in the child.
    global _init_lock, _memory_lock, _build_lock
    _init_lock = threading.Lock()
    _memory_lock = threading.Lock()
    _build_lock = threading.RLock()


os.register_at_fork(after_in_child=_reset_locks_after_fork)
