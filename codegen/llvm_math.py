"""Vectorisable math for the LLVM renderer: no libm calls, no branches in the hot path.

``llvm.exp`` and friends become one scalar libm call per lane (llvmlite links no
vector math library), which blocks the loop vectoriser. ``emit_math`` instead emits
range reduction + polynomials with selects, bitcasts and vectorisable intrinsics
(fmuladd, fabs, rint, copysign, ...), so a loop over it widens to <8 x float> (AVX2)
or <16 x float> (AVX-512). No fast-math flags: results stay IEEE, NaN propagates.

NOTE (max ulp): measured in ulps of the result's own dtype (subnormal results included)
against 80-bit long double references, over every binade, +-0, +-inf, NaN and both sides
of each polynomial's and clamp's boundary (tests/test_llvm_math_ulps.py, which asserts
1.25x these + 0.5), float32 / float64: exp 0.93 / 0.95, exp2 0.98 / 1.02, expm1 1.26 /
1.77, log 0.79 / 0.80, log2 0.73 / 0.69 and log10 0.60 / 0.61 (NOTE (log2 and log10);
log2 was log times 1/ln 2: 1.66 / 1.59), log1p 0.77 / 0.77, tanh 2.09 / 2.29, sigmoid
2.36 / 2.29, erf 1.79 / 2.00 (float64 was 10 before its fit gained a term), sin and cos
0.53 / 2.2 (float64: 0.71 for |x| >= 2**30, against mpmath: NOTE (float64 reduction)),
sqrt 0 / 0.5. NaN stays NaN, infinities and signed zeros are exact.
tests/test_llvm_math.py keeps its relative bounds (3e-7 / 1e-15, erf 4x that, denormal
results relative to the smallest normal). 2026-12-02 audit of the compiled float64 public
functions (torch.compile, 1.7K-4.7K extreme and random arguments each, mpmath at 300
bits): exp 0.90 (overflow and subnormal edges included), expm1 1.60, log 0.59, log1p 0.72
(subnormals, -1 + 1e-10), tanh 1.76, sigmoid 2.0 (exact down to the subnormal results,
where eager's 1 / (1 + exp(-x)) gives 0 below x = -709.8), erf 1.62 (tails to 6 and
beyond), atan 0.87, atan2 0.87 (specials and infinities as NumPy), asinh 0.95, asin 1.53,
atanh 1.23, rsqrt 1.23, pow 0.50 (libm), softplus 1.46, logsigmoid 1.25, sin and cos 1.81
and 1.61 (to 1e9), tan 2.79 (sin / cos, as eager), sinh and cosh 2.0 (inf for 709.78 <
|x| <= 710.48 before NOTE (sinh and cosh near overflow) in tracegrad/_ops/trig.py).
exp2, log2 and log10 were composites of the op layer, as inexact in eager: exp2 662 at
x = -991 (exp(x ln 2)), log10 2.64, log2 1.17; now primitives (tests/test_exp2_log2_log10.py).

float32 sin/cos reduce by pi/2 exactly for every float32 (Payne-Hanek in float64: NOTE
(float32 reduction) in codegen/llvm_trig_reduce.py) and evaluate in float64 (so they
vectorise at the double width). float64 sin/cos reduce in 4 Cody-Waite pieces: exact
products for |j| < 2**25 (any |j| < 2**30 where fmuladd fuses, measured: 1e-16 absolute
at |x| = 1e9); lanes with |x| >= 2**30 take a cold path, Payne-Hanek in integers (NOTE
(float64 reduction) in codegen/llvm_trig64.py), through a function with vector versions
(NOTE (vector variants) in codegen/llvm_vector_calls.py).

Example:
    >>> from llvmlite import ir
    >>> mod = ir.Module()
    >>> f = ir.Function(mod, ir.FunctionType(F32, [F32]), "f")
    >>> b = ir.IRBuilder(f.append_basic_block())
    >>> _ = b.ret(emit_math(b, "exp", f.args[0]))
    >>> calls = [ln for ln in str(mod).splitlines() if "call" in ln]
    >>> sorted({ln.split("@")[1].split("(")[0] for ln in calls})
    ['"llvm.fmuladd.f32"']
"""
from __future__ import annotations

import math
from decimal import Decimal, getcontext
from fractions import Fraction

from llvmlite import ir

from .llvm_trig64 import HUGE, reduce_f64
from .llvm_trig_reduce import reduce_f32
from .llvm_vector_calls import lane_fixed_call

F32, F64 = ir.FloatType(), ir.DoubleType()


