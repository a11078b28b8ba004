"""Float POW in LLVM IR, the same function as eager's (NOTE (one pow) in codegen.numpy_pow).

PyTorch's exponents (2: x*x, 3: x*x*x, 0.5: sqrt, -1: 1/x, -2: 1/(x*x)) are selects on the
exponent's value, so an exponent only known at run time (a symbolic int) takes the eager
rule too; a constant one folds to its branch (codegen.lower already writes 2, 3 and 0.5 as
multiplies and a sqrt). Any other float32 power is ``llvm.pow.f64`` (glibc's pow) of the
widened operands, rounded once: eager's float64 pow rounded to float32; the loop computes
it without the libm call but where that could change a bit (NOTE (fast float32 pow) in
codegen.llvm_pow_f32).
"""
from __future__ import annotations

import llvmlite.ir as ir

from .llvm_math import declare_intrinsic, splat_constant
from .llvm_pow_f32 import pow_f32_fast
from .llvm_vector_calls import lane_fixed_call

_F64 = ir.DoubleType()
_POW_F32_VERSION = 3   # part of the function's name: NOTE (vector variants)

# NOTE (cold float32 pow): NOTE (fast float32 pow)'s function had its fast path three
# times in a kernel: the 16-lane version in the vectorised loop, an 8-lane one in the
# epilogue LLVM vectorises after it, and the scalar function of the loop's last lanes;
# and a loop of constant trip count was interleaved four times (four more 16-lane
# copies; now one vector per iteration: NOTE (one vector per float64 sin/cos call) in
# codegen.render_llvm). Only the 16-lane version is kept: the scalar function is glibc's
# pow itself (the same bits by construction; a vectorised loop sends it at most 15
# lanes, its 4-lane epilogue one call per lane). A kernel's first call, no disk cache,
# after a warm-up compile, CPU ms, medians of 8 alternating fresh processes (AMD EPYC
# VM, load ~3.5): x ** y 96 -> 60, |x| ** 2.5 (interleaved before) 102 -> 56; optimised
# IR 611 -> 367 and 792 -> 290 lines. 1M float32 steady: x ** y 3.32 -> 3.31 ms, |x| **
# 2.5 2.75 -> 2.79 (noise). A loop the vectoriser leaves scalar runs at libm's speed, as
# before the fast path.


def _const(ty: ir.Type, value) -> ir.Constant:
    return splat_constant(ty, value) if isinstance(ty, ir.VectorType) else ir.Constant(ty, value)


def _call(b: ir.IRBuilder, name: str, *args: ir.Value) -> ir.Value:
    ty = args[0].type
    fn = declare_intrinsic(b.module, name, [ty], ir.FunctionType(ty, [ty] * len(args)))
    return b.call(fn, list(args))


def pow_float(r, x: ir.Value, y: ir.Value) -> ir.Value:
    """``x ** y`` of float32 or float64 scalars or vectors (``r``: the renderer)."""
    b = r.b
    ty = x.type
    element = ty.element if isinstance(ty, ir.VectorType) else ty
    if element == _F64:
        out = _call(b, "llvm.pow", x, y)
    elif isinstance(ty, ir.VectorType) or not r.native_ldexp:
        out = _pow_f32_exact(b, x, y)[0]
    else:   # AVX-512 (its permutes): NOTE (fast float32 pow) in codegen.llvm_pow_f32
        name = f"tracegrad.pow.f32.{_POW_F32_VERSION}"
        fast = lambda fb, fx, fy: pow_f32_fast(fb, fx, fy, True)  # noqa: E731
        out = b.extract_value(lane_fixed_call(b, name, (x, y), 1, fast, _pow_f32_exact,
                                              (16,), scalar_fast=False), 0)
    one = _const(ty, 1.0)
    square = b.fmul(x, x)
    special = ((-2.0, b.fdiv(one, square)), (-1.0, b.fdiv(one, x)),
               (0.5, _call(b, "llvm.sqrt", x)), (3.0, b.fmul(square, x)), (2.0, square))
    for p, value in special:
        out = b.select(b.fcmp_ordered("==", y, _const(ty, p)), value, out)
    return out


def _pow_f32_exact(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> list[ir.Value]:
    """glibc's pow of the widened operands, rounded once: the definition."""
    ty = x.type
    wide = ir.VectorType(_F64, ty.count) if isinstance(ty, ir.VectorType) else _F64
    return [b.fptrunc(_call(b, "llvm.pow", b.fpext(x, wide), b.fpext(y, wide)), ty)]
