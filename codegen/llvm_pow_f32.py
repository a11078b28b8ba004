"""Float32 pow without a libm call per element, the same bits (NOTE (fast float32 pow)).

NOTE (fast float32 pow): a float32 ``x ** y`` is glibc's double pow of the widened
operands rounded once (NOTE (one pow) in codegen.numpy_pow); that pow is one scalar call
per lane, which no vectoriser widens. On AVX-512 every lane takes exp2(y log2|x|) in
float64 instead, from two 16-entry tables held in registers and looked up by a permute
(vpermi2pd): x = 2**k z, z / c = 1 + r with |r| <= 2**-4.9, log2(1 + r) by its series to
r**10, and t = n / 16 + r', 2**t = 2**(n/16) (1 + a series to r'**6). Within 2**-43 of
x ** y for |t| <= 160 (beyond, t is clamped: the float32 result is 0 or inf either way),
and glibc's pow (NumPy's, eager) within 2**-52 (2**-50): so where [p (1 - BAND), p (1 +
BAND)] around the approximation p (BAND = 2**-38) rounds to one float32 at both ends, the
exact power and glibc's lie inside it and round to that float32 too (rounding is
monotonic: no float32 rounding boundary, subnormal, overflow and zero ones included, lies
inside). A lane whose interval straddles one (~1e-4 of them: within 2**-38 of a float32
midpoint, or exactly on one, 17.0 ** 6.0) takes glibc's pow itself in a cold block (NOTE
(vector variants) in codegen.llvm_vector_calls), as do NaN operands, y = +-inf at |x| = 1
and 0 ** 0 and inf ** 0 (NaN in t). Signs and specials are pow's: a negative base's odd
integer power is negative (-0.0 and -inf too), a finite negative base to a finite
non-integer power glibc's NaN (0xFFC00000), 0 and inf give 0 or inf by y's sign;
PyTorch's exponents (2, 3, 0.5, -1, -2) are selected afterwards as before
(codegen.llvm_pow). Bit-identical to the libm loop, NaN bits included, over 250M random
and edge pairs (one-off); tests/test_pow_fast_f32.py keeps ~5M, exact midpoints among
them. A 128-entry table read by gathers was no faster than libm (vgatherdpd took ~30
cycles here), nor fdlibm's log2 (a float64 division per lane). Without AVX-512 the loop
keeps libm's pow. The loop alone, 1M float32, one thread, CPU time, interleaved, medians
of 31: x ** y 14.0 -> 2.9 ms, |x| ** 2.5 15.0 -> 3.1 (libm per lane -> this); through
torch.compile 17.2 -> 3.4 and 15.0 -> 3.1 (torch 2.13, one thread, 3.5 and 3.4). The price
is compile time, as sin/cos's: a kernel of x ** y, first call, no disk cache, 38 -> 110-140
ms of CPU (cut to ~60 by NOTE (cold float32 pow) in codegen.llvm_pow: only vectors take
this path, scalar lanes glibc's pow).
"""
from __future__ import annotations

import math
import struct
from decimal import Decimal, getcontext

import llvmlite.ir as ir

from .llvm_math import _Emitter, splat_constant

_F32, _F64 = ir.FloatType(), ir.DoubleType()
_I32, _I64 = ir.IntType(32), ir.IntType(64)
BAND = 2.0 ** -38
NAN_BITS = 0xFFC00000   # glibc's pow(-2, 2.5) rounded to float32: x86's default NaN
_TABLE_BITS = 4   # 16 entries: two registers, looked up by a permute (no gather)
_STEP = 1 << (23 - _TABLE_BITS)
# z = x / 2**k lies in [bits OFF, bits OFF + 2**23) = [0.7031, 1.4063): 1.0 is the
# centre of entry 9, whose 1 / c is exactly 1 (r = z - 1 exactly; log2 c = 0)
_OFF = 0x3F800000 - (0x3F800000 - 0x3F330000) // _STEP * _STEP - _STEP // 2
_DEGREE = 10


