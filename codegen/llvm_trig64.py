"""x mod pi/2 for every finite float64 x: Payne-Hanek in 64- and 128-bit integers, for
the arguments Cody-Waite cannot reduce (|x| >= 2**30). Scalar IR: it runs only on the
cold path of codegen.llvm_vector_calls (NOTE (vector variants)).

NOTE (float64 reduction): x = M 2**u (M < 2**53 an integer, u = exponent - 52) and 2/pi
= sum_j t_j 2**-j. A bit t_j with j <= u - 2 adds a multiple of 4 to x 2/pi, so only
the window from s = u - 1 on matters. 192 bits of it, W, make V = M W mod 2**192 the
value of x 2/pi mod 4 in units of 2**-190: three 64x64 -> 128-bit multiplies, the bits
taken by funnel shifts from 4 consecutive words of a 20-word table of 2/pi (a leading
zero word stands for the bits j <= 0 of small exponents) picked by ``extractelement``
from a constant vector: no global in the module. The truncated tail adds less than M
2**-190 < 2**-137 quarter turns. The quadrant is V's top 2 bits after adding half a
quarter turn; the next 128 bits, signed, are the remainder f in [-1/2, 1/2) quarter
turns, normalised by a leading-zero count into a double pair (53 + 64 bits), then
multiplied by pi/2 in double-double: r + r_lo within 2**-105 relative of x mod pi/2.
The float64 nearest a multiple of pi/2 is x = 6381956970095103 * 2**797 (Muller,
"Elementary Functions"): x mod pi/2 = 4.7e-19, 2**-61.5 quarter turns, so the remainder
keeps >= 66 significant bits of its 128 everywhere, and r_lo carries them into the
polynomials (codegen.llvm_math ``_sincos_r``). Measured against mpmath (300-1300 bits)
over 6892 arguments (random exponents 1e10 .. 1.8e308, powers of 2, 600 near multiples
of pi/2, that x, both signs): sin 0.71 ulp, cos 0.68 (glibc, so NumPy, is 7.95 ulp off
cos at that x). Cost: only lanes with |x| >= 2**30 pay it, 31 ns each (compiled sin:
0.9 ns per element of small arguments, 1.4 with one argument in 64 huge).
"""
from __future__ import annotations

import math

from llvmlite import ir

from .llvm_trig_reduce import two_over_pi_bits

F64 = ir.DoubleType()
I32, I64, I128 = ir.IntType(32), ir.IntType(64), ir.IntType(128)
TABLE_WORDS = 20   # the zero word, then bits 1 .. 1216 of 2/pi: a window at s <= 970
_BITS = two_over_pi_bits(64 * (TABLE_WORDS - 1))
WORDS = [0] + [(_BITS >> (64 * (TABLE_WORDS - 2 - w))) & ((1 << 64) - 1)
               for w in range(TABLE_WORDS - 1)]
HUGE = 2.0 ** 30   # Cody-Waite (codegen.llvm_math) is exact below: NOTE (float64 reduction)
# pi/2 as a double pair
PIO2_HI = math.pi / 2
PIO2_LO = 6.123233995736766e-17