def _high_precision_constants() -> tuple[Decimal, Decimal]:
    """pi and ln 2 to 60 digits (Machin's formula, sum 1/(k 2^k)), for exact splits."""
    getcontext().prec = 70

    def atan_inv(n: int) -> Decimal:
        total, term, k, n2 = Decimal(0), Decimal(1) / n, 0, n * n
        # NOTE: stop below the precision kept, not at zero: a Decimal reaches 0 only at its
        # exponent floor, ~700k divisions later (1.6 s of import time)
        while term > Decimal(10) ** -75:
            total += term / (2 * k + 1) * (-1 if k % 2 else 1)
            term /= n2
            k += 1
        return total

    pi = 16 * atan_inv(5) - 4 * atan_inv(239)
    ln2 = sum((Decimal(1) / (k * Decimal(2) ** k) for k in range(1, 240)), Decimal(0))
    return pi, ln2


def _split(value: Decimal, bits: int, parts: int) -> list[float]:
    """value ~ sum of ``parts`` floats; all but the last have ``bits`` significant bits,
    so multiplying them by an integer below 2**(53 - bits) is exact (Cody-Waite)."""
    out = []
    for _ in range(parts - 1):
        m, e = math.frexp(float(value))
        hi = math.ldexp(round(math.ldexp(m, bits)), e - bits)
        out.append(hi)
        value -= Decimal(Fraction(hi).numerator) / Decimal(Fraction(hi).denominator)
    out.append(float(value))
    return out


_PI, _LN2 = _high_precision_constants()
# NOTE: float32 n*ln2_hi stays exact for |n| < 2**8 (8 + 16 <= 24 bits); float64 for
# |n| < 2**11. The pi/2 pieces (28 bits) allow |j| < 2**25 in float64.
_LN2_SPLIT = {F32: _split(_LN2, 16, 2), F64: _split(_LN2, 42, 2)}
_PIO2_SPLIT = _split(_PI / 2, 28, 5)


def _log_base_constants() -> dict[tuple[str, bool], tuple[float, float, float, float]]:
    """Per (base, float64): 1/ln b as hi + lo, hi short enough that hi times log1p's hi
    (21 bits in float64, 12 in float32) is exact; log_b 2 as hi + lo, hi short enough
    that k times it is exact (|k| < 2**11, 2**8); NOTE (log2 and log10)."""
    getcontext().prec = 70
    out = {}
    for base in ("2", "10"):
        inv = 1 / (_LN2 if base == "2" else Decimal(10).ln())
        for f64, inv_bits, k_bits in ((True, 32, 42), (False, 12, 16)):
            inv_hi, inv_lo = _split(inv, inv_bits, 2)
            k_hi, k_lo = (1.0, 0.0) if base == "2" else _split(_LN2 * inv, k_bits, 2)
            out[base, f64] = (inv_hi, inv_lo, k_hi, k_lo)
    return out


_LOG_BASE = _log_base_constants()
_INV_FACT = [1.0 / math.factorial(k) for k in range(20)]

# erf(x)/x on t = x*x in [0, 1] and erfcx(x) = exp(x*x) erfc(x) on u = 1/x in [1/cut, 1]:
# Chebyshev least-squares fits (weighted to the relative error of erf, reference
# scipy.special) converted to monomials in the variable mapped onto [-1, 1].
_ERF_A = {
    F32: (0.965468738808036, -0.14053609718982052, 0.019852494638342558,
          -0.002285419896683407, 0.00021752023599194787, -1.766878620881131e-05,
          1.2261342404073683e-06),
    # NOTE: interpolated at 200 Chebyshev nodes on an 80-bit series for erf(x)/x, one
    # term more than before (the dropped T11 term was 3.7e-16): 3-7 ulp -> <= 2 ulp
    F64: (0.9654687386698673, -0.1405360890227171, 0.01985249668898422,
          -0.0022854855611441223, 0.00021751715603559904, -1.753716944106587e-05,
          1.2233827639113181e-06, -7.511569300538978e-08, 4.115751386923883e-09,
          -2.0352270202472767e-10, 9.211293949817901e-12, -3.808375836911182e-13),
}
_ERF_B = {
    F32: (0.3059529911956024, 0.14335645067188188, -0.02424308828345954,
          0.0023073841214711925, 0.00046362676434772717, -0.00034837941857515767,
          0.00011271551484264365, -1.812483713741546e-05),
    F64: (0.289722116323464, 0.16536269001261725, -0.030831050508423108,
          0.0028211318975435483, 0.0010344322281586995, -0.0007383867342379028,
          0.0002656054030972477, -5.5286515184798765e-05, -4.045940231962302e-06,
          1.088189271864321e-05, -6.500639927541426e-06, 2.5889345814189106e-06,
          -6.626917744995748e-07, -1.1994324166046316e-08, 1.3957533675003384e-07,
          -9.155911300132027e-08, 3.109876671340044e-08, -4.627260169879973e-09),
}
_ERF_CUT = {F32: 4.0, F64: 6.0}  # beyond: erf rounds to +-1
# (expm1(r) - r) / r**2 on |r| <= ln2/2: weighted least squares iterated towards minimax
# of the error relative to exp(r) (3.1e-9), coefficients rounded to float32.
_EXPM1_F32 = (0.4999999403953552, 0.1666651964187622, 0.04166838899254799,
              0.008368746377527714, 0.0013814633712172508)


