"""Helpers for the codegen tests: a small graph builder and a NumPy reference evaluator.

Independent of the tracegrad frontend on purpose: codegen is tested on hand-built graphs.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tracegrad.codegen.graph import Graph
from tracegrad.codegen.scalar_ops import eval_op
from tracegrad.codegen.ops import COMPARISON, MOVEMENT, REDUCE, Op
from tracegrad.codegen.passes import apply_movement
from tracegrad.codegen.view import ShapeTracker


class Builder:
    """``b = Builder(); x = b.input((4, 8)); y = b.exp(x); g = b.graph(y)``."""

    def __init__(self):
        self.g = Graph()
        self.n_inputs = 0

    def input(self, shape, dtype="float32") -> int:
        node = self.g.add(Op.INPUT, (), tuple(shape), dtype, index=self.n_inputs)
        self.n_inputs += 1
        return node.id

    def const(self, value, dtype="float32") -> int:
        return self.g.add(Op.CONST, (), (), dtype, value=value).id

    def shape(self, x):
        return self.g.node(x).shape

    def dtype(self, x):
        return self.g.node(x).dtype

    def op(self, op: Op, *xs, **attrs) -> int:
        nodes = [self.g.node(x) for x in xs]
        if op in MOVEMENT:
            shape = apply_movement(ShapeTracker.from_shape(nodes[0].shape),
                                   _Fake(op, attrs)).shape
            dtype = nodes[0].dtype
        elif op in REDUCE:
            axes, keep = attrs["axes"], attrs.get("keepdim", False)
            attrs = {"axes": tuple(axes), "keepdim": keep}
            shape = tuple(1 if d in axes else n for d, n in enumerate(nodes[0].shape)
                          if keep or d not in axes)
            dtype = nodes[0].dtype if nodes[0].dtype != np.bool_ else np.dtype(np.int64)
        elif op is Op.MATMUL:
            a, c = nodes[0].shape, nodes[1].shape
            shape = np.broadcast_shapes(a[:-2], c[:-2]) + (a[-2], c[-1])
            dtype = np.result_type(nodes[0].dtype, nodes[1].dtype)
        else:
            shape = np.broadcast_shapes(*[n.shape for n in nodes])
            if op is Op.CAST:
                dtype = np.dtype(attrs["dtype"])
            elif op in COMPARISON:
                dtype = np.dtype(bool)
            elif op is Op.WHERE:
                dtype = np.result_type(nodes[1].dtype, nodes[2].dtype)
            else:
                dtype = np.result_type(*[n.dtype for n in nodes])
                if op is Op.DIV and dtype.kind != "f":
                    dtype = np.dtype(np.float64)
        return self.g.add(op, tuple(xs), tuple(shape), dtype, **attrs).id

    def __getattr__(self, name):
        op = Op[name.upper()]
        return lambda *xs, **attrs: self.op(op, *xs, **attrs)

    def graph(self, *outputs) -> Graph:
        self.g.outputs = list(outputs)
        return self.g


class _Fake:
    def __init__(self, op, attrs):
        self.op, self.attrs = op, attrs


def _windows(x, window, stride, dilation):
    x = np.ascontiguousarray(x)
    k = len(window)
    lead, spatial = x.shape[:-k], x.shape[-k:]
    out = tuple((n - d * (w - 1) - 1) // s + 1 for n, w, s, d in zip(spatial, window, stride, dilation))
    st = x.strides
    strides = st[:-k] + tuple(a * s for a, s in zip(st[-k:], stride)) + tuple(
        a * d for a, d in zip(st[-k:], dilation))
    return as_strided(x, lead + out + tuple(window), strides)


def eval_node(node, args):
    """NumPy semantics of one primitive (the meaning codegen must reproduce)."""
    op, a = node.op, node.attrs
    if op is Op.CAST:
        return args[0].astype(node.dtype)
    if op in REDUCE:
        fn = {Op.SUM: np.sum, Op.MAX: np.max, Op.MIN: np.min, Op.PROD: np.prod}[op]
        kw = {"dtype": node.dtype} if op in (Op.SUM, Op.PROD) else {}
        return np.asarray(fn(args[0], axis=tuple(a["axes"]), keepdims=a["keepdim"], **kw))
    if op is Op.RESHAPE:
        return args[0].reshape(a["shape"])
    if op is Op.PERMUTE:
        return args[0].transpose(a["perm"])
    if op is Op.EXPAND:
        return np.broadcast_to(args[0], a["shape"])
    if op is Op.SLICE:
        return args[0][tuple(a["index"])]
    if op is Op.PAD:
        x, pads = args[0], a["pads"]
        x = x[tuple(slice(max(-b, 0), n - max(-e, 0)) for (b, e), n in zip(pads, x.shape))]
        return np.pad(x, [(max(b, 0), max(e, 0)) for b, e in pads], constant_values=a["value"])
    if op is Op.WINDOWS:
        return _windows(args[0], a["window"], a["stride"], a.get("dilation", (1,) * len(a["window"])))
    if op is Op.MATMUL:
        return np.matmul(*args)
    if op is Op.ERF:
        return np.vectorize(math.erf, otypes=[np.float64])(args[0]).astype(node.dtype)
    if op in (Op.DIV,) and node.dtype.kind == "f":
        args = [x.astype(node.dtype) for x in args]
    return eval_op(op, args, node.dtype)


def eval_graph(graph: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Evaluate ``graph`` node by node with NumPy."""
    env = {}
    for n in graph.nodes:
        if n.op is Op.INPUT:
            env[n.id] = np.asarray(inputs[graph.inputs.index(n.id)])
        elif n.op is Op.CONST:
            env[n.id] = np.asarray(n.attrs["value"], dtype=n.dtype)
        else:
            with np.errstate(all="ignore"):
                env[n.id] = np.asarray(eval_node(n, [env[i] for i in n.inputs]))
            assert env[n.id].shape == n.shape, (str(n), env[n.id].shape)
    return [env[o] for o in graph.outputs]


