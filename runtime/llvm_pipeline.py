"""How LLVM turns a kernel's IR into machine code: the IR pass pipeline and the code
generator's settings (``runtime.llvm_jit`` names them in every cache key).

>>> with kernel_codegen():
...     kernel_codegen_active()
True
>>> kernel_codegen_active()
False
"""
from __future__ import annotations

import contextlib
import os
import threading
from typing import Iterable, Iterator

import llvmlite.binding as llvm

from ..codegen.render_llvm import LIGHT_PIPELINE
from ..codegen.render_llvm_vector import VECTOR_PIPELINE
from . import llvm_shards

# Names the pass pipeline ``optimize`` runs and the code generator's settings
# (``kernel_codegen``): a change to either must miss old cache entries.
PIPELINE = ("O3 or (sources marked light) O1 + loop and SLP vectorisers; vectorise+interleave, "
            "no unroll; (sources marked vector) SROA only; "
            "then always-inline + globaldce + instcombine + simplifycfg where a function is "
            "alwaysinline; "
            "codegen without LSR")
# NOTE (glue at O0): ``opt_level=0`` skips the IR passes and selects instructions with
# LLVM's fast path. It is for straight-line glue such as a program's driver (a list of
# calls through a table of addresses), where O3 finds nothing to improve: the LSTM's 32
# drivers over 4 lengths (up to 1069 lines each) took 441-485 ms at O3 and 114-138 ms at
# O0, a third of that workload's whole LLVM time; the calls they make are unchanged.
PIPELINE_O0 = "no IR passes, codegen O0"

# NOTE (O1 with the vectorisers): a module whose every kernel source starts with the
# renderer's light-pipeline line (NOTE (light pipeline) in codegen.render_llvm) runs LLVM's
# O1 pipeline with the loop and SLP vectorisers asked for (clang's -O1 turns them off;
# here the tuning options below switch both on at every level). What
# O2/O3 add on top (GVN, non-trivial loop unswitching, the aggressive instcombine, more
# rounds of the same clean-ups) finds nothing in such kernels, SSA loops of loads, math and
# stores with no calls and no condition on an index: the row kernels' objects differ only in
# register choice and block order (log_softmax's streamed last loop keeps one branch on the
# row's alignment per 256-byte block instead of two unswitched copies of the loop), GELU's
# and layer_norm's are identical, and all give the same bits. It costs 15-20% less CPU
# (min of 3, one process): log_softmax 4096x1024 16.9 -> 13.6 ms of passes, softmax 14.3 ->
# 12.0, layer_norm 9.3 -> 8.0. Of the 176 kernels of the seed, CNN, LSTM, digits SGD and
# Adam, elementwise and rownorm (quick) benchmarks, 142 are light, and each of the 176
# gives the same instruction mix as at O3 (O1 for all would have changed three).
# NOTE (what did not pay), measured on log_softmax 4096x1024 (LLVM CPU ~22 ms at O1: passes
# ~13, code generation ~9, of which ~7 are fixed cost even for a 10-line loop):
# - no interleaving (pto.loop_interleaving off, or an interleave count of 1-2 on the exp
#   loop): 2-5 ms less to compile, 5-20% slower rows (one vector chain in flight);
# - rendering loop-invariant math (log(sum)) before the last loop instead of leaving it to
#   LICM, and storing a streamed line as four 16-lane stores instead of one 64-lane
#   store: the same CPU within 0.3 ms;
# - code generator options (machine scheduler off, -pre-RA-sched=source, basic register
#   allocation, codegen O2): within 0.3 ms, or more instructions;
# - warming LLVM up on a thread at the first call of a fresh process: 15-25 ms saved
#   when the call comes 200 ms later, 20-40 ms lost when it comes at once (the warm-up
#   and the compile share the two cores).
# The same, for modules of vector IR (NOTE (short pipeline)), emit of log_softmax's kernel
# ~9 ms CPU (thread CPU, median of 15, one process, load ~5):
# - machine scheduler off (-enable-misched=false): 9.0 -> 8.1 ms, 344 -> 333 instructions;
#   the four rownorm kernels' LLVM CPU 0.15-0.8 ms less (softmax 10.9 / 10.6, log_softmax
#   12.7 / 11.9, layer_norm 7.9 / 7.4, GELU 16M 6.6 / 6.5, median of 9) and steady CPU per
#   call the same within noise (softmax 1.34 / 1.38 ms, log_softmax 1.41 / 1.40,
#   cross_entropy fwd+bwd 2.45 / 2.48). Left on: under a millisecond, and the option is
#   process-wide while a batch links vector and scalar kernels into one module;
# - post-RA scheduler off: the same code and time; -fast-isel: 360 instructions, 9.2 ms;
#   code generation at O1 / O2: 8.7 / 9.0 ms against 9.2 (341 instructions);
# - LLVM's first use in a process: the first kernel's parse + passes + emit costs 19-24 ms
#   of CPU against ~15 for the next (the target machine builds its X86 subtarget tables on
#   first use; with the disk cache off the first call also builds the thread pool's and the
#   lone-call blocks' modules at O0, 6.5 and 2.5 ms). Compiling a 5-line vector kernel
#   first (same target machine and attributes) cut the first kernel to 14-20 ms but itself
#   cost 9-11 ms: a net loss done in line, and on a thread at decoration time a win only
#   where a core is idle while the call traces and renders (not on the loaded 2-core VM).
def speed_level(sources: Iterable[str]) -> int:
    """0 when every source of a module is marked vector (NOTE (short pipeline)), 1 when
    every one is marked light or vector, else 3."""
    sources = list(sources)
    if all(s.startswith(VECTOR_PIPELINE) for s in sources):
        return 0
    return 1 if all(s.startswith((LIGHT_PIPELINE, VECTOR_PIPELINE)) for s in sources) else 3


