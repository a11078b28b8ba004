"""A math function with a fast path for every lane and a slow one for rare lanes, as a
call the loop vectoriser widens: the vector version branches, which inline code cannot.

NOTE (vector variants): LLVM's loop vectoriser if-converts a branch in the loop body:
every lane of every vector would pay for the slow path (float64 Payne-Hanek, ~120
integer operations). So the function is defined once per module, ``@name(double)``
returning a struct of results, with vector versions ``@name.v8`` (or ``.v4``, ``.v2``)
named by its ``vector-function-abi-variant`` attribute (LLVM's VFABI): the vectoriser
calls the version of its width, and that version computes the fast path for all lanes,
then branches to a cold block only when some lane needs the slow path, and calls the
scalar slow function for those lanes alone. The scalar ``@name`` (the loop's remainder)
branches alike. ``memory(none)``: two calls for one x (sin and cos) merge. ``weak_odr``:
never dropped as unused before the vectoriser picks one (internal ones were), never
renamed when a batch links several modules (the attribute names them by their text;
equal names are equal code, by the version in the name), and left alone by
runtime.llvm_jit's renaming of exported kernels. The scalar function is ``noinline``
(inlined into the loop before the vectoriser runs, its branch would be if-converted);
the vector versions ``alwaysinline``, inlined after it (NOTE (inlined vector variants)
in runtime.llvm_pipeline). The price is compile time: a kernel of float64 sin and cos
took 60-85 ms of LLVM time (opt + codegen, load 8-10) inline and takes 250-300 ms: the
vectoriser interleaves the cheap-looking call 4 times (4 inlined copies of the fast
path, ~20 ms of code generation each), plus the scalar function for the loop's
remainder and the slow path (27 ms: 128-bit integer code).
"""
from __future__ import annotations

from typing import Callable

from llvmlite import ir

# (the builder, then one value per argument of the function)
FastPath = Callable[..., tuple[list[ir.Value], ir.Value]]
SlowPath = Callable[..., list[ir.Value]]


class _Attributes(ir.values.FunctionAttributes):
    """Function attributes plus LLVM string attributes, which llvmlite.ir does not know."""

    def __init__(self, strings: list[str], inline: str = "noinline") -> None:
        super().__init__((inline, "nounwind"))
        # memory(none): the calls for two results of one x merge (EarlyCSE)
        self.strings = ["memory(none)", "willreturn"] + strings

    def _to_list(self, ret_type):
        return super()._to_list(ret_type) + self.strings


def _function(mod: ir.Module, name: str, ty: ir.Type, results: int, strings: list[str],
              inline: str = "noinline", arity: int = 1) -> ir.Function:
    fnty = ir.FunctionType(ir.LiteralStructType([ty] * results), [ty] * arity)
    fn = ir.Function(mod, fnty, name=name)
    fn.linkage = "weak_odr"
    fn.attributes = _Attributes(strings, inline)
    return fn


def _pack(b: ir.IRBuilder, ty: ir.Type, values: list[ir.Value]) -> ir.Value:
    out = ir.Constant(ty, None)
    for k, v in enumerate(values):
        out = b.insert_value(out, v, k)
    return out


def _lanes_body(fn: ir.Function, slow: ir.Function) -> None:
    """(xs..., need, ys...) -> ys with slow(lane of the xs) in the lanes that need it: a
    loop over the lanes through stack copies (short IR: it is cold), so only those lanes
    pay."""
    arity = len(slow.args)
    xs, need, ys = fn.args[:arity], fn.args[arity], fn.args[arity + 1:]
    x = xs[0]
    i32, lanes = ir.IntType(32), x.type.count
    entry, head, redo, nxt, done = (fn.append_basic_block(n)
                                    for n in ("entry", "head", "redo", "next", "done"))
    b = ir.IRBuilder(entry)
    slots = [b.alloca(v.type) for v in (*xs, *ys)]
    for slot, v in zip(slots, (*xs, *ys)):
        b.store(v, slot)
    need_bits = b.zext(b.bitcast(need, ir.IntType(lanes)), i32)
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(i32)
    i.add_incoming(ir.Constant(i32, 0), entry)
    bit = b.and_(b.lshr(need_bits, i), ir.Constant(i32, 1))
    b.cbranch(b.icmp_unsigned("!=", bit, ir.Constant(i32, 0)), redo, nxt)
    b.position_at_end(redo)
    elem = x.type.element

    def lane(slot):
        return b.gep(slot, [ir.Constant(i32, 0), i], source_etype=slot.allocated_type)

    got = b.call(slow, [b.load(b.bitcast(lane(slot), elem.as_pointer()), typ=elem)
                        for slot in slots[:arity]])
    for k, slot in enumerate(slots[arity:]):
        b.store(b.extract_value(got, k), b.bitcast(lane(slot), elem.as_pointer()))
    b.branch(nxt)
    b.position_at_end(nxt)
    i_next = b.add(i, ir.Constant(i32, 1))
    i.add_incoming(i_next, nxt)
    b.cbranch(b.icmp_unsigned("<", i_next, ir.Constant(i32, lanes)), head, done)
    b.position_at_end(done)
    b.ret(_pack(b, fn.return_value.type, [b.load(slot, typ=v.type)
                                           for slot, v in zip(slots[arity:], ys)]))


