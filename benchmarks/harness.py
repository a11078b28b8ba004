"""Timing, rows and reporting shared by every workload.

Timing rules (issue 5): one process, every arm of a workload interleaved (the order
rotates each repetition so no arm always runs right after another's cache traffic),
warm-up calls first, then repeated samples; a row reports the median and the
interquartile range of the per-call times.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
import tempfile
import time
from typing import Callable

import numpy as np

# arm names, in the order the table prints them
MAIN_ARMS = ("eager", "compiled")
PEER_ARMS = ("numpy", "torch", "torch.compile", "jax.jit")
# the training step compiled as one program (zero_grad, forward, backward, optimizer step)
WHOLE_STEP = "whole step"


@dataclasses.dataclass
class Config:
    quick: bool = False
    tiny: bool = False
    device: str = "cpu"
    peers: dict = dataclasses.field(default_factory=dict)  # name -> module, only importable ones

    def pick(self, full, quick, tiny=None):
        """The size for this run mode: ``tiny`` (test knob) < ``quick`` < full."""
        if self.tiny:
            return quick if tiny is None else tiny
        return quick if self.quick else full

    @property
    def repeats(self) -> int:
        return 3 if self.tiny else (7 if self.quick else 21)

    @property
    def sample_seconds(self) -> float:
        """Minimum wall time of one sample: calls are batched until a sample lasts this long."""
        return 0.002 if self.tiny else (0.01 if self.quick else 0.05)


@dataclasses.dataclass
class Timing:
    median: float  # seconds per call (per op when the workload says so)
    q1: float
    q3: float
    samples: int
    min: float = 0.0
    first: float = 0.0  # wall time of the arm's first (warm-up) call: includes a peer's JIT
    values: tuple = ()  # every sample, in repetition order (``paired_ratio``)

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median."""
        return (self.q3 - self.q1) / self.median if self.median > 0 else 0.0

    def as_dict(self, scale: float) -> dict:
        return {"median": self.median * scale, "q1": self.q1 * scale, "q3": self.q3 * scale,
                "min": self.min * scale, "samples": self.samples, "first_call_s": self.first}


@dataclasses.dataclass
class Row:
    workload: str  # registry name, what --only selects
    name: str  # what the table prints
    size: str
    unit: str = "ms"  # "ms", "us" (per call), "us/op"
    times: dict = dataclasses.field(default_factory=dict)  # arm -> Timing
    notes: dict = dataclasses.field(default_factory=dict)  # arm -> why it has no time
    bytes_moved: int | None = None  # minimum traffic of one call, for GB/s
    compile_cold: float | None = None  # seconds
    compile_warm: float | None = None
    correct: bool | None = None  # compiled == eager (None: not checked)
    status: str = "ok"  # ok | failed | skipped
    note: str = ""

    @property
    def scale(self) -> float:
        return 1e3 if self.unit == "ms" else 1e6

    def speedup(self) -> float | None:
        e, c = self.times.get("eager"), self.times.get("compiled")
        if e and c and c.median > 0:
            return e.median / c.median
        return None

    def gbps(self) -> float | None:
        c = self.times.get("compiled") or self.times.get("eager")
        if self.bytes_moved and c and c.median > 0:
            return self.bytes_moved / c.median / 1e9
        return None

    def as_dict(self, bandwidth: float | None) -> dict:
        g = self.gbps()
        return {
            "workload": self.workload, "name": self.name, "size": self.size, "unit": self.unit,
            "status": self.status, "note": self.note,
            "times": {k: v.as_dict(self.scale) for k, v in self.times.items()},
            "arm_notes": dict(self.notes),
            "speedup": self.speedup(),
            "bytes_moved": self.bytes_moved,
            "gbps": g,
            "pct_bandwidth": (100.0 * g / bandwidth) if (g and bandwidth) else None,
            "compile_cold_s": self.compile_cold,
            "compile_warm_s": self.compile_warm,
            "correct": self.correct,
        }


def _calibrate(fn: Callable[[], object], target: float) -> int:
    """How many calls make one sample last at least ``target`` seconds."""
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t
        if dt >= target or n >= 1 << 20:
            return n
        n = max(n * 2, int(n * target / max(dt, 1e-9) * 1.2))


def measure(arms: dict[str, Callable[[], object]], cfg: Config, ops_per_call: int = 1,
            sync: Callable[[], None] | None = None) -> dict[str, Timing]:
    """Time every arm, interleaved. Returns arm -> Timing in seconds per op."""
    names = list(arms)
    batch, first = {}, {}
    for name in names:  # warm-up doubles as calibration
        t = time.perf_counter()
        arms[name]()
        if sync is not None:
            sync()
        first[name] = time.perf_counter() - t
        batch[name] = _calibrate(arms[name], cfg.sample_seconds)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(cfg.repeats):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            fn, n = arms[name], batch[name]
            t = time.perf_counter()
            for _ in range(n):
                fn()
            if sync is not None:
                sync()
            samples[name].append((time.perf_counter() - t) / (n * ops_per_call))
    out = {}
    for name, s in samples.items():
        q = statistics.quantiles(s, n=4) if len(s) > 1 else [s[0]] * 3
        out[name] = Timing(statistics.median(s), q[0], q[2], len(s), min(s), first[name],
                           tuple(s))
    return out