class _Emitter:
    """IR helpers bound to a builder and a float type (float or double)."""

    def __init__(self, b: ir.IRBuilder, ty: ir.Type, native_ldexp: bool = False) -> None:
        self.b, self.ty = b, ty
        self.native_ldexp = native_ldexp
        # a vector operand (codegen.render_llvm_vector) gives vector integers alike
        self.lanes = ty.count if isinstance(ty, ir.VectorType) else 0
        self.elem = ty.element if self.lanes else ty
        self.f64 = self.elem == F64
        self.ity = self.like(ir.IntType(64 if self.f64 else 32))
        self.i32 = self.like(ir.IntType(32))
        self.mant = 52 if self.f64 else 23
        self.bias = 1023 if self.f64 else 127

    def like(self, scalar: ir.Type) -> ir.Type:
        """``scalar``, or a vector of it as wide as the operand."""
        return ir.VectorType(scalar, self.lanes) if self.lanes else scalar

    def c(self, v: float) -> ir.Constant:
        return splat_constant(self.ty, v) if self.lanes else ir.Constant(self.ty, v)

    def i(self, v: int, ty: ir.Type | None = None) -> ir.Constant:
        ty = ty or self.ity
        return splat_constant(ty, v) if self.lanes else ir.Constant(ty, v)

    def intr(self, name: str, *args: ir.Value) -> ir.Value:
        ty = args[0].type
        fnty = ir.FunctionType(ty, [ty] * len(args))
        return self.b.call(declare_intrinsic(self.b.module, name, [ty], fnty), list(args))

    def fma(self, a, x, y):
        # fmuladd: fused where the target has FMA, always vectorisable.
        return self.intr("llvm.fmuladd", a, x, y)

    def poly(self, x, coeffs):
        acc = self.c(coeffs[-1])
        for co in reversed(coeffs[:-1]):
            acc = self.fma(acc, x, self.c(co))
        return acc

    def lt(self, a, b):
        return self.b.fcmp_ordered("<", a, b)

    def gt(self, a, b):
        return self.b.fcmp_ordered(">", a, b)

    def isnan(self, x):
        return self.b.fcmp_unordered("uno", x, x)

    def clamp(self, x, lo, hi):
        """NaN maps to ``hi``: keeps later fptosi free of poison."""
        x = self.b.select(self.lt(x, self.c(hi)), x, self.c(hi))
        return self.b.select(self.gt(x, self.c(lo)), x, self.c(lo))

    def pow2(self, n32):
        """2**n for a 32-bit integer n in the normal exponent range."""
        n = self.b.sext(n32, self.ity) if self.f64 else n32
        bits = self.b.shl(self.b.add(n, self.i(self.bias)), self.i(self.mant))
        return self.b.bitcast(bits, self.ty)

    def ldexp(self, y, n32):
        """y * 2**n rounded once, for |n| below ~2 emax (the exp family's range)."""
        if self.native_ldexp:
            # NOTE (native ldexp): one vscalefps per vector on AVX-512, where the two
            # steps below are eight integer and float operations; the same result.
            i32 = self.i32
            fn = declare_intrinsic(self.b.module, "llvm.ldexp", [self.ty, i32],
                                   ir.FunctionType(self.ty, [self.ty, i32]))
            return self.b.call(fn, [y, n32])
        # Two steps, so n may reach the denormal range or emax + 1 with one rounding.
        half = self.b.ashr(n32, self.i(1, self.i32))
        return self.b.fmul(self.b.fmul(y, self.pow2(half)), self.pow2(self.b.sub(n32, half)))

    # --- exp family -------------------------------------------------------------
    def exp_reduce(self, x, lo, hi):
        """(n, expm1(r)) with x = n ln2 + r, |r| <= ln2/2, x clamped to [lo, hi]
        (``lo = hi = None``: the caller already bounded x and mapped NaN away)."""
        if lo is not None:
            x = self.clamp(x, lo, hi)
        nf = self.intr("llvm.rint", self.b.fmul(x, self.c(1 / math.log(2))))
        ln2_hi, ln2_lo = _LN2_SPLIT[self.elem]
        r = self.fma(nf, self.c(-ln2_hi), x)
        r = self.fma(nf, self.c(-ln2_lo), r)
        return self.b.fptosi(nf, self.i32), self.expm1_poly(r)

    def expm1_poly(self, r):
        """expm1(r) for |r| <= ln2/2 as r + r*r P(r).  double: Taylor to r**13 (< 0.3 ulp).
        float: a degree-6 fit (3.1e-9 relative to exp(r), vs 1.5e-8 for Taylor to r**7,
        one FMA fewer) evaluated in Estrin form: dependency depth 4 FMAs instead of 7."""
        r2 = self.b.fmul(r, r)
        if self.f64:
            return self.fma(r2, self.poly(r, _INV_FACT[2:14]), r)
        c = _EXPM1_F32
        low = self.fma(self.c(c[1]), r, self.c(c[0]))
        mid = self.fma(self.c(c[3]), r, self.c(c[2]))
        p = self.fma(self.fma(self.c(c[4]), r2, mid), r2, low)
        return self.fma(r2, p, r)

    def exp(self, x, nonpositive: bool = False):
        """NOTE (exp without select): NaN flows through every step, so no select puts it
        back at the end: the clamps keep it (``select(hi < x, hi, x)`` is one vminps
        that returns x when it is NaN) and the integer n is read from the bits of
        x/ln2 + 1.5 * 2**mant rounded by the FMA (the float rounds to an integer there),
        where ``fptosi`` would make NaN poison. ``nonpositive``: the caller knows x <= 0
        or NaN, so only the low bound clamps."""
        b = self.b
        lo, hi = (-746.0, 710.0) if self.f64 else (-104.0, 89.0)
        if not nonpositive:
            x = b.select(self.lt(self.c(hi), x), self.c(hi), x)
        x = b.select(self.lt(x, self.c(lo)), self.c(lo), x)
        magic = 1.5 * 2.0 ** self.mant
        t = self.fma(x, self.c(1 / math.log(2)), self.c(magic))
        nf = b.fsub(t, self.c(magic))
        ln2_hi, ln2_lo = _LN2_SPLIT[self.elem]
        r = self.fma(nf, self.c(-ln2_lo), self.fma(nf, self.c(-ln2_hi), x))
        n = b.sub(b.bitcast(t, self.ity), b.bitcast(self.c(magic), self.ity))
        n32 = b.trunc(n, self.i32) if self.f64 else n
        return self.ldexp(b.fadd(self.c(1.0), self.expm1_poly(r)), n32)

    def exp2(self, x):
        lo, hi = (-1076.0, 1025.0) if self.f64 else (-151.0, 129.0)
        xc = self.clamp(x, lo, hi)
        nf = self.intr("llvm.rint", xc)
        u = self.expm1_poly(self.b.fmul(self.b.fsub(xc, nf), self.c(math.log(2))))
        y = self.ldexp(self.b.fadd(self.c(1.0), u), self.b.fptosi(nf, self.i32))
        return self.b.select(self.isnan(x), x, y)

    def expm1_core(self, x, below_64: bool = False):
        """expm1(x) = 2**n expm1(r) + (2**n - 1): exact near 0 where n == 0.
        ``below_64``: the caller guarantees 0 <= x < 64 and no NaN, so x needs no
        clamping and 2**n never overflows."""
        emax = 1023 if self.f64 else 127
        if below_64:
            n, u = self.exp_reduce(x, None, None)
            return self.fma(self.pow2(n), u, self.b.fsub(self.pow2(n), self.c(1.0)))
        n, u = self.exp_reduce(x, -80.0 if self.f64 else -40.0, 710.0 if self.f64 else 89.0)
        top = self.i(emax, self.i32)
        t = self.pow2(self.b.select(self.b.icmp_signed("<", n, top), n, top))
        small = self.fma(t, u, self.b.fsub(t, self.c(1.0)))
        big = self.ldexp(self.b.fadd(self.c(1.0), u), n)  # only n == emax + 1 needs it
        return self.b.select(self.b.icmp_signed(">", n, top), big, small)

    def expm1(self, x):
        y = self.expm1_core(x)
        y = self.b.select(self.b.fcmp_ordered("==", x, self.c(0.0)), x, y)  # keeps -0
        return self.b.select(self.isnan(x), x, y)

    def tanh(self, x):
        # tanh|x| = t / (t + 2), t = expm1(2|x|): accurate for tiny |x| too.
        # NOTE: one bound suffices: |x| >= 0, and the ordered compare sends NaN to 20
        # (the result is replaced by x below), so expm1 needs no clamp of its own.
        a = self.intr("llvm.fabs", x)
        a = self.b.select(self.lt(a, self.c(20.0)), a, self.c(20.0))
        t = self.expm1_core(self.b.fmul(a, self.c(2.0)), below_64=True)
        y = self.intr("llvm.copysign", self.b.fdiv(t, self.b.fadd(t, self.c(2.0))), x)
        return self.b.select(self.isnan(x), x, y)

    def sigmoid(self, x):
        # NOTE: e = exp(-|x|) never overflows; for x < 0, e/(1+e) keeps denormal results.
        e = self.exp(self.b.fneg(self.intr("llvm.fabs", x)), nonpositive=True)
        r = self.b.fdiv(self.c(1.0), self.b.fadd(self.c(1.0), e))
        return self.b.select(self.lt(x, self.c(0.0)), self.b.fmul(e, r), r)

    # --- log family -------------------------------------------------------------
    def log_parts(self, x):
        """(k, f) with x = 2**k (1 + f), 1 + f in [sqrt(1/2), sqrt(2)); x > 0 finite."""
        tiny = self.lt(x, self.c(2.0 ** (-1022 if self.f64 else -126)))
        scale = 54 if self.f64 else 25
        xs = self.b.select(tiny, self.b.fmul(x, self.c(2.0 ** scale)), x)
        sqrt_half = 0x3FE6A09E667F3BCD if self.f64 else 0x3F3504F3
        one = self.bias << self.mant
        ix = self.b.add(self.b.bitcast(xs, self.ity), self.i(one - sqrt_half))
        k = self.b.lshr(ix, self.i(self.mant))
        k = self.b.trunc(k, self.i32) if self.f64 else k
        k = self.b.sub(k, self.i(self.bias, self.i32))
        k = self.b.sub(k, self.b.select(tiny, self.i(scale, self.i32), self.i(0, self.i32)))
        ix = self.b.add(self.b.and_(ix, self.i((1 << self.mant) - 1)), self.i(sqrt_half))
        f = self.b.fsub(self.b.bitcast(ix, self.ty), self.c(1.0))
        return self.b.sitofp(k, self.ty), f

    def log_combine(self, kf, f, c):
        """k ln2 + log1p(f) + c, with log1p(f) = f - f*f/2 + s (f*f/2 + R(s*s)), s = f/(2+f)."""
        s = self.b.fdiv(f, self.b.fadd(self.c(2.0), f))
        z = self.b.fmul(s, s)
        n_terms = 10 if self.f64 else 5  # R(z) = sum 2 z**k / (2k+1): atanh series
        r = self.b.fmul(z, self.poly(z, [2.0 / (2 * k + 1) for k in range(1, n_terms + 1)]))
        hfsq = self.b.fmul(self.c(0.5), self.b.fmul(f, f))
        ln2_hi, ln2_lo = _LN2_SPLIT[self.elem]
        low = self.fma(kf, self.c(ln2_lo), c)
        inner = self.b.fadd(self.b.fmul(s, self.b.fadd(hfsq, r)), low)
        return self.b.fsub(self.b.fmul(kf, self.c(ln2_hi)),
                           self.b.fsub(self.b.fsub(hfsq, inner), f))

    def log_special(self, x, y, zero_at):
        """-inf at ``zero_at``, NaN below it, +inf at +inf, NaN kept."""
        inf = self.c(math.inf)
        y = self.b.select(self.b.fcmp_ordered("==", x, inf), inf, y)
        y = self.b.select(self.b.fcmp_ordered("==", x, self.c(zero_at)), self.c(-math.inf), y)
        y = self.b.select(self.lt(x, self.c(zero_at)), self.c(math.nan), y)
        return self.b.select(self.isnan(x), x, y)

    def log(self, x):
        kf, f = self.log_parts(x)
        return self.log_special(x, self.log_combine(kf, f, self.c(0.0)), 0.0)

    def log2(self, x):
        return self.log_base(x, "2")

    def log10(self, x):
        return self.log_base(x, "10")

    def log_base(self, x, base):
        """NOTE (log2 and log10): fdlibm's e_log2.c / e_log10.c: log1p(f) as hi + lo, hi
        with its low bits cleared so hi * (1/ln b)_hi is exact, then k (times log_b 2 in
        two parts) added in double-double, in float32 alike (e_log2f.c's split). log times
        1/ln b was 1.66 / 1.59 ulp; this 0.73 / 0.69 (log10 0.60 / 0.61). 1M float32,
        fused alone, load ~3: log2 0.37 -> 0.51 ms, log10 0.37 -> 0.53 (the float64
        evaluation of float32, correctly rounded here, took 1.18)."""
        b = self.b
        kf, f = self.log_parts(x)
        s = b.fdiv(f, b.fadd(self.c(2.0), f))
        z = b.fmul(s, s)
        n_terms = 10 if self.f64 else 5
        r = b.fmul(z, self.poly(z, [2.0 / (2 * k + 1) for k in range(1, n_terms + 1)]))
        hfsq = b.fmul(self.c(0.5), b.fmul(f, f))
        hi = b.fsub(f, hfsq)
        cleared = 32 if self.f64 else 12
        hi = b.bitcast(b.and_(b.bitcast(hi, self.ity), self.i(-(1 << cleared))), self.ty)
        lo = b.fadd(b.fsub(b.fsub(f, hi), hfsq), b.fmul(s, b.fadd(hfsq, r)))
        inv_hi, inv_lo, k_hi, k_lo = _LOG_BASE[base, self.f64]
        val_hi = b.fmul(hi, self.c(inv_hi))
        val_lo = b.fadd(b.fmul(b.fadd(lo, hi), self.c(inv_lo)), b.fmul(lo, self.c(inv_hi)))
        y = b.fmul(kf, self.c(k_hi))   # exact: k_hi is 1 or short enough for k
        val_lo = b.fadd(b.fmul(kf, self.c(k_lo)), val_lo)
        w = b.fadd(y, val_hi)
        val_lo = b.fadd(val_lo, b.fadd(b.fsub(y, w), val_hi))
        return self.log_special(x, b.fadd(val_lo, w), 0.0)

    def log1p(self, x):
        u = self.b.fadd(self.c(1.0), x)
        kf, f = self.log_parts(u)
        # c: what rounding 1 + x lost, relative to u (exact subtractions: Sterbenz).
        c_big = self.b.fsub(self.c(1.0), self.b.fsub(u, x))
        c_small = self.b.fsub(x, self.b.fsub(u, self.c(1.0)))
        c = self.b.select(self.b.fcmp_ordered(">=", kf, self.c(2.0)), c_big, c_small)
        c = self.b.fdiv(c, u)
        c = self.b.select(self.b.fcmp_ordered(">=", kf, self.c(self.mant + 2.0)), self.c(0.0), c)
        y = self.log_combine(kf, f, c)
        y = self.b.select(self.b.fcmp_ordered("==", x, self.c(0.0)), x, y)  # keeps -0
        return self.log_special(x, y, -1.0)

    # --- erf ----------------------------------------------------------------------
    def erf(self, x):
        a = self.intr("llvm.fabs", x)
        # |x| <= 1: x * A(x*x); t mapped from [0, 1] onto [-1, 1].
        t = self.fma(self.b.fmul(a, a), self.c(2.0), self.c(-1.0))
        near = self.b.fmul(a, self.poly(t, _ERF_A[self.elem]))
        # 1 < |x| < cut: 1 - exp(-x*x) erfcx(x), erfcx fitted in u = 1/x on [1/cut, 1].
        cut = _ERF_CUT[self.elem]
        ab = self.clamp(a, 1.0, cut)
        u = self.b.fdiv(self.c(1.0), ab)
        lo = 1.0 / cut
        um = self.fma(u, self.c(2.0 / (1.0 - lo)), self.c(-(1.0 + lo) / (1.0 - lo)))
        g = self.exp(self.b.fneg(self.b.fmul(ab, ab)))
        far = self.b.fsub(self.c(1.0), self.b.fmul(g, self.poly(um, _ERF_B[self.elem])))
        y = self.b.select(self.lt(a, self.c(cut)), far, self.c(1.0))
        y = self.b.select(self.b.fcmp_ordered("<=", a, self.c(1.0)), near, y)
        y = self.intr("llvm.copysign", y, x)
        return self.b.select(self.isnan(x), x, y)