def extern_eval(node, arrays):
    """Stand-in for the frontend's primitive registry (what CompiledProgram calls)."""
    return eval_node(node, arrays)


def run_interp(program, inputs):
    """Execute a Program with the loop-IR interpreter (externs through NumPy)."""
    from tracegrad.codegen.interp import run_kernel
    from tracegrad.codegen.schedule import Constant, KernelStep
    env = {}
    for name, x in zip(program.inputs, inputs):
        env[name] = np.ascontiguousarray(x).reshape(-1)
    for info in program.buffers.values():
        if info.value is not None:   # Storage.CONSTANT: a symbolic kernel's parameters
            env[info.name] = np.asarray(info.value).reshape(-1)
        elif info.kind != "input":
            env.setdefault(info.name, np.zeros(int(np.prod(info.shape)), dtype=info.dtype))
    for step in program.steps:
        if isinstance(step, KernelStep):
            bufs = {arg.name: env[b] for arg, b in zip(step.kernel.buffers, step.buffers)}
            run_kernel(step.kernel, bufs)
        else:
            from tracegrad.codegen.view import gather_numpy
            args = []
            for arg in step.inputs:
                if isinstance(arg, Constant):
                    args.append(arg.array())
                    continue
                b, view = arg.buffer, arg.view
                info = program.buffers[b]
                base = env[b].reshape(info.shape)
                args.append(base if view is None else gather_numpy(view, base))
            name = [n for n, i in program.buffers.items() if i.node == step.node.id][0]
            env[name] = np.asarray(eval_node(step.node, args), dtype=step.node.dtype).reshape(-1)
    outs = []
    for spec in program.outputs:
        from tracegrad.codegen.view import gather_numpy
        if spec.kind == "buffer":
            outs.append(env[spec.buffer].reshape(spec.shape))
        elif spec.kind == "input":
            outs.append(inputs[spec.index])
        elif spec.kind == "const":
            base = np.array(spec.value, dtype=spec.dtype)
            outs.append(np.broadcast_to(base if spec.view is None else gather_numpy(spec.view, base), spec.shape))
        else:
            info = program.buffers[spec.buffer]
            outs.append(gather_numpy(spec.view, env[spec.buffer].reshape(info.shape)))
    return outs
