"""A run of ONE native step needs no generated driver (``runtime.driver``).

NOTE (lone calls): a program of one kernel (softmax, log_softmax or layer_norm rows)
used to compile a driver of its own at O0 for that one call: an LLVM module, ~1.2-1.6 ms
of fixed codegen work on the quiet 2-core VM (a 3-line function costs the same), plus
its disk entry. Such a run is now called from Python instead, in the same one ctypes
call per run:

- a kernel on one thread: ``kernel(0, outer, *addresses)`` (``LoneKernel``);
- a kernel split over the native pool: ``tg_dispatch(chunks, 0, state,
  tg_kernel_blocks, ctx)`` (``LoneSplit``), where ``tg_kernel_blocks`` (``BLOCKS_SOURCE``,
  compiled once per process when the first such program needs it) is the driver's
  trampoline made generic: it reads the kernel, its outer extent and its arguments'
  positions in the program's address table from ``ctx`` and calls the kernel on chunk
  ``c`` of ``n`` over ``[outer * c / n, outer * (c + 1) / n)``, the blocks a driver's
  trampoline cuts. Measured (CPU ms at O0, median of 25, load ~8): the pool's module
  3.2, with the trampoline inside it 4.4, so it is a module of its own, not part of the
  pool (a process whose splits all sit in drivers never pays it): 0.8-1.5 ms at 8
  arities, 0.7-2.0 at 16; a one-kernel driver 0.9-1.0.

Runs of two steps or more, gemms, index and table copies keep their drivers. A symbolic
program's lone kernel is a lone call too: the program is built per size (its outer
extent and chunk count are that size's), and the call goes through the same pool
dispatch as the specialised program's. Through a one-call size-table driver, softmax
rows 4096x1024 measured 1.10-1.18x the specialised program in the benchmark's symbolic
arm (a plain loop, an earlier VM: 0.88-0.93 vs 0.50-0.59 ms); as a lone call the two run
the same code (a plain loop here: 1.41-1.46 vs 1.46-1.54 ms), and the spread left in the
benchmark's ratio is measurement (``benchmarks.harness.paired_ratio``). Per call, the
same (7x3 exp: min 2.17 vs 2.33 us over 41 x 2000 calls; a split 512x1024: 108.6 vs
113.9 us). First call in a fresh process with this branch's other changes (NOTE (code
version cost), NOTE (one driver module per entry)), CPU ms, median of 20 interleaved
pairs at load ~8: log_softmax 43.1 -> 39.8, layer_norm 26.0 -> 23.4, softmax 40.7 ->
39.8 (the first lone split of a process compiles the trampoline instead of a driver),
seed step 73.8 -> 67.8.

>>> "define void @tg_kernel_blocks(i64 %chunk, i64 %chunks, ptr %ctx)" in BLOCKS_SOURCE
True
"""
from __future__ import annotations

import ctypes
import operator
from typing import Callable, Sequence

import numpy as np

from .driver import KernelCall, ParallelCall
from .llvm_jit import CpuKernel, compile_llvm

# kernels with more buffers than this keep a driver (the trampoline has a call per arity;
# a row kernel takes 2-5)
MAX_ARGUMENTS = 8
# ctx: kernel address, outer extent, address table, argument count, then the positions
_HEAD = 4


def _blocks_source() -> str:
    lines = ["define void @tg_kernel_blocks(i64 %chunk, i64 %chunks, ptr %ctx) {", "entry:",
             "  %fn = load ptr, ptr %ctx"]
    for k, name in ((1, "outer"), (2, "addrs_word"), (3, "n")):
        lines += [f"  %{name}p = getelementptr i64, ptr %ctx, i64 {k}",
                  f"  %{name} = load i64, ptr %{name}p"]
    lines += ["  %addrs = inttoptr i64 %addrs_word to ptr",
              "  %lo0 = mul i64 %outer, %chunk", "  %lo = udiv i64 %lo0, %chunks",
              "  %chunk1 = add i64 %chunk, 1", "  %hi0 = mul i64 %outer, %chunk1",
              "  %hi = udiv i64 %hi0, %chunks"]
    # every position is loaded (unused ones are 0: a valid slot), then one call per arity
    for j in range(MAX_ARGUMENTS):
        lines += [f"  %k{j}p = getelementptr i64, ptr %ctx, i64 {_HEAD + j}",
                  f"  %k{j} = load i64, ptr %k{j}p",
                  f"  %a{j}p = getelementptr i64, ptr %addrs, i64 %k{j}",
                  f"  %a{j} = load ptr, ptr %a{j}p"]
    cases = " ".join(f"i64 {n}, label %n{n}" for n in range(1, MAX_ARGUMENTS + 1))
    lines.append(f"  switch i64 %n, label %done [ {cases} ]")
    for n in range(1, MAX_ARGUMENTS + 1):
        args = ", ".join(f"ptr %a{j}" for j in range(n))
        lines += [f"n{n}:", f"  call void %fn(i64 %lo, i64 %hi, {args})", "  ret void"]
    return "\n".join(lines + ["done:", "  ret void", "}", ""])


