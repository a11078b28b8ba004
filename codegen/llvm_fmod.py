"""FMOD in LLVM IR: C's fmod, exact, without a libcall per element (NOTE (fmod in IR)).

NOTE (fmod in IR): ``frem`` lowers to one fmodf/fmod call per element, and glibc 2.36's
are bit-by-bit long divisions (~35 ns each here, ~500 ns for quotients near 1e30); a
vector ``frem`` is scalarised into 16 of them. Instead, in registers: q = trunc(a / b),
r = fma(-q, b, a), exact while |q| < 2**53 (NOTE (exact fmod) in codegen.numpy_fmod: q
is at most one too far, so |r| < |b| and r is a multiple of b's last bit; the fma rounds
nothing), plus |b| towards a where q was one too far, and a zero takes a's sign. float32
runs this in float64, so its quotients reach 2**53 too. Lanes it cannot hold (|q| >=
2**53, b = 0, b = +-inf, NaN) take ``frem`` behind a branch that a vector takes only when
one of its lanes needs it: inline in the vector IR (codegen.render_llvm_vector), in a
function with vector forms on the scalar path (NOTE (fmod vector variants)). Measured (1M,
fused tanh-GELU of a % b, one process, load ~4): float32 2.79 -> 1.23 ms against the
composite before, float64 7.2 -> 2.1 ms.
"""
from __future__ import annotations

import llvmlite.ir as ir

from .llvm_math import declare_intrinsic, intrinsic_suffix, splat_constant

_F64 = ir.DoubleType()
_EXACT_QUOTIENT = 2.0 ** 53


def _const(ty: ir.Type, value) -> ir.Constant:
    return splat_constant(ty, value) if isinstance(ty, ir.VectorType) else ir.Constant(ty, value)


def _call(b: ir.IRBuilder, name: str, *args: ir.Value) -> ir.Value:
    ty = args[0].type
    return b.call(declare_intrinsic(b.module, name, [ty], ir.FunctionType(ty, [ty] * len(args))),
                  list(args))


def _frem_function(module: ir.Module, ty: ir.Type) -> ir.Function:
    """``frem`` in a function of its own that is never inlined: inline, LLVM's loop
    vectoriser made the branch's ``frem`` unconditional (a libcall per element: 37 ms for
    1M float32 against 1.3 before), as frem can be speculated."""
    name = f"tg.frem.{intrinsic_suffix(ty)}"
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ty, [ty, ty]), name=name)
        fn.linkage = "internal"
        fn.attributes.add("noinline")
        fn.attributes.add("nounwind")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        b.ret(b.frem(*fn.args))
    return fn


def _fixed(b: ir.IRBuilder, x, y, exact, held) -> ir.Value:
    """``held ? exact : frem(x, y)``, frem only when a lane needs it (a branch)."""
    missed = b.not_(held)
    if isinstance(x.type, ir.VectorType):
        fn = declare_intrinsic(b.module, "llvm.vector.reduce.or", [missed.type],
                               ir.FunctionType(ir.IntType(1), [missed.type]))
        missed = b.call(fn, [missed])
    before = b.block
    with b.if_then(missed, likely=False):
        mixed = b.select(held, exact, b.call(_frem_function(b.module, x.type), [x, y]))
        slow = b.block
    out = b.phi(x.type)
    out.add_incoming(exact, before)
    out.add_incoming(mixed, slow)
    return out


# NOTE (fmod vector variants): on the scalar path (float64; float32 that the vector IR does
# not take) the branch stopped LLVM's loop vectoriser (a call it cannot widen): fused GELU of
# a % b at 1M float64 ran 7.2 -> 19.4 ms. The branch therefore sits in a function of its own
# whose vector forms (2 to 16 lanes, the branch taken when any lane needs frem) are named in
# its "vector-function-abi-variant" attribute: the vectoriser widens the call into them.
VARIANT_LANES = (2, 4, 8, 16)
_VARIANTS_ATTR = "vector-function-abi-variant"