def _sincos_eval(m: _Emitter, q, r, r_lo, x) -> tuple[ir.Value, ir.Value]:
    """(sin x, cos x) for x = (4n + q) pi/2 + r (+ r_lo, or None) with |r| <= pi/4,
    evaluated in the emitter's (float64, scalar or vector) type; q an i32 (vector)."""
    b, i32 = m.b, m.i32
    z = b.fmul(r, r)
    # Taylor terms after the first: float64 tail < 0.1 ulp on |r| <= pi/4; float32 (in
    # double) 4 terms, tail 2**-29 relative (0.06 float32 ulp)
    n = 8 if x.type != F32 else 4
    s_co = [_INV_FACT[2 * k + 1] * (-1) ** k for k in range(1, n + 1)]
    c_co = [_INV_FACT[2 * k] * (-1) ** k for k in range(2, n + 2)]
    rz = b.fmul(r, z)
    if x.type == F32:  # double's 53 bits leave float32 room: plain Horner
        sin_r = m.fma(rz, m.poly(z, s_co), r)
        cos_r = m.fma(z, m.fma(z, m.poly(z, c_co), m.c(-0.5)), m.c(1.0))
    else:
        hz = b.fmul(z, m.c(0.5))
        w = b.fsub(m.c(1.0), hz)
        # cos r = w + ((1 - w) - hz) + z*z*C(z): recovers the bits 1 - z/2 rounded away.
        lost = b.fsub(b.fsub(m.c(1.0), w), hz)
        if r_lo is None:
            sin_r = m.fma(rz, m.poly(z, s_co), r)
        else:  # sin(r + r_lo) = sin r + r_lo cos r; cos(r + r_lo) = cos r - r_lo sin r
            sin_r = b.fadd(r, m.fma(rz, m.poly(z, s_co), b.fmul(r_lo, w)))
            lost = b.fsub(lost, b.fmul(r, r_lo))
        cos_r = b.fadd(w, m.fma(b.fmul(z, z), m.poly(z, c_co), lost))
    out = []
    for shift in (0, 1):   # cos x = sin(x + pi/2): one quadrant on
        qs = b.add(q, m.i(shift, i32))
        odd = b.icmp_signed("!=", b.and_(qs, m.i(1, i32)), m.i(0, i32))
        neg = b.icmp_signed("!=", b.and_(qs, m.i(2, i32)), m.i(0, i32))
        y = b.select(odd, cos_r, sin_r)
        y = b.select(neg, b.fneg(y), y)
        out.append(b.fptrunc(y, F32) if x.type == F32 else y)
    zero = ir.Constant(F32, 0.0) if x.type == F32 else m.c(0.0)
    out[0] = b.select(b.fcmp_ordered("==", x, zero), x, out[0])   # sin(-0) = -0
    return out[0], out[1]