def _body(fn: ir.Function, fast: FastPath, slow: ir.Function) -> None:
    """ys, need = fast(xs); lanes that need it get slow(lane), in a cold block: for a
    vector, one call of a function of its own (``_lanes_body``), so the copies of this
    body inlined into an interleaved loop stay small (NOTE (inlined vector variants))."""
    entry, cold, done = (fn.append_basic_block(n) for n in ("entry", "cold", "done"))
    b = ir.IRBuilder(entry)
    xs, ty = list(fn.args), fn.return_value.type
    x = xs[0]
    ys, need = fast(b, *xs)
    fast_pack = _pack(b, ty, ys)
    lanes = x.type.count if isinstance(x.type, ir.VectorType) else 0
    some = b.icmp_unsigned("!=", b.bitcast(need, ir.IntType(lanes)),
                           ir.Constant(ir.IntType(lanes), 0)) if lanes else need
    b.cbranch(some, cold, done).set_weights([1, 1 << 20])
    b.position_at_end(cold)
    if lanes:
        lanes_ty = ir.FunctionType(ty, [x.type] * len(xs) + [need.type] + [x.type] * len(ys))
        lanes_fn = ir.Function(fn.module, lanes_ty, name=f"{fn.name}.lanes")
        lanes_fn.linkage = "weak_odr"
        lanes_fn.attributes = _Attributes(["cold"])
        _lanes_body(lanes_fn, slow)
        slow_pack = b.call(lanes_fn, [*xs, need, *ys])
    else:
        slow_pack = b.call(slow, xs)
    b.branch(done)
    b.position_at_end(done)
    out = b.phi(ty)
    out.add_incoming(fast_pack, entry)
    out.add_incoming(slow_pack, cold)
    b.ret(out)


def lane_fixed_call(b: ir.IRBuilder, name: str, x: ir.Value | tuple[ir.Value, ...],
                    results: int, fast: FastPath, slow: SlowPath, widths: tuple[int, ...],
                    scalar_fast: bool = True) -> ir.Value:
    """``@name(x)`` for a scalar ``x`` (or a tuple of scalars of one type, the function's
    arguments): a struct of ``results`` values of x's type, defined in ``b``'s module on
    first use. ``fast(b, *vs)`` gives (the values, a needs-slow flag) for scalars or
    vectors vs, ``slow(b, *lanes)`` the values of one scalar lane (NOTE (vector
    variants)); vector versions of ``widths`` lanes; the scalar one takes the fast path
    too unless not ``scalar_fast`` (then ``slow`` for every lane: both must give the same
    values). ``name`` must change whenever the code ``fast`` or ``slow`` emits does."""
    xs = list(x) if isinstance(x, tuple) else [x]
    mod = b.module
    fn = mod.globals.get(name)
    if fn is None:
        ty, arity = xs[0].type, len(xs)
        slow_fn = _function(mod, f"{name}.slow", ty, results, ["cold"], arity=arity)
        sb = ir.IRBuilder(slow_fn.append_basic_block("entry"))
        sb.ret(_pack(sb, slow_fn.return_value.type, slow(sb, *slow_fn.args)))
        vs = "v" * arity
        variants = ",".join(f"_ZGV_LLVM_N{w}{vs}_{name}({name}.v{w})" for w in widths)
        fn = _function(mod, name, ty, results, [f'"vector-function-abi-variant"="{variants}"'],
                       arity=arity)
        if scalar_fast:
            _body(fn, fast, slow_fn)
        else:   # the slow path for every scalar lane: NOTE (cold float32 pow)
            fb = ir.IRBuilder(fn.append_basic_block("entry"))
            fb.ret(fb.call(slow_fn, list(fn.args)))
        for w in widths:
            # alwaysinline: NOTE (inlined vector variants) in runtime.llvm_pipeline
            _body(_function(mod, f"{name}.v{w}", ir.VectorType(ty, w), results, [],
                            "alwaysinline", arity), fast, slow_fn)
    return b.call(fn, xs)
