"""Reference interpreter of the loop-kernel IR: defines what a ``LoopKernel`` means.

All outer iterations run at once as NumPy vectors (they are independent by construction:
each writes its own outputs and reads only inputs); inner loops run in Python.  Slow, but
exact in the kernel's dtypes, so tests check fusion and lowering without LLVM.

Scalar ops mean what ``codegen.scalar_ops.SCALAR_OPS`` says: the NumPy semantics table
that eager mode and constant folding use too.
"""
from __future__ import annotations

import numpy as np

from .loop_ir import AccUpdate, DefineAcc, Instr, LoopKernel, Loop, Store
from .ops import Op
from .scalar_ops import eval_op


def run_kernel(kernel: LoopKernel, buffers: dict[str, np.ndarray]) -> None:
    """Run ``kernel`` for all outer iterations on flat NumPy ``buffers`` (by name); the
    kernel's element 0 of each buffer is element ``BufferArg.offset`` of the array."""
    if kernel.outer == 0:
        return
    if any(arg.offset for arg in kernel.buffers):
        buffers = dict(buffers)
        for arg in kernel.buffers:
            if arg.offset:
                buffers[arg.name] = buffers[arg.name][arg.offset:]  # a view: stores land
    env = {kernel.outer_var: np.arange(kernel.outer, dtype=np.int64)}
    _run_body(kernel.body, env, buffers, kernel.outer)


def _run_body(body, env, buffers, n):
    for s in body:
        if isinstance(s, Instr):
            if s.op is Op.CONST:
                env[s.out] = np.full(n, s.args[0], dtype=s.dtype)
            elif s.op is Op.LOAD:
                env[s.out] = buffers[s.args[0]][env[s.args[1]]]
            elif s.op is Op.ACC:
                env[s.out] = env[s.args[0]].copy()
            else:
                env[s.out] = eval_op(s.op, [env[a] for a in s.args], s.dtype)
        elif isinstance(s, Loop):
            # a parameter extent (NOTE (kernel parameters)) is the same in every iteration
            extent = s.extent if isinstance(s.extent, int) else int(env[s.extent][0])
            for r in range(extent):
                env[s.var] = np.full(n, r, dtype=np.int64)
                _run_body(s.body, env, buffers, n)
        elif isinstance(s, DefineAcc):
            env[s.acc] = np.full(n, s.init, dtype=s.dtype)
            env[s.acc + ".op"] = s.op
        elif isinstance(s, AccUpdate):
            acc = env[s.acc]
            env[s.acc] = eval_op(env[s.acc + ".op"], [acc, env[s.value]], acc.dtype)
        elif isinstance(s, Store):
            buffers[s.buf][env[s.index]] = env[s.value]
        else:
            raise TypeError(f"unknown statement {s!r}")
