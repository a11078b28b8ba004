"""What the host CPU makes the LLVM renderer choose. ``codegen`` stays host-free: the
runtime passes these to ``codegen.render_llvm.render_llvm`` (``cpu_program.llvm_source``),
and the plan cache's key holds them, so a cache shared with another host misses.

>>> sorted(render_options())
['native_ldexp']
"""
from __future__ import annotations

from .llvm_jit import host_has_feature


def render_options() -> dict[str, bool]:
    """``native_ldexp``: AVX-512 scales by a power of two in one instruction (NOTE (native
    ldexp) in codegen.llvm_math); elsewhere llvm.ldexp would be a libm call per lane."""
    return {"native_ldexp": host_has_feature("avx512f")}