BLOCKS_SOURCE = _blocks_source()
_blocks: list[CpuKernel] = []   # compiled on first use; holds the code for the process


def blocks_address() -> int:
    """The address of ``tg_kernel_blocks``, compiled on first use (once per process)."""
    if not _blocks:
        module = compile_llvm(BLOCKS_SOURCE, ["tg_kernel_blocks"], opt_level=0)
        _blocks.append(module.kernel("tg_kernel_blocks"))
    return _blocks[0].address

_DISPATCH = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                             ctypes.c_void_p, ctypes.c_void_p)


class LoneKernel:
    """A run of one kernel on one thread: the kernel itself, called from Python."""

    __slots__ = ("cfunc", "outer", "addresses")
    reads_table = False

    def __init__(self, address: int, outer: int, positions: Sequence[int]) -> None:
        argtypes = [ctypes.c_int64, ctypes.c_int64] + [ctypes.c_void_p] * len(positions)
        self.cfunc = ctypes.CFUNCTYPE(None, *argtypes)(address)
        self.outer = outer
        # a tuple of the kernel's addresses (itemgetter of one position returns the value)
        self.addresses: Callable[[list], tuple] = (
            operator.itemgetter(*positions) if len(positions) > 1
            else (lambda i: lambda a: (a[i],))(positions[0]))

    def run(self, arrays: list, addrs: list, table: tuple[np.ndarray, int]) -> None:
        self.cfunc(0, self.outer, *self.addresses(addrs))


class LoneSplit:
    """A run of one kernel split over the native pool: ``tg_dispatch`` called from Python
    with the generic trampoline (see the module doc). Reads the program's address table,
    refreshed first when ``refresh`` (as a driver would: NOTE (per-call cost))."""

    __slots__ = ("dispatch", "args", "ctx", "own_table", "refresh")
    reads_table = True

    def __init__(self, pool, address: int, outer: int, positions: Sequence[int],
                 chunks: int, table: tuple[np.ndarray, int], refresh: bool) -> None:
        padding = [0] * (MAX_ARGUMENTS - len(positions))
        self.ctx = np.array([address, outer, table[1], len(positions), *positions, *padding],
                            np.int64)   # kept alive: the trampoline reads it by address
        self.dispatch = _DISPATCH(pool.dispatch)
        self.args = (chunks, 0, pool.address, blocks_address(), self.ctx.ctypes.data)
        self.own_table = table[1]
        self.refresh = refresh

    def run(self, arrays: list, addrs: list, table: tuple[np.ndarray, int]) -> None:
        if self.refresh:
            table[0][:] = addrs
        if table[1] == self.own_table:
            self.dispatch(*self.args)
            return
        # a second thread's call runs on a table of its own (NOTE (threads), cpu_program)
        ctx = self.ctx.copy()
        ctx[2] = table[1]
        chunks, zero, state, blocks, _ = self.args
        self.dispatch(chunks, zero, state, blocks, ctx.ctypes.data)


def lone_call(run: list, fns: list[int], table: tuple[np.ndarray, int], refresh: bool,
              pool_of: Callable[[], object]) -> LoneKernel | LoneSplit | None:
    """The driverless call of ``run`` (a driver's native calls, ``runtime.driver``), or
    None where it needs its driver: more than one step, or a step other than a kernel."""
    if len(run) != 1:
        return None
    call = run[0]
    if isinstance(call, KernelCall) and len(call.positions) <= MAX_ARGUMENTS:
        return LoneKernel(fns[call.fn], call.outer, call.positions)
    if isinstance(call, ParallelCall) and isinstance(call.call, KernelCall) \
            and len(call.call.positions) <= MAX_ARGUMENTS:
        inner = call.call
        return LoneSplit(pool_of(), fns[inner.fn], inner.outer, inner.positions, call.chunks,
                         table, refresh)
    return None