def reduce_f64(b: ir.IRBuilder, x: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
    """(q, r, r_lo) for a float64 ``x``: x = (4n + q) pi/2 + r + r_lo, q an i32 in 0..3,
    |r| <= pi/4. Exact for every finite |x| >= 2**-22 (window start s >= -23); smaller
    x, +-inf and NaN give some finite (q, r) that the caller must not use."""
    def i64(v: int) -> ir.Constant:
        return ir.Constant(I64, v)

    def fshl(hi, lo, sh):
        fnty = ir.FunctionType(I64, [I64, I64, I64])
        return b.call(b.module.declare_intrinsic("llvm.fshl", [I64], fnty), [hi, lo, sh])

    def wide(v):
        return b.zext(v, I128)

    def high(v):
        return b.trunc(b.lshr(v, ir.Constant(I128, 64)), I64)

    bits = b.bitcast(x, I64)
    bexp = b.and_(b.lshr(bits, i64(52)), i64(0x7FF))
    mant = b.or_(b.and_(bits, i64((1 << 52) - 1)), i64(1 << 52))
    # position of bit s in the table: s + 63 = bexp - 1013, clamped (NOTE above)
    pos = b.sub(bexp, i64(1013))
    pos = b.select(b.icmp_signed("<", pos, i64(0)), i64(0), pos)
    pos = b.select(b.icmp_signed(">", pos, i64(64 * (TABLE_WORDS - 3) - 1)),
                   i64(64 * (TABLE_WORDS - 3) - 1), pos)
    word, sh = b.lshr(pos, i64(6)), b.and_(pos, i64(63))
    table = ir.Constant(ir.VectorType(I64, TABLE_WORDS), [ir.Constant(I64, w) for w in WORDS])
    a = [b.extract_element(table, b.add(word, i64(k))) for k in range(4)]
    w2, w1, w0 = fshl(a[0], a[1], sh), fshl(a[1], a[2], sh), fshl(a[2], a[3], sh)
    # V = mant * (w2:w1:w0) mod 2**192 = r2:r1:r0
    m = wide(mant)
    low = b.mul(m, wide(w0))
    mid = b.add(wide(high(low)), b.mul(m, wide(w1)))
    r0, r1 = b.trunc(low, I64), b.trunc(mid, I64)
    r2 = b.add(high(mid), b.mul(mant, w2))
    r2 = b.add(r2, i64(1 << 61))   # + half a quarter turn: the top 2 bits round to nearest
    quadrant = b.trunc(b.lshr(r2, i64(62)), I32)
    # bits 189 .. 62 of V, minus the half turn added: f 2**128, signed
    y = b.or_(b.or_(b.shl(wide(r2), ir.Constant(I128, 66)), b.shl(wide(r1), ir.Constant(I128, 2))),
              wide(b.lshr(r0, i64(62))))
    y = b.xor(y, ir.Constant(I128, 1 << 127))
    negative = b.icmp_signed("<", y, ir.Constant(I128, 0))
    mag = b.select(negative, b.neg(y), y)
    ctlz = b.module.declare_intrinsic("llvm.ctlz", [I128],
                                      ir.FunctionType(I128, [I128, ir.IntType(1)]))
    n = b.call(ctlz, [mag, ir.Constant(ir.IntType(1), 0)])
    n = b.trunc(b.select(b.icmp_unsigned(">", n, ir.Constant(I128, 127)),
                         ir.Constant(I128, 127), n), I64)
    z = b.shl(mag, b.zext(n, I128))
    top = b.trunc(b.lshr(z, ir.Constant(I128, 75)), I64)    # 53 bits
    rest = b.trunc(b.lshr(z, ir.Constant(I128, 11)), I64)   # the next 64

    def scale(k):  # 2**-(k + n)
        return b.bitcast(b.shl(b.sub(i64(1023 - k), n), i64(52)), F64)

    f_hi = b.fmul(b.uitofp(top, F64), scale(53))
    f_lo = b.fmul(b.uitofp(rest, F64), scale(117))
    # r + r_lo = (f_hi + f_lo) pi/2 in double-double (fma: the exact product's error)
    fnty = ir.FunctionType(F64, [F64, F64, F64])
    fma = b.module.declare_intrinsic("llvm.fma", [F64], fnty)
    hi = ir.Constant(F64, PIO2_HI)
    p = b.fmul(f_hi, hi)
    err = b.call(fma, [f_hi, hi, b.fneg(p)])
    tail = b.call(fma, [f_hi, ir.Constant(F64, PIO2_LO), b.call(fma, [f_lo, hi, err])])
    r = b.fadd(p, tail)
    r_lo = b.fsub(tail, b.fsub(r, p))
    # the sign of f, then of x: sin(-x) = -sin(x) is the reduction of |x| mirrored
    sign = b.xor(negative, b.icmp_signed("<", bits, i64(0)))
    r = b.select(sign, b.fneg(r), r)
    r_lo = b.select(sign, b.fneg(r_lo), r_lo)
    quadrant = b.select(b.icmp_signed("<", bits, i64(0)), b.neg(quadrant), quadrant)
    return b.and_(quadrant, ir.Constant(I32, 3)), r, r_lo