def _fix_name(ty: ir.Type) -> str:
    return f"tg.fmod.fix.{intrinsic_suffix(ty)}"


def _fix_function(module: ir.Module, ty: ir.Type) -> ir.Function:
    """``_fixed`` as a function of ``ty`` scalars (the scalar path's call)."""
    if "llvm.compiler.used" not in module.globals:   # one list: both types' forms
        _keep(module, [_define_fix(module, ir.VectorType(t, n))
                       for t in (ir.FloatType(), _F64) for n in VARIANT_LANES])
    fn = module.globals.get(_fix_name(ty))
    return fn if fn is not None else _define_fix(module, ty)


def _define_fix(module: ir.Module, ty: ir.Type) -> ir.Function:
    flag = ir.VectorType(ir.IntType(1), ty.count) if isinstance(ty, ir.VectorType) \
        else ir.IntType(1)
    fn = ir.Function(module, ir.FunctionType(ty, [ty, ty, ty, flag]), name=_fix_name(ty))
    fn.linkage = "internal"
    for attr in ("noinline", "nounwind", "readnone"):   # willreturn: with_vector_variants
        fn.attributes.add(attr)
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    b.ret(_fixed(b, *fn.args))
    return fn


def _keep(module: ir.Module, fns: list) -> None:
    """``@llvm.compiler.used``: the vector forms survive until the vectoriser calls them."""
    ptr = ir.PointerType()
    arr = ir.ArrayType(ptr, len(fns))
    used = ir.GlobalVariable(module, arr, name="llvm.compiler.used")
    used.linkage = "appending"
    used.section = "llvm.metadata"
    used.initializer = ir.Constant(arr, fns)


def with_vector_variants(text: str) -> str:
    """Name each scalar fix function's vector forms in its attributes (llvmlite.ir prints
    no string attributes)."""
    for ty in ("f32", "f64"):
        scalar = f"tg.fmod.fix.{ty}"
        head = f'define internal {"float" if ty == "f32" else "double"} @"{scalar}"('
        at = text.find(head)
        if at < 0:
            continue
        brace = text.index("\n{", at)
        names = ",".join(f"_ZGV_LLVM_N{n}vvvv_{scalar}(tg.fmod.fix.v{n}{ty})"
                         for n in VARIANT_LANES)
        text = text[:brace] + f' willreturn "{_VARIANTS_ATTR}"="{names}"' + text[brace:]
    return text


def fmod_float(r, x: ir.Value, y: ir.Value) -> ir.Value:
    """C's ``fmod(x, y)`` of float32 or float64 scalars or vectors (``r``: the renderer)."""
    b = r.b
    ty = x.type
    element = ty.element if isinstance(ty, ir.VectorType) else ty
    narrow = isinstance(element, ir.FloatType)
    wide = (ir.VectorType(_F64, ty.count) if isinstance(ty, ir.VectorType) else _F64) \
        if narrow else ty
    xd, yd = (b.fpext(x, wide), b.fpext(y, wide)) if narrow else (x, y)
    q = _call(b, "llvm.trunc", b.fdiv(xd, yd))
    rem = _call(b, "llvm.fma", b.fneg(q), yd, xd)
    zero = _const(wide, 0.0)
    # q one too far: a nonzero r whose sign is not x's
    wrong = b.and_(b.fcmp_ordered("!=", rem, zero),
                   b.xor(b.fcmp_ordered("<", rem, zero), b.fcmp_ordered("<", xd, zero)))
    rem = b.select(wrong, b.fadd(rem, _call(b, "llvm.copysign", yd, xd)), rem)
    exact = _call(b, "llvm.copysign", b.fptrunc(rem, ty) if narrow else rem, x)
    held = b.and_(b.fcmp_ordered("<", _call(b, "llvm.fabs", q), _const(wide, _EXACT_QUOTIENT)),
                  b.fcmp_ordered("ord", rem, rem))
    if isinstance(ty, ir.VectorType):   # the vector IR: the branch inline
        return _fixed(b, x, y, exact, held)
    return b.call(_fix_function(b.module, ty), [x, y, exact, held])
