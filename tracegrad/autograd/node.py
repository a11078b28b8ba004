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
                 "out_version", "out_counter", "hooks", "retained", "__weakref__")

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
        if prim.saves_output:
            self.out_data = out._data
            self.out_counter = out._version
            self.out_version = out._version[0]
        else:
            self.out_data = None
            self.out_counter = None

    @property
    def name(self) -> str:
        return "".join(p.title() for p in self.prim.name.split("_")) + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name}>"

    def name_(self) -> str:  # torch exposes grad_fn.name()
        return self.name

    @property
    def next_functions(self) -> tuple:
        if self.inputs is None:
            return ()
        out = []
        for x, fn in zip(self.inputs, self.edges):
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

    def __repr__(self) -> str:
        return "<AccumulateGrad>"