def _f32(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def _log2_table() -> tuple[list[float], list[float]]:
    """(1 / c, log2 c) per entry: c the centre of the entry's z interval, 1 / c rounded
    to double and log2 c = -log2(that double) to 60 digits, rounded once."""
    getcontext().prec = 60
    ln2 = Decimal(2).ln()
    inv_c, log_c = [], []
    step = 1 << (23 - _TABLE_BITS)
    for i in range(1 << _TABLE_BITS):
        lo, hi = _f32(_OFF + i * step), _f32(_OFF + (i + 1) * step)
        inv = 1.0 if lo <= 1.0 < hi else 2.0 / (lo + hi)
        inv_c.append(inv)
        log_c.append(float(-Decimal(inv).ln() / ln2))
        # |r| = |z / c - 1| bounds the series' tail below (asserted, not assumed)
        assert max(abs(lo * inv - 1), abs(hi * inv - 1)) <= 2.0 ** -4.9
    return inv_c, log_c


_INV_C, _LOG_C = _log2_table()
# log2(1 + r) = sum (-1)**(j+1) r**j / (j ln 2): the tail past r**10 is < 2**-52 |r|
_SERIES = [(-1.0) ** (j + 1) / (j * math.log(2)) for j in range(1, _DEGREE + 1)]
# 2**(j/16), and 2**r - 1 = sum (r ln 2)**k / k! to k = 6 for |r| <= 1/32: < 2**-51
_EXP2_TABLE = [2.0 ** (j / 16) for j in range(16)]
_EXP2_SERIES = [math.log(2) ** k / math.factorial(k) for k in range(1, 7)]
_SHIFT = 1.5 * 2.0 ** 52   # adding it rounds to an integer, left in the low bits


def _lookup(b: ir.IRBuilder, values: list[float], idx: ir.Value) -> ir.Value:
    """values[idx] (16 of them) for an integer vector ``idx``: AVX-512's two-register
    permute per 8 lanes, where a gather took ~30 cycles (measured: a gathered 128-entry
    log2 cost as much as libm's pow). (Scalar lanes take glibc's pow: NOTE (cold float32
    pow) in codegen.llvm_pow.)"""
    mod = b.module
    lanes = idx.type.count
    v8, i8 = ir.VectorType(_F64, 8), ir.VectorType(_I64, 8)
    fname = "llvm.x86.avx512.vpermi2var.pd.512"
    fn = mod.globals.get(fname) or ir.Function(mod, ir.FunctionType(v8, [v8, i8, v8]), fname)
    low, high = (ir.Constant(v8, values[k:k + 8]) for k in (0, 8))
    wide = b.zext(idx, ir.VectorType(_I64, lanes)) if idx.type.element.width < 64 else idx
    parts = [b.call(fn, [low, b.shuffle_vector(wide, wide, ir.Constant(
        ir.VectorType(_I32, 8), list(range(k, k + 8)))), high]) for k in range(0, lanes, 8)]
    while len(parts) > 1:   # (lanes: 8 or 16)
        parts = [b.shuffle_vector(parts[k], parts[k + 1], ir.Constant(
            ir.VectorType(_I32, 2 * parts[k].type.count), list(range(2 * parts[k].type.count))))
            for k in range(0, len(parts), 2)]
    return parts[0]


def log2_abs_f32(b: ir.IRBuilder, x: ir.Value, m: _Emitter) -> ir.Value:
    """log2|x| in float64 (``m``'s type) for float32 x: within 2**-50 relative for a
    finite nonzero x; -inf for +-0, inf for +-inf, NaN for NaN."""
    ity = m.like(_I32)
    bits = b.and_(b.bitcast(x, ity), m.i(0x7FFFFFFF, ity))
    ax = b.bitcast(bits, x.type)
    # a subnormal: scaled by 2**23 (exact), its k lowered by 23
    sub = b.icmp_unsigned("<", bits, m.i(0x00800000, ity))
    scaled = b.sub(b.bitcast(b.fmul(ax, splat_constant(x.type, 2.0 ** 23)), ity), m.i(23 << 23, ity))
    ix = b.select(sub, scaled, bits)
    tmp = b.sub(ix, m.i(_OFF, ity))
    idx = b.and_(b.lshr(tmp, m.i(23 - _TABLE_BITS, ity)), m.i((1 << _TABLE_BITS) - 1, ity))
    top = b.and_(tmp, m.i(-(1 << 23), ity))
    z = b.fpext(b.bitcast(b.sub(ix, top), x.type), m.ty)
    k = b.sitofp(b.ashr(top, m.i(23, ity)), m.ty)
    r = m.fma(z, _lookup(b, _INV_C, idx), m.c(-1.0))
    series = b.fmul(r, m.poly(r, _SERIES))
    finite = b.fadd(b.fadd(k, _lookup(b, _LOG_C, idx)), series)
    axd = b.fpext(ax, m.ty)
    special = b.select(b.fcmp_ordered("==", axd, m.c(0.0)), m.c(-math.inf), axd)  # inf, NaN
    ordinary = b.and_(b.fcmp_ordered(">", axd, m.c(0.0)), b.fcmp_ordered("<", axd, m.c(math.inf)))
    return b.select(ordinary, finite, special)


def exp2_f64(b: ir.IRBuilder, t: ir.Value, m: _Emitter) -> ir.Value:
    """2**t in float64 within 2**-51, t clamped to [-160, 130] first (NaN to 130): beyond,
    a float32 result is 0 or inf either way. t = n / 16 + r, |r| <= 1 / 32, exactly."""
    t = b.select(m.lt(t, m.c(130.0)), t, m.c(130.0))
    t = b.select(m.gt(t, m.c(-160.0)), t, m.c(-160.0))
    shifted = b.fadd(b.fmul(t, m.c(16.0)), m.c(_SHIFT))
    nf = b.fsub(shifted, m.c(_SHIFT))
    r = m.fma(nf, m.c(-1.0 / 16), t)
    n = b.sub(b.bitcast(shifted, m.like(_I64)), m.i(0x4338000000000000, m.like(_I64)))
    scale = _lookup(b, _EXP2_TABLE, b.and_(n, m.i(15, m.like(_I64))))
    exponent = b.shl(b.ashr(n, m.i(4, m.like(_I64))), m.i(52, m.like(_I64)))
    scale = b.bitcast(b.add(b.bitcast(scale, m.like(_I64)), exponent), m.ty)
    return m.fma(scale, b.fmul(r, m.poly(r, _EXP2_SERIES)), scale)


def pow_f32_fast(b: ir.IRBuilder, x: ir.Value, y: ir.Value, native_ldexp: bool
                 ) -> tuple[list[ir.Value], ir.Value]:
    """([x ** y], whether a lane needs glibc's pow) for float32 vectors x and y: NOTE
    (fast float32 pow). PyTorch's special exponents are the caller's."""
    ty = x.type
    m = _Emitter(b, ir.VectorType(_F64, ty.count), native_ldexp)
    yd = b.fpext(y, m.ty)
    t = b.fmul(yd, log2_abs_f32(b, x, m))
    power = exp2_f64(b, t, m)
    lo = b.fptrunc(b.fmul(power, m.c(1.0 - BAND)), ty)
    hi = b.fptrunc(b.fmul(power, m.c(1.0 + BAND)), ty)
    out = b.fptrunc(power, ty)
    y_int = b.fcmp_ordered("==", m.intr("llvm.rint", yd), yd)
    half = b.fmul(yd, m.c(0.5))
    y_odd = b.and_(y_int, b.fcmp_ordered("!=", m.intr("llvm.rint", half), half))
    ity = m.like(_I32)
    negative = b.icmp_signed("<", b.bitcast(x, ity), m.i(0, ity))   # -0.0, -inf too
    out = b.select(b.and_(negative, y_odd), b.fneg(out), out)
    # a finite negative base to a finite non-integer power: NaN, glibc's bits
    xd = b.fpext(x, m.ty)
    invalid = b.and_(b.fcmp_ordered("<", xd, m.c(0.0)), b.fcmp_ordered(">", xd, m.c(-math.inf)))
    invalid = b.and_(invalid, b.fcmp_ordered("!=", m.intr("llvm.rint", yd), yd))
    out = b.select(invalid, b.bitcast(m.i(NAN_BITS - (1 << 32), ity), ty), out)
    # NaN t (NaN operands, 0 * inf) or the interval straddling a rounding boundary
    unsure = b.or_(b.fcmp_unordered("uno", t, t), b.fcmp_unordered("!=", lo, hi))
    return [out], b.and_(unsure, b.not_(invalid))
