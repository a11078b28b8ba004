"""GATHER and SCATTER_ADD computed inside a generated driver instead of by NumPy.

Cross-entropy gathers the target's logit and scatters its gradient back: two tiny
externs per training step that cost far more from Python than their work (an extern
call, ``np.take_along_axis`` / ``np.add.at`` and a fresh array: ~40-70 µs per digits
step on the 2-core VM, against ~0.1 µs of work), and each one split the step's driver
into separate native calls. ``index_call_for`` maps such a step, when its operands are
contiguous buffers and the index covers the data outside ``dim``, to an ``IndexCall``
that the driver runs as a loop of its own (``index_function``).

NOTE (bad indices): a kernel cannot raise, and eager mode raises an ``IndexError`` for
an index outside ``[-size, size)`` (negative ones count from the end). The generated
loop checks every index; on a bad one it returns at once, the driver stores the call's
``code`` into its status word and returns before any later call, and the runtime then
runs the step's NumPy implementation, which raises eager mode's error. Steps before
the bad one have run, as they had on the Python path.

The loop visits the index in C order, as ``np.add.at`` does, so a scatter-add sums in
the same order and its result is bit-identical to NumPy's.

>>> call = IndexCall("gather", np.dtype(np.float32), np.dtype(np.int64), 4, 1, 1, 10,
...                  (0, 0), (1, 0), None, 2, 3, 1, (10, 1, 1))
>>> "define internal i64 @g(" in index_function("g", call)
True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..codegen.ops import Op
from ..codegen.schedule import BufferInfo, BufferRead, ExternStep
from ..codegen.view import contiguous_strides
from .driver_ints import SizeTable, Spell, literal

_REAL = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_INT = {np.dtype(np.int32): "i32", np.dtype(np.int64): "i64"}


@dataclass(frozen=True)
class IndexCall:
    """GATHER or SCATTER_ADD along one dimension of contiguous buffers. The index space
    is ``outer x mid x inner`` (the index's dims before, at and after ``dim``); ``size``
    is the data's length along ``dim``; ``src`` is None for a gather. A bad index stops
    the driver with ``addrs[status] = code`` (NOTE (bad indices))."""
    op: str                          # "gather" | "scatter_add"
    dtype: np.dtype                  # of the data and the result
    index_dtype: np.dtype            # int32 or int64
    outer: int
    mid: int
    inner: int
    size: int
    data: tuple[int, int]            # (address position, byte offset): read / the base
    index: tuple[int, int]
    src: tuple[int, int] | None
    out: int                         # address position of the (contiguous) result
    status: int                      # address position of the driver's status word
    code: int                        # what the driver stores there on a bad index
    # element strides of the data over (outer, dim, inner): a gather may read a
    # broadcast or strided view (cross-entropy's class weights expanded over the batch);
    # a scatter-add's base is contiguous, ``(size * inner, inner, 1)``
    strides: tuple[int, int, int] = (0, 0, 0)


def _contiguous_operand(arg, buffers: dict[str, BufferInfo],
                        position: Callable[[str], int]
                        ) -> tuple[tuple[int, ...], np.dtype, tuple[int, int]] | None:
    """(shape, dtype, (position, byte offset)) of an operand laid out in C order, or None
    (a constant, a transpose, a broadcast, a masked view)."""
    if not isinstance(arg, BufferRead):
        return None
    info = buffers[arg.buffer]
    if arg.view is None:
        return tuple(info.shape), info.dtype, (position(arg.buffer), 0)
    if len(arg.view.views) != 1 or arg.view.last.mask is not None:
        return None
    v = arg.view.last
    shape = tuple(v.shape)
    # a size-1 dim's stride never moves the address (codegen gives it 0)
    if any(n != 1 and s != c for n, s, c in zip(shape, v.strides, contiguous_strides(shape))):
        return None
    return shape, info.dtype, (position(arg.buffer), v.offset * info.dtype.itemsize)


def _merged_stride(shape: tuple[int, ...], strides: tuple[int, ...]) -> int | None:
    """The one element stride that walks ``shape`` (dims merged in C order) with
    ``strides``, or None when they do not merge. Size-1 dims never move."""
    merged = None
    span = 1
    for n, st in reversed([(n, st) for n, st in zip(shape, strides) if n != 1]):
        if merged is None:
            merged = st
        elif st != merged * span:
            return None
        span *= n
    return 0 if merged is None else merged


def _strided_data(arg, buffers: dict[str, BufferInfo], position: Callable[[str], int],
                  dim: int) -> tuple[tuple[int, ...], np.dtype, tuple[int, int],
                                     tuple[int, int, int]] | None:
    """(shape, dtype, (position, byte offset), (outer, dim, inner) strides) of a gather's
    data: a single unmasked view whose dims before and after ``dim`` each merge."""
    if not isinstance(arg, BufferRead):
        return None
    info = buffers[arg.buffer]
    if arg.view is None:
        shape, strides, offset = tuple(info.shape), contiguous_strides(tuple(info.shape)), 0
    else:
        if len(arg.view.views) != 1 or arg.view.last.mask is not None:
            return None
        v = arg.view.last
        shape, strides, offset = tuple(v.shape), tuple(v.strides), v.offset
    if not shape or dim >= len(shape):
        return None
    outer = _merged_stride(shape[:dim], strides[:dim])
    inner = _merged_stride(shape[dim + 1:], strides[dim + 1:])
    if outer is None or inner is None or min(outer, inner, strides[dim]) < 0:
        return None
    return (shape, info.dtype, (position(arg.buffer), offset * info.dtype.itemsize),
            (outer, strides[dim], inner))


def index_call_for(step: ExternStep, buffers: dict[str, BufferInfo],
                   position: Callable[[str], int], status: int, code: int
                   ) -> IndexCall | None:
    """The native form of a GATHER or SCATTER_ADD ``step``, or None when it has none:
    another op, operands that are no contiguous buffers (a gather's data may be any
    single view whose dims around ``dim`` merge), an empty or 0-d index, an index
    narrower than the data outside ``dim`` (torch allows it; NumPy's path handles it),
    a data dtype other than float32/float64, an index other than int32/int64."""
    node = step.node
    if node.op not in (Op.GATHER, Op.SCATTER_ADD):
        return None
    operands = [_contiguous_operand(a, buffers, position) for a in step.inputs[1:]]
    if any(o is None for o in operands) or not len(node.shape):
        return None
    (index_shape, index_dtype, index) = operands[0]  # type: ignore[misc]
    rank = len(index_shape)
    dim = node.attrs["dim"] % max(rank, 1)
    if node.op is Op.GATHER:
        found = _strided_data(step.inputs[0], buffers, position, dim)
    else:
        contiguous = _contiguous_operand(step.inputs[0], buffers, position)
        found = None if contiguous is None else (*contiguous, (0, 0, 0))
    if found is None:
        return None
    data_shape, dtype, data, strides = found
    if dtype not in _REAL or index_dtype not in _INT or rank == 0 or len(data_shape) != rank:
        return None
    if 0 in index_shape or 0 in data_shape or np.dtype(node.dtype) != dtype:
        return None
    if any(a != b for d, (a, b) in enumerate(zip(index_shape, data_shape)) if d != dim):
        return None
    src = None
    outer = int(np.prod(index_shape[:dim], dtype=np.int64))
    inner = int(np.prod(index_shape[dim + 1:], dtype=np.int64))
    if node.op is Op.SCATTER_ADD:
        src_shape, src_dtype, src = operands[1]  # type: ignore[misc]
        if src_shape != index_shape or src_dtype != dtype:
            return None   # a wider src is read through a box: NumPy's path
        strides = (data_shape[dim] * inner, inner, 1)
    op = "gather" if node.op is Op.GATHER else "scatter_add"
    return IndexCall(op, dtype, index_dtype, outer, index_shape[dim], inner, data_shape[dim],
                     data, index, src, position(step.output), status, code, strides)


# the integers an index loop takes as arguments (NOTE (size table), runtime.driver_ints)
_SIZES = ("total", "inner", "mid", "size", "st0", "st1", "st2", "nbytes")


def _sizes(call: IndexCall) -> tuple[int, ...]:
    """The values of ``_SIZES`` for ``call``."""
    return (call.outer * call.mid * call.inner, call.inner, call.mid, call.size,
            *call.strides, call.outer * call.size * call.inner * call.dtype.itemsize)


def index_function(name: str, call: IndexCall) -> str:
    """LLVM IR of ``i64 @name(ptr data, ptr index, ptr src, ptr out, i64 sizes...)``
    (``_SIZES``: arguments, so a symbolic program's driver passes them from its size
    table): 0 when done, 1 at the first bad index (see the module doc)."""
    real, ints = _REAL[call.dtype], _INT[call.index_dtype]
    sizes = ", ".join(f"i64 %{s}" for s in _SIZES)
    lines = [f"define internal i64 @{name}(ptr noalias %data, ptr noalias %index, "
             f"ptr noalias %src, ptr noalias %out, {sizes}) {{", "entry:"]
    if call.op == "scatter_add":   # the result starts as a copy of the base
        lines.append("  call void @llvm.memcpy.p0.p0.i64(ptr %out, ptr %data, i64 %nbytes, "
                     "i1 false)")
    lines += [
        "  br label %loop",
        "loop:",
        "  %p = phi i64 [ 0, %entry ], [ %next, %store ]",
        f"  %ip = getelementptr {ints}, ptr %index, i64 %p",
        f"  %raw = load {ints}, ptr %ip",
    ]
    lines.append("  %j0 = sext i32 %raw to i64" if ints == "i32" else "  %j0 = add i64 %raw, 0")
    lines += [
        "  %neg = icmp slt i64 %j0, 0",
        "  %wrapped = add i64 %j0, %size",
        "  %j = select i1 %neg, i64 %wrapped, i64 %j0",
        # NOTE: unsigned: a still-negative index is huge, so one compare checks both ends
        "  %bad = icmp uge i64 %j, %size",
        "  br i1 %bad, label %fail, label %store",
        "store:",
        "  %i = urem i64 %p, %inner",
        "  %om = udiv i64 %p, %inner",
        "  %o = udiv i64 %om, %mid",
        "  %row = mul i64 %o, %st0",
        "  %col = mul i64 %j, %st1",
        "  %in = mul i64 %i, %st2",
        "  %rowj = add i64 %row, %col",
        "  %at = add i64 %rowj, %in",
    ]
    if call.op == "gather":
        lines += [f"  %from = getelementptr {real}, ptr %data, i64 %at",
                  f"  %v = load {real}, ptr %from",
                  f"  %to = getelementptr {real}, ptr %out, i64 %p",
                  f"  store {real} %v, ptr %to"]
    else:
        lines += [f"  %from = getelementptr {real}, ptr %src, i64 %p",
                  f"  %v = load {real}, ptr %from",
                  f"  %to = getelementptr {real}, ptr %out, i64 %at",
                  f"  %old = load {real}, ptr %to",
                  f"  %sum = fadd {real} %old, %v",
                  f"  store {real} %sum, ptr %to"]
    lines += [
        "  %next = add i64 %p, 1",
        "  %more = icmp ult i64 %next, %total",
        "  br i1 %more, label %loop, label %done",
        "done:",
        "  ret i64 0",
        "fail:",
        "  ret i64 1",
        "}",
    ]
    if call.op == "scatter_add":
        lines.append("declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)")
    return "\n".join(lines)


def index_call_lines(k: int, call: IndexCall, name: str, spell: Spell = literal) -> list[str]:
    """The driver's lines for call ``k``: load the operands' addresses, call ``name``
    (its sizes written by ``spell``), and on a bad index store ``code`` into the status
    word and return."""
    lines: list[str] = []
    refs = []
    sizes = []
    for size, value in zip(_SIZES, _sizes(call)):
        more, ref = spell(value, f"x{k}_{size}")
        lines += more
        sizes.append(f"i64 {ref}")
    for tag, operand in (("d", call.data), ("i", call.index), ("s", call.src),
                         ("o", (call.out, 0))):
        if operand is None:
            refs.append("null")
            continue
        pos, offset = operand
        ref = f"%x{k}_{tag}"
        lines += [f"  {ref}p = getelementptr i64, ptr %addrs, i64 {pos}",
                  f"  {ref} = load ptr, ptr {ref}p"]
        if offset or isinstance(spell, SizeTable):   # one that is 0 at some sizes only
            more, at = spell(offset, f"x{k}_{tag}b")
            lines += [*more, f"  {ref}o = getelementptr i8, ptr {ref}, i64 {at}"]
            ref += "o"
        refs.append(ref)
    lines += [
        f"  %r{k} = call i64 @{name}(ptr {refs[0]}, ptr {refs[1]}, ptr {refs[2]}, "
        f"ptr {refs[3]}, {', '.join(sizes)})",
        f"  %bad{k} = icmp ne i64 %r{k}, 0",
        f"  br i1 %bad{k}, label %fail{k}, label %ok{k}",
        f"fail{k}:",
        f"  %st{k} = getelementptr i64, ptr %addrs, i64 {call.status}",
        f"  store i64 {call.code}, ptr %st{k}",
        "  ret void",
        f"ok{k}:",
    ]
    return lines
