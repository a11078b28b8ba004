"""``Node``: one recorded primitive call in the autograd graph (a tensor's ``grad_fn``)."""
from __future__ import annotations

from .. import _tensor
from .._tensor import Tensor, _wrap, sync_view_history


class Node:
    """Holds the inputs, the attrs, and, for rules that read it, the forward output's
    storage. ``edges`` are the inputs' ``grad_fn`` at record time: an in-place op later
    gives an input a new ``grad_fn``, but this node's gradient still flows into the history
    the input had when it was read (as PyTorch's edges do). Version counters taken at record
    time let the engine detect in-place changes to anything the derivative rule will read."""

    __slots__ = ("prim", "inputs", "attrs", "needs_grad", "versions", "edges", "out_data",
                 "out_version", "out_counter", "hooks", "retained", "shown_as", "__weakref__")

    def __init__(self, prim, inputs, attrs, out) -> None:
        self.prim = prim
        self.inputs = inputs
        self.attrs = attrs
        needs, versions, edges = [], [], []
        check_views = _tensor.histories_rewritten
        for x in inputs:
            if isinstance(x, Tensor):
                if check_views and x._view is not None:
                    sync_view_history(x)  # NOTE (views) in _ops/views.py
                needs.append(x._requires_grad is True)  # None marks a legacy volatile
                versions.append(x._version[0])
                edges.append(x.grad_fn)
            else:
                needs.append(False)
                versions.append(0)
                edges.append(None)
        self.needs_grad = needs
        self.versions = versions
        self.edges = edges
        self.hooks = None
        self.retained = None
        self.shown_as = None
        if prim.saves_output:
            self.out_data = out._data
            self.out_counter = out._version
            self.out_version = out._version[0]
        else:
            self.out_data = None
            self.out_counter = None

    def name(self) -> str:
        """PyTorch's name for this node (``grad_fn.name()`` is a method in PyTorch too)."""
        if self.shown_as is not None:
            return self.shown_as[0]
        return torch_node_name(self.prim.name, self.attrs, self.inputs)

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"

    @property
    def next_functions(self) -> tuple:
        if self.shown_as is not None:
            _, inputs, edges = self.shown_as
        elif self.inputs is None:
            return ()
        else:
            inputs, edges = self.inputs, self.edges
        out = []
        for x, fn in zip(inputs, edges):
            if isinstance(x, Tensor) and x._requires_grad:
                out.append((fn if fn is not None else AccumulateGrad(x), 0))
            else:
                out.append((None, 0))
        return tuple(out)

    def output(self):
        """The forward output as a tensor that belongs to this node's graph."""
        if self.out_counter is not None and self.out_counter[0] != self.out_version:
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by "
                f"an inplace operation: the output of {self.prim.name} is at version "
                f"{self.out_counter[0]}; expected version {self.out_version} instead")
        out = _wrap(self.out_data)
        out.grad_fn = self
        out._requires_grad = True
        return out

    def register_hook(self, fn) -> None:
        if self.hooks is None:
            self.hooks = []
        self.hooks.append(fn)


class AccumulateGrad:
    """What ``next_functions`` shows for a leaf, as in PyTorch."""

    __slots__ = ("variable",)

    def __init__(self, variable) -> None:
        self.variable = variable

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    @property
    def next_functions(self) -> tuple:
        return ()

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {id(self):#x}>"


# PyTorch's node names where they are not the primitive's name in title case (PyTorch
# numbers overloads: ``x.sum()`` is SumBackward0, ``x.sum(dim)`` SumBackward1).
_TORCH_NAMES = {"recip": "Reciprocal", "cast": "ToCopy", "reshape": "View",
                "matmul": "Mm", "index_put": "IndexPut", "scatter_add": "ScatterAdd",
                "max": "Amax", "min": "Amin", "windows": "Unfold", "pad": "ConstantPadNd"}


def torch_node_name(prim_name: str, attrs, inputs) -> str:
    base = _TORCH_NAMES.get(prim_name) or "".join(p.title() for p in prim_name.split("_"))
    overload = 0
    inputs = inputs or (None, None)  # a freed graph keeps no inputs
    if prim_name == "sum" and attrs and (attrs.get("keepdim") or len(attrs.get("axes", ())) <
                                         getattr(inputs[0], "ndim", 0)):
        overload = 1  # sum over some dims
    elif prim_name == "pow" and inputs and isinstance(inputs[1], Tensor):
        overload = 1  # a tensor exponent
    elif prim_name == "matmul" and inputs and getattr(inputs[0], "ndim", 2) > 2:
        base = "Bmm"
    return f"{base}Backward{overload}"


def show_as(out, name: str, inputs) -> None:
    """Present the last node of a composite as PyTorch's single node: ``x.mean()`` computes
    ``sum(x) * (1/n)`` but reads as ``MeanBackward0`` whose next function is ``x``'s."""
    node = out.grad_fn
    if isinstance(node, Node):
        node.shown_as = (name, tuple(inputs),
                         tuple(x.grad_fn if isinstance(x, Tensor) else None for x in inputs))
