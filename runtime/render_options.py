"""What the host CPU makes the LLVM renderer choose. ``codegen`` stays host-free: the
runtime passes these to ``codegen.render_llvm.render_llvm`` (``cpu_program.llvm_source``),
and the plan cache's key holds them, so a cache shared with another host misses.

>>> sorted(render_options())
['native_ldexp', 'stream_min_bytes']
"""
from __future__ import annotations

import functools
import os
import platform
from typing import TypedDict

from .llvm_jit import host_has_feature

# the last-level cache assumed where the system does not say
_DEFAULT_LLC_BYTES = 32 << 20


class RenderOptions(TypedDict):
    """The keyword arguments ``codegen.render_llvm.render_llvm`` takes from the host."""
    native_ldexp: bool
    stream_min_bytes: int


def render_options() -> RenderOptions:
    """``native_ldexp``: AVX-512 scales by a power of two in one instruction (NOTE (native
    ldexp) in codegen.llvm_math); elsewhere llvm.ldexp would be a libm call per lane.
    ``stream_min_bytes``: on x86-64, the last-level cache; row kernels over more bytes
    write their output rows with non-temporal stores (NOTE (streamed rows) in
    codegen.stream_rows); 0 elsewhere (the renderer's fence is an x86 instruction)."""
    return {"native_ldexp": host_has_feature("avx512f"),
            "stream_min_bytes": last_level_cache_bytes() if _x86_64() else 0}


def _x86_64() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


@functools.lru_cache(maxsize=1)
def last_level_cache_bytes() -> int:
    """Bytes of the largest CPU cache the system reports (sysfs, then sysconf)."""
    sizes = []
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in os.listdir(base):
            try:
                with open(os.path.join(base, entry, "size")) as f:
                    sizes.append(_parse_size(f.read()))
            except (OSError, ValueError):
                continue
    except OSError:
        pass
    if not sizes:
        for name in ("SC_LEVEL3_CACHE_SIZE", "SC_LEVEL2_CACHE_SIZE"):
            try:
                sizes.append(int(os.sysconf(name)))
            except (ValueError, OSError, AttributeError):
                continue
    largest = max(sizes, default=0)
    return largest if largest > 0 else _DEFAULT_LLC_BYTES


def _parse_size(text: str) -> int:
    """``"32768K"`` -> 33554432 (sysfs cache sizes)."""
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * scale