def paired_ratio(a: Timing, b: Timing) -> float:
    """a's time over b's, two arms of one ``measure``: the median of the per-repetition
    ratios. Each repetition times the arms back to back, so a load change between
    repetitions (the shared VM's) cancels in each ratio; the ratio of the two medians
    pairs samples taken seconds apart. Two arms running the same kernel through the
    same dispatch (symbolic and specialised softmax rows) gave ratios of medians of
    0.93-1.18 across five measurements in one process, medians of paired ratios
    0.94-1.07."""
    if len(a.values) != len(b.values) or not a.values:
        return a.median / b.median
    return statistics.median(x / y for x, y in zip(a.values, b.values))


def memory_bandwidth(cfg: Config) -> dict:
    """The machine line: a NumPy copyto of 256 MiB float32 (read + write bytes counted)."""
    mib = 16 if cfg.tiny else 256
    n = mib * (1 << 20) // 4
    src = np.ones(n, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # first touch
    reps = 3 if cfg.tiny else (5 if cfg.quick else 11)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        np.copyto(dst, src)
        ts.append(time.perf_counter() - t)
    med = statistics.median(ts)
    return {"copy_mib": mib, "copy_ms": med * 1e3, "gbps": 2 * src.nbytes / med / 1e9}


def close(actual, expected, rtol: float = 1e-4, atol_rel: float = 1e-5) -> bool:
    """float32 comparison: rtol for reassociation, atol relative to the largest value."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        return False
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    return bool(np.allclose(a, b, rtol=rtol, atol=atol_rel * max(scale, 1e-30), equal_nan=True))


@contextlib.contextmanager
def cache_dir(path: str):
    """Point tracegrad's disk cache at ``path`` for the duration."""
    old = os.environ.get("TRACEGRAD_CACHE_DIR")
    os.environ["TRACEGRAD_CACHE_DIR"] = path
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("TRACEGRAD_CACHE_DIR", None)
        else:
            os.environ["TRACEGRAD_CACHE_DIR"] = old


def _wait_for_helper() -> None:
    """Let the helper thread finish what earlier workloads left it (their cache writes
    and page warming, NOTE (one helper thread) in runtime.helper_thread): on two cores
    that work ran beside the next workload's timed cold compile and was counted in it."""
    from tracegrad.runtime import helper_thread
    helper_thread.submit(lambda: None).join()


def _clear_memory_cache() -> None:
    from tracegrad.runtime import llvm_jit
    llvm_jit.clear_memory_cache()


class CompileClock:
    """Cold and warm compile time of ``tracegrad.compile(fn)``.

    cold: the first call of a compiled function made inside :meth:`cold`, which points the
    disk cache at a fresh folder and empties the in-memory module cache; warm: a *new*
    ``tracegrad.compile(fn)`` called the same way after emptying the in-memory cache again,
    so its kernels load from that disk cache. Both are first-call wall time minus the
    steady-state time of the same call, given to :meth:`result`. Reusing the correctness
    check's first call as the cold compile keeps each workload to two compiles.
    """

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="tg-bench-cache-")
        self.cold_wall: float | None = None
        self.warm_wall: float | None = None

    @contextlib.contextmanager
    def cold(self):
        with cache_dir(self._dir.name):
            _clear_memory_cache()
            _wait_for_helper()
            t = time.perf_counter()
            yield
            self.cold_wall = time.perf_counter() - t

    def warm(self, fn: Callable, first_call: Callable[[Callable], object]) -> None:
        import tracegrad
        with cache_dir(self._dir.name):
            _clear_memory_cache()
            cf = tracegrad.compile(fn)
            t = time.perf_counter()
            first_call(cf)
            self.warm_wall = time.perf_counter() - t
        self._dir.cleanup()

    def result(self, steady: float) -> tuple[float | None, float | None]:
        def net(v):
            return None if v is None else max(v - steady, 0.0)
        return net(self.cold_wall), net(self.warm_wall)


def check_compiles(cf, expected_misses: int | None = None) -> str:
    """A short note if a compiled function fell back to eager or retraced."""
    info = cf.cache_info()
    notes = []
    entries = getattr(cf, "_cache", {})
    if any(getattr(e, "fallback", False) for e in entries.values()):
        notes.append("compiled arm fell back to eager")
    if expected_misses is not None and info.misses != expected_misses:
        notes.append(f"{info.misses} compiles (expected {expected_misses})")
    return "; ".join(notes)
