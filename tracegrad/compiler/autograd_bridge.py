"""Joining a compiled call to the eager autograd graph as one node.

Each output tensor gets a small ``OutputNode`` whose rule hands its gradient, tagged
with the output's position, to the call's shared ``CallNode``; the engine sums those
tags into one ``GradBundle`` (the ``+`` below), so the compiled backward program runs
once per backward pass, with every output's gradient at hand.
"""
from __future__ import annotations

import numpy as np

from .._primitives.registry import Primitive
from .._tensor import Tensor, _wrap
from ..autograd.node import Node
from ..codegen.ops import Op


class GradBundle:
    """Gradients of some of a compiled call's outputs, by output position."""

    __slots__ = ("grads",)

    def __init__(self, grads: dict) -> None:
        self.grads = grads

    def __add__(self, other: "GradBundle") -> "GradBundle":
        merged = dict(self.grads)
        for k, g in other.grads.items():
            merged[k] = merged[k] + g if k in merged else g
        return GradBundle(merged)

    def detach(self) -> "GradBundle":
        return self


def _output_vjp(g, node):
    return (GradBundle({node.attrs["position"]: g}),)


_OUTPUT_PRIM = Primitive(Op.INPUT, "compiled_output", None, None, _output_vjp,
                         lambda needs_grad: ())


def _make_node(prim, inputs, attrs) -> Node:
    node = Node.__new__(Node)
    node.prim = prim
    node.inputs = inputs
    node.attrs = attrs
    node.needs_grad = tuple(isinstance(x, Tensor) and bool(x._requires_grad) for x in inputs)
    node.versions = tuple(x._version[0] if isinstance(x, Tensor) else 0 for x in inputs)
    node.edges = tuple(x.grad_fn if isinstance(x, Tensor) else None for x in inputs)
    node.hooks = None
    node.shown_as = None   # named by its prim (node.name() reads it, e.g. in the in-place check)
    node.retained = None
    node.out_data = None
    node.out_counter = None
    return node


def attach(outputs: list[Tensor], diff_inputs: list[Tensor], backward_fn, name: str,
           reads: list) -> None:
    """Make ``outputs`` differentiable: their gradients flow into ``backward_fn(bundle)``,
    which returns one gradient (or None) per tensor of ``diff_inputs``. ``reads``: the
    inputs (differentiable or not) whose values the backward program reads, checked
    against in-place changes as for any primitive."""
    checked = tuple(range(len(diff_inputs), len(diff_inputs) + len(reads)))
    call_prim = Primitive(Op.INPUT, name, None, None,
                          lambda bundle, node: backward_fn(bundle), lambda needs_grad: checked)
    call = _make_node(call_prim, tuple(diff_inputs) + tuple(reads), {})
    # the read-only inputs get no gradient (the engine zips gradients with needs_grad)
    call.needs_grad = call.needs_grad[:len(diff_inputs)] + (False,) * len(reads)
    anchor = _wrap(np.zeros(()))  # stands for "all outputs of this call" in the graph
    anchor.grad_fn = call
    anchor._requires_grad = True
    for position, out in enumerate(outputs):
        if out is None or out._data.dtype.kind != "f":
            continue
        out.grad_fn = _make_node(_OUTPUT_PRIM, (anchor,), {"position": position})
        out._requires_grad = True