def _sincos64_fast(b: ir.IRBuilder, x: ir.Value) -> tuple[list[ir.Value], ir.Value]:
    """([sin, cos] by 4 Cody-Waite pieces, whether |x| is too large for them)."""
    m = _Emitter(b, x.type)
    j = m.intr("llvm.rint", b.fmul(x, m.c(2 / math.pi)))
    r = x
    for piece in _PIO2_SPLIT[:4]:
        r = m.fma(j, m.c(-piece), r)
    r = b.select(m.lt(r, m.c(-1.0)), m.c(-1.0), b.select(m.gt(r, m.c(1.0)), m.c(1.0), r))
    q = b.and_(b.fptosi(m.clamp(j, -2.0 ** 30, 2.0 ** 30), m.i32), m.i(3, m.i32))
    a = m.intr("llvm.fabs", x)
    huge = b.and_(b.fcmp_ordered(">=", a, m.c(HUGE)), b.fcmp_ordered("!=", a, m.c(math.inf)))
    return list(_sincos_eval(m, q, r, None, x)), huge


def _sincos64_slow(b: ir.IRBuilder, x: ir.Value) -> list[ir.Value]:
    q, r, r_lo = reduce_f64(b, x)   # NOTE (float64 reduction)
    return list(_sincos_eval(_Emitter(b, F64), q, r, r_lo, x))


