"""Reference interpreter of the loop-kernel IR: defines what a ``LoopKernel`` means.

All outer iterations run at once as NumPy vectors (they are independent by construction:
each writes its own outputs and reads only inputs); inner loops run in Python.  Slow, but
exact in the kernel's dtypes, so tests check fusion and lowering without LLVM.

``ELEMENTWISE`` (IR op name -> NumPy function) is the one scalar-semantics table shared
with constant folding in ``codegen.passes``.
"""
from __future__ import annotations

import math

import numpy as np

from .loop_ir import AccUpdate, DefineAcc, Instr, LoopKernel, Loop, Store


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-x))).astype(np.asarray(x).dtype)


def _erf(x):
    x = np.asarray(x)
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype)


def _sign(x):
    return np.sign(x)


ELEMENTWISE = {
    "NEG": np.negative, "EXP": np.exp, "LOG": np.log, "SIN": np.sin, "COS": np.cos,
    "SQRT": np.sqrt, "RECIP": np.reciprocal, "TANH": np.tanh, "SIGMOID": _sigmoid,
    "ERF": _erf, "ABS": np.abs, "SIGN": _sign, "FLOOR": np.floor, "CEIL": np.ceil,
    "ROUND": np.round, "LOG1P": np.log1p, "EXPM1": np.expm1, "NOT": np.logical_not,
    "ADD": np.add, "SUB": np.subtract, "MUL": np.multiply, "DIV": np.true_divide,
    "POW": np.power, "MAXIMUM": np.maximum, "MINIMUM": np.minimum, "CMPLT": np.less,
    "CMPLE": np.less_equal, "CMPGT": np.greater, "CMPGE": np.greater_equal,
    "CMPEQ": np.equal, "CMPNE": np.not_equal, "AND": np.logical_and, "OR": np.logical_or,
    "XOR": np.logical_xor, "IDIV": np.floor_divide, "MOD": np.remainder,
    "WHERE": np.where,
}


def eval_op(op: str, args: list, dtype: np.dtype):
    """Apply one IR op with NumPy semantics, producing ``dtype``."""
    if op == "CAST":
        return np.asarray(args[0]).astype(dtype)
    if op == "RECIP" and np.dtype(dtype).kind != "f":
        return (1 / args[0]).astype(dtype)
    with np.errstate(all="ignore"):
        out = ELEMENTWISE[op](*args)
    return np.asarray(out).astype(dtype, copy=False)


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
            if s.op == "CONST":
                env[s.out] = np.full(n, s.args[0], dtype=s.dtype)
            elif s.op == "LOAD":
                env[s.out] = buffers[s.args[0]][env[s.args[1]]]
            elif s.op == "ACC":
                env[s.out] = env[s.args[0]].copy()
            else:
                env[s.out] = eval_op(s.op, [env[a] for a in s.args], s.dtype)
        elif isinstance(s, Loop):
            for r in range(s.extent):
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
