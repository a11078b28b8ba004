"""x mod pi/2 for every float32 x, exact enough for a correctly reduced sin/cos:
Payne-Hanek in float64 arithmetic, with the bits of 2/pi taken from four 64-bit
constants by shifts (no table in memory, no gather, no branch: it vectorises).

NOTE (float32 reduction): x = M 2**u (M < 2**24 an integer, u = exponent - 23) and 2/pi
= sum_i t_i 2**-i. A bit t_i with i <= u - 2 adds M 2**(u - i), a multiple of 4 to x
2/pi: it never changes the quadrant, so only the window of bits from s = max(u - 1, 1)
on matters. Three 29-bit chunks of that window, c_k (bits s + 29k .. s + 29k + 28), give
2/pi's tail to 87 bits, and every x c_k is exact in float64 (24 + 29 = 53 bits). Then p0
= x c0 < 2**26 with its last bit >= 2**-27 (s = u - 1) or exact below 1 (s = 1), so with
j = rint(p0 + p1), p0 - j is exact; f = ((p0 - j) + p1) + p2 rounds twice, each within
2**-53 of a partial sum no larger than |f| + |p1| + |p2|, and |p1| < 2**-3, |p2| <
2**-32: the error is below 2**-52 |f| + 2**-61 (in quarter turns), plus the window's
truncation x 2**-(s + 86) <= 2**-61. The closest a float32 comes to a multiple of pi/2
is |f| = 2**-29.9 (x = 16367173 * 2**72; found by trying every significand of every
exponent from 0 up, smaller x never being near a nonzero multiple, against 2/pi to 256
bits; tests/test_llvm_trig_reduce.py runs that search for every 9th exponent), so r = f
pi/2 keeps a relative error below 2**-31, under 1/100 ulp of float32. Measured over 400
significands of each of the 277 exponents and those nearest points: 0.53 ulp for sin and
cos against float64 libm (0.5001 with the 5-term polynomials, trimmed to 4 and a plain
cos Horner: 0.84-0.88x the time; NumPy's own float32 sin/cos: 1.4 ulp). Cost: the Cody-
Waite reduction it replaced (exact only below 2**30) took 8 vector operations, this ~35
(selects, funnel shifts, conversions; no FMA needed): float32 sin/cos over 64K in-cache
elements 1.17-1.27x the time before (0.057 -> 0.067 ms, AVX-512, load 3.6-7.7). A gather
from a table indexed by exponent measured 1.67-1.76x; a branch to a slow path would be
if-converted by the loop vectoriser into the same work for every lane.
"""
from __future__ import annotations

import math

from llvmlite import ir

F64 = ir.DoubleType()
I32, I64 = ir.IntType(32), ir.IntType(64)
WINDOW_BITS = 256
CHUNK = 29


def two_over_pi_bits(n: int = WINDOW_BITS) -> int:
    """floor(2**n 2/pi): Machin's formula in integers, 64 guard bits."""
    guard = n + 64
    one = 1 << guard

    def atan_inv(m: int) -> int:
        total, term, k = 0, one // m, 0
        while term:
            total += (-1) ** k * (term // (2 * k + 1))
            term //= m * m
            k += 1
        return total

    pi = 16 * atan_inv(5) - 4 * atan_inv(239)  # pi 2**guard, within a few hundred units
    return (one << (n + 1)) // pi


def _signed(word: int) -> int:
    return word - (1 << 64) if word >= 1 << 63 else word


_BITS = two_over_pi_bits()
# word w holds bits 64w + 1 .. 64w + 64 of 2/pi, most significant first
WORDS = [_signed((_BITS >> (WINDOW_BITS - 64 * (w + 1))) & ((1 << 64) - 1)) for w in range(4)]
MAX_START = 103  # s for the largest finite float32 (u = 104); s + 3 * 29 - 1 < 192


def reduce_f32(b: ir.IRBuilder, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(q, r) for a float32 ``x``: x = (4n + q) pi/2 + r for some integer n, q an i32 in
    0..3, r a double with |r| <= pi/4 (to rounding); +-inf and NaN give a NaN r."""
    def i64(v: int) -> ir.Constant:
        return ir.Constant(I64, v)

    def c(v: float) -> ir.Constant:
        return ir.Constant(F64, v)

    def smax(a, lo):
        return b.select(b.icmp_signed(">", a, lo), a, lo)

    def smin(a, hi):
        return b.select(b.icmp_signed("<", a, hi), a, hi)

    def fshl(hi, lo, sh):
        fnty = ir.FunctionType(I64, [I64, I64, I64])
        return b.call(b.module.declare_intrinsic("llvm.fshl", [I64], fnty), [hi, lo, sh])

    # s - 1 = clamp(biased exponent - 152, 0, MAX_START - 1)
    bexp = b.and_(b.lshr(b.bitcast(x, I32), ir.Constant(I32, 23)), ir.Constant(I32, 255))
    start = b.zext(bexp, I64)
    start = smin(smax(b.sub(start, i64(152)), i64(0)), i64(MAX_START - 1))
    second = b.icmp_unsigned(">", start, i64(63))  # the window starts in word 1
    sh = b.and_(start, i64(63))
    w0, w1, w2, w3 = (i64(w) for w in WORDS)
    top = fshl(b.select(second, w1, w0), b.select(second, w2, w1), sh)   # bits s .. s+63
    nxt = fshl(b.select(second, w2, w1), b.select(second, w3, w2), sh)   # bits s+64 ..
    mask = i64((1 << CHUNK) - 1)
    chunks = [b.lshr(top, i64(64 - CHUNK)),
              b.and_(b.lshr(top, i64(64 - 2 * CHUNK)), mask),
              b.or_(b.shl(b.and_(top, i64((1 << (64 - 2 * CHUNK)) - 1)), i64(3 * CHUNK - 64)),
                    b.lshr(nxt, i64(128 - 3 * CHUNK)))]
    # 2**-(s + 28), the weight of chunk 0's last bit, from its exponent field; x times it
    # is exact (24 bits, no underflow: >= 2**-178), and so is each product with a chunk
    scale = b.bitcast(b.shl(b.sub(i64(1023 - CHUNK), start), i64(52)), F64)
    xs = b.fmul(b.fpext(x, F64), scale)
    p = [b.fmul(b.fmul(xs, b.sitofp(b.trunc(chunk, I32), F64)), c(2.0 ** (-CHUNK * k)))
         for k, chunk in enumerate(chunks)]
    # j = rint(p0 + p1) by adding 1.5 * 2**52 (|p0 + p1| < 2**27): its low bits are j mod 4
    # without fptosi, which makes NaN poison
    magic = c(1.5 * 2.0 ** 52)
    t = b.fadd(b.fadd(p[0], p[1]), magic)
    j = b.fsub(t, magic)
    quadrant = b.trunc(b.and_(b.bitcast(t, I64), i64(3)), I32)
    f = b.fadd(b.fadd(b.fsub(p[0], j), p[1]), p[2])
    return quadrant, b.fmul(f, c(math.pi / 2))