def _sincos(b: ir.IRBuilder, x: ir.Value, cos: bool, avx512: bool) -> ir.Value:
    """sin or cos; float32 reduces and evaluates in float64 then rounds once. float64
    calls a module-local function giving both (the call for sin and the one for cos of
    the same x merge) with vector versions (NOTE (vector variants)) of the width the
    vectoriser picks for doubles: 8 with AVX-512 (``prefer-vector-width`` 512:
    codegen.render_llvm), else 4 (AVX2) or 2."""
    if x.type == F32:
        q, r = reduce_f32(b, x)  # NOTE (float32 reduction)
        return _sincos_eval(_Emitter(b, F64), q, r, None, x)[cos]
    name = f"tracegrad.sincos.f64.{_SINCOS64_VERSION}"
    pair = lane_fixed_call(b, name, x, 2, _sincos64_fast, _sincos64_slow,
                           (8,) if avx512 else (4, 2))
    return b.extract_value(pair, int(cos))


_SINCOS64_VERSION = 1   # part of the functions' names: NOTE (vector variants)


# NOTE (native ldexp): ``llvm.ldexp`` lowers to vscalefps/vscalefpd on AVX-512 (LLVM 20,
# measured: softmax's exp pass per 16 floats loses 5 of ~28 instructions, 10-13% of the
# in-cache row time) but to one scalar ``ldexpf`` call per lane elsewhere (AVX2 included),
# so the renderer uses it only when the runtime says the host has AVX-512
# (``runtime.render_options``). Both round once: results are bit-identical
# (tests/test_llvm_math_exp_forms.py).
_SIMPLE = {"sqrt": "llvm.sqrt", "abs": "llvm.fabs", "floor": "llvm.floor",
           "ceil": "llvm.ceil", "round": "llvm.roundeven", "trunc": "llvm.trunc"}