# NOTE (short pipeline): a module of kernels the renderer wrote as vector code
# (NOTE (vector IR) in codegen.render_llvm_vector) needs from LLVM's passes only what its
# scalar frame leaves: accumulators and flags in stack slots, which SROA makes registers.
# No loop pass: there is nothing left to vectorise, and the renderer hoisted the
# loop-invariant values itself. instcombine and simplifycfg ran here too, until the
# renderer wrote each copy's address as instcombine left it (NOTE (copy addresses));
# then they bought nothing the code generator does not do itself: the same machine
# instructions within 1% (softmax 4096x1024 239 -> 235, log_softmax 339 -> 330,
# layer_norm 133 -> 132, GELU 16M 153 -> 148), the same bits, the same steady time
# within noise (ms per call, median of 40 blocks of 5, one thread, interleaved, load
# 2-3, with / without: softmax 1.157 / 1.057, log_softmax 0.961 / 0.964, layer_norm
# with weight and bias 0.800 / 0.817, GELU 3.04 / 3.19, cross_entropy's backward
# 1.130 / 1.128), for 1.2-1.5 ms more CPU a row kernel (passes, thread CPU, median
# of 9: softmax 1.47 -> 0.21 ms, log_softmax 1.71 -> 0.22, layer_norm 0.70 -> 0.19,
# cross_entropy's backward 1.78 -> 0.23); instcombine was 85-90% of it. simplifycfg
# alone cost 0.05 ms and changed no instruction count.
# NOTE (verify kept): ``runtime.llvm_jit`` verifies every parsed source, renderer-made
# IR too, though the tests already verify each rendering: 0.08-0.19 ms a row kernel
# (thread CPU, median of 9: softmax 0.16, log_softmax 0.17, layer_norm 0.08,
# cross_entropy's backward 0.17), 1-2% of its LLVM CPU. Skipping it outside
# TRACEGRAD_DEBUG was not worth it: LLVM's release build does not check IR in the code
# generator, so a renderer bug would crash the process or run wrong code where it now
# raises and the function falls back to eager.
def _short_pipeline(mod: llvm.ModuleRef, tm: llvm.TargetMachine, unlocked: bool) -> None:
    pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=0))
    mpm = llvm.create_new_module_pass_manager()
    mpm.add_sroa_pass()
    llvm_shards.run_passes(pb, mod, unlocked, mpm)