_COMPOSED = ("exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "tanh", "sigmoid",
             "erf")
FUNCTIONS = tuple(_SIMPLE) + _COMPOSED + ("sin", "cos")


class _Splat(ir.Constant):
    """A vector constant of one repeated element, printed ``splat (float 1.0)``:
    llvmlite.ir prints every element of a vector constant, formatting each (16 float
    formats a constant, which made the vector renderer's text twice as long, rendered and
    parsed twice as slowly)."""

    def __init__(self, ty: ir.VectorType, value) -> None:
        self.type = ty
        self.constant = value
        self._element = ir.Constant(ty.element, value)

    def _get_reference(self) -> str:
        return f"splat ({self._element})"


_SPLATS: dict[tuple[str, object], _Splat] = {}


def splat_constant(ty: ir.VectorType, value) -> ir.Constant:
    """The vector constant ``value`` in every lane of ``ty`` (one object per type and
    value: llvmlite caches its text, formatted once)."""
    key = (str(ty), repr(value))   # not the value: 0.0 == -0.0 and nan != nan
    const = _SPLATS.get(key)
    if const is None:
        if len(_SPLATS) > 4096:
            _SPLATS.clear()
        const = _SPLATS[key] = _Splat(ty, value)
    return const


def intrinsic_suffix(ty: ir.Type) -> str:
    """LLVM's name suffix of an overloaded intrinsic for ``ty`` (``f32``, ``v16f32``):
    llvmlite.ir knows none for vector types."""
    if isinstance(ty, ir.VectorType):
        return f"v{ty.count}{intrinsic_suffix(ty.element)}"
    return ty.intrinsic_name