def optimize(mod: llvm.ModuleRef, tm: llvm.TargetMachine, unlocked: bool = False,
             level: int = 3) -> None:
    """Run the kernels' IR pipeline (``PIPELINE``) over ``mod`` for ``tm``'s target at
    ``level`` (``speed_level`` of the module's sources)."""
    if level not in (0, 1, 3):
        raise ValueError(f"optimize: level must be 0, 1 or 3, got {level!r}")
    if level == 0:
        _short_pipeline(mod, tm, unlocked)
        return
    pto = llvm.create_pipeline_tuning_options(speed_level=level)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    # NOTE (no unrolling): O3's unroller fully unrolls a kernel's short inner loops (a
    # broadcast row of 16, a 3x3 window, a 1024-long row's vector loop), after which the
    # vectoriser widens the *outer* loop with 16-lane gathers and scatters: 10x the IR
    # (one 41-line kernel became 3585 lines), 3-5x the opt + codegen time, and slower
    # code than the inner loop vectorised in place. The vectoriser's own interleaving
    # stays on: it is what keeps several vector loads in flight on long loops.
    pto.loop_unrolling = False
    llvm_shards.run_passes(llvm.create_pass_builder(tm, pto), mod, unlocked)
    _inline_vector_variants(mod, tm, unlocked)


# NOTE (inlined vector variants): the vectoriser widens a call of float64 sin/cos into a
# call of the function's vector version (NOTE (vector variants) in
# codegen.llvm_vector_calls), which it cannot inline itself. A call in the loop costs
# its constants: the callee loads each of its ~30 from memory on every call (the JIT's
# large code model: a movabs for each address), where inline code keeps them in
# registers across iterations. The vector versions are ``alwaysinline`` (the pipeline's
# own always-inliner runs before the vectoriser, when nothing calls them yet), and this
# second run inlines them where the vectoriser called them, drops them (20 ms of code
# generation each), then cleans up; the slow path stays a call in a cold block. Float64 sin, cos and sin + cos over 8K-64K
# in-cache elements: 1.08-1.16x the time of the old inline code with the calls, 1.00-1.03x
# inlined (medians of 300 interleaved runs, load 5.5).
def _inline_vector_variants(mod: llvm.ModuleRef, tm: llvm.TargetMachine,
                            unlocked: bool) -> None:
    variants = [f for f in mod.functions if not f.is_declaration
                and any(b"alwaysinline" in a for a in f.attributes)]
    if not variants:
        return
    for f in variants:   # inlined wherever called: the code generator can skip them
        f.linkage = llvm.Linkage.internal
    pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=0))
    mpm = llvm.create_new_module_pass_manager()
    mpm.add_always_inliner_pass()
    mpm.add_global_dead_code_eliminate_pass()
    mpm.add_instruction_combine_pass()
    mpm.add_simplify_cfg_pass()
    llvm_shards.run_passes(pb, mod, unlocked, mpm)


# NOTE (no LSR): the code generator's loop strength reduction searches formulae for every
# address of a loop; over a vectorised, 4x interleaved row loop that search was 20 of the
# 50 million instructions (callgrind) that emitting layer_norm's kernel took, and 20 of
# 78 million for softmax's, yet x86 addressing (base + index*scale + offset) leaves it
# little to win: with it off, the 124 kernels of the rownorm, elementwise, CNN, seed,
# LSTM and digits benchmarks emit in 25% less CPU (966 -> 715 ms summed, min of 2), and
# the row kernels' steady state did not move beyond noise (benchmarks in the commit).
# LLVM reads the switch (a process-wide command-line option) when it builds a code
# generation pipeline, i.e. inside every emit call, so it is set only while this
# module's caller emits kernels, and set back after: another llvmlite user in the
# process (numba) keeps LLVM's default.
_DISABLE_LSR = "-disable-lsr"
_lock = threading.RLock()
_depth = 0


@contextlib.contextmanager
def kernel_codegen() -> Iterator[None]:
    """The code generator set up for kernels (NOTE (no LSR)) while the block runs; wrap
    every emit of a kernel object or its assembly, all threads of a batch at once."""
    global _depth
    with _lock:
        if _depth == 0:
            llvm.set_option("", f"{_DISABLE_LSR}=true")
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
            if _depth == 0:
                llvm.set_option("", f"{_DISABLE_LSR}=false")


def kernel_codegen_active() -> bool:
    """True inside ``kernel_codegen`` (for tests)."""
    return _depth > 0


def _reset_after_fork() -> None:
    # NOTE: a lock another thread held at fork time stays held forever in the child.
    global _lock, _depth
    _lock = threading.RLock()
    _depth = 0   # the option may stay set: the next kernel_codegen clears it on its way out


os.register_at_fork(after_in_child=_reset_after_fork)