def declare_intrinsic(module: ir.Module, name: str, tys: list, fnty: ir.FunctionType
                      ) -> ir.Function:
    """``module.declare_intrinsic`` that also takes vector types."""
    full = ".".join([name] + [intrinsic_suffix(t) for t in tys])
    fn = module.globals.get(full)
    return fn if fn is not None else ir.Function(module, fnty, name=full)


# functions ``emit_math`` takes a vector operand of (no sin/cos: they reduce in float64)
VECTOR_FUNCTIONS = tuple(_SIMPLE) + _COMPOSED


def emit_math(builder: ir.IRBuilder, name: str, x: ir.Value,
              native_ldexp: bool = False) -> ir.Value:
    """Emit ``name(x)`` for a float or double ``x``, or a vector of them for a name in
    ``VECTOR_FUNCTIONS``; returns the result value.

    ``name`` is one of ``FUNCTIONS``; ``round`` rounds half to even like NumPy.
    ``native_ldexp``: scale by powers of two with ``llvm.ldexp``, for a target that
    has a vector instruction for it (NOTE (native ldexp)); same results.
    """
    elem = x.type.element if isinstance(x.type, ir.VectorType) else x.type
    if elem not in (F32, F64) or (elem is not x.type and name not in VECTOR_FUNCTIONS):
        raise TypeError(f"emit_math: {name} wants float or double, got {x.type}")
    if name in _SIMPLE:
        return _Emitter(builder, x.type).intr(_SIMPLE[name], x)
    if name in _COMPOSED:
        return getattr(_Emitter(builder, x.type, native_ldexp), name)(x)
    if name in ("sin", "cos"):
        return _sincos(builder, x, name == "cos", native_ldexp)  # AVX-512: NOTE (native ldexp)
    raise ValueError(f"unknown math function {name!r}; known: {', '.join(FUNCTIONS)}")
