"""``Optimizer``: parameter groups, per-parameter state, ``state_dict`` round trips.

Subclasses implement ``_update_group(group)``; the base class runs it under ``no_grad``
for every group on ``step()``. Updates write into the parameters' NumPy storage in place
(``p._data``), so a ``Parameter`` keeps its identity and every view of it sees the new
values; each write bumps the parameter's version counter like a PyTorch in-place op.

>>> import tracegrad as torch
>>> from tracegrad.optim import SGD
>>> w = torch.tensor([1.0, 2.0], requires_grad=True)
>>> opt = SGD([w], lr=0.1)
>>> (w * w).sum().backward(); opt.step(); w
tensor([0.8000, 1.6000], requires_grad=True)
"""
from __future__ import annotations

import copy
from collections import defaultdict
from typing import Callable, Iterable

import numpy as np

from .._ops.pytorch_args import UnsupportedArgumentError
from .._tensor import Tensor, _wrap
from .._untraced import user_call
from ..autograd.grad_mode import enable_grad, no_grad
from . import _capture
from ._hooks import OptimizerHooks, with_step_hooks
from ._hooks import (register_optimizer_step_post_hook,  # noqa: F401 - PyTorch's place
                     register_optimizer_step_pre_hook)
from .param_group import ParamGroup


class _RequiredParameter:
    """Marks a hyper-parameter without a default (``lr`` of some optimizers)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _typename(obj) -> str:
    if isinstance(obj, Tensor):
        return f"tracegrad.Tensor (dtype {obj.dtype}, shape {tuple(obj.shape)})"
    return type(obj).__module__ + "." + type(obj).__qualname__


def _split_names(params: list) -> tuple[list, list | None]:
    """``(name, tensor)`` pairs, as ``model.named_parameters()`` yields them, become the
    tensors and the group's ``param_names`` (PyTorch 2.6+); plain tensors stay as they are."""
    named = [isinstance(p, tuple) for p in params]
    if not any(named):
        return params, None
    if not all(named):
        raise ValueError("all optimizer params should be with/without names. Some param "
                         "names are missing")
    bad = [p for p in params if len(p) != 2 or not isinstance(p[0], str)]
    if bad:
        raise TypeError(f"optimizer params given as tuples must be (name, Tensor) pairs as "
                        f"named_parameters() yields them, but got {_typename(bad[0])} of "
                        f"length {len(bad[0])}")
    return [p for _, p in params], [n for n, _ in params]


class Optimizer(OptimizerHooks):
    """Base class of all optimizers (PyTorch's ``torch.optim.Optimizer``).

    ``params`` is an iterable of tensors, or of dicts that each hold ``"params"`` and
    per-group options overriding ``defaults``.
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:   # LBFGS's or a user's own step: hooks, and tracing
            cls.step = with_step_hooks(_capture.custom_step(cls.__dict__["step"]))

    def __init__(self, params: Iterable, defaults: dict) -> None:
        if defaults.get("fused"):
            # PyTorch's checks and words (torch/optim/adam.py and the others with fused=)
            if defaults.get("foreach"):
                raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
            if defaults.get("differentiable"):
                raise RuntimeError("`fused` does not support `differentiable`")
        if defaults.get("differentiable"):
            # NOTE: refused rather than ignored: a caller asking for it differentiates
            # through step(), and would silently get no gradient
            raise UnsupportedArgumentError(
                f"{type(self).__name__}(differentiable=True): tracegrad's updates write the "
                f"parameters in place outside autograd, so step() cannot be differentiated; "
                f"pass differentiable=False")
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {_typename(params)}")
        if isinstance(params, dict):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got a dict; wrap one group in a list: [group]")
        if isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs; "
                            "please use a list instead")
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ---- groups ------------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters (a dict with ``"params"`` and optional options)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {_typename(param_group)}")
        params = param_group["params"] if "params" in param_group else None
        if params is None:
            raise ValueError("param_group must have a 'params' entry")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs; "
                            "please use a list instead")
        else:
            params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        params, names = _split_names(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params "
                                f"is {_typename(p)}")
            if not p.is_leaf:
                raise ValueError(f"can't optimize a non-leaf Tensor (shape {tuple(p.shape)}, "
                                 f"grad_fn={type(p.grad_fn).__name__}); optimize the leaf it "
                                 f"was computed from, or call .detach().requires_grad_()")
        seen: set[int] = set()
        for p in params:
            if id(p) in seen:
                raise ValueError(f"optimizer contains a parameter group with duplicate "
                                 f"parameters (shape {tuple(p.shape)})")
            seen.add(id(p))
        if self.param_groups and (names is None) != ("param_names" not in self.param_groups[0]):
            raise ValueError("all optimizer param groups should be with/without names. "
                             "Some param groups have param_names and some do not")
        group = ParamGroup(param_group)   # NOTE (param groups written in a trace)
        group["params"] = params
        if names is not None:
            group["param_names"] = names
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if not existing.isdisjoint(seen):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # ---- gradients ---------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's ``.grad`` (to None by default, else to zeros in place)."""
        tracer = _capture.tracer()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if tracer is not None:   # NOTE (training step capture), compiler/tracer.py
                    if set_to_none:
                        tracer.note_grad(p, cleared=True)
                        p.grad = None
                    else:
                        with no_grad():
                            p.grad.zero_()
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    g = p.grad
                    if g.grad_fn is not None:
                        g = g.detach()
                        p.grad = g
                    g._requires_grad = False
                    g._data[...] = 0
                    g._version[0] += 1

    def _state_restorer(self) -> Callable[[], None]:
        """Puts ``state`` back as it is now: a traced ``step()`` makes state (SGD's momentum
        buffer, Adam's moments) that an unused trace must not leave behind, since eager
        mode's first step differs from later ones (SGD copies the gradient into a new
        buffer; it would dampen it into a zero buffer)."""
        saved = {p: (s, dict(s)) for p, s in self.state.items()}

        def restore() -> None:
            for p in list(self.state):
                if p not in saved:
                    del self.state[p]
            for p, (inner, items) in saved.items():
                inner.clear()
                inner.update(items)
                self.state[p] = inner
        return restore

    # ---- stepping ----------------------------------------------------------------------
    @with_step_hooks
    def step(self, closure: Callable | None = None):
        """One update of every parameter that has a gradient; returns ``closure()``'s loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = user_call(closure)   # NOTE (untraced stretches)
        with no_grad():
            if _capture.tracer() is not None:
                _capture.tracer().undo.append(self._state_restorer())
                _capture.guard_groups(self)
                for group in self.param_groups:
                    _capture.tracer().mark_update_group()   # NOTE (horizontal fusion)
                    self._trace_group(group)
            else:
                fused = [group for group in self.param_groups if group.get("fused")]
                if fused:
                    self._fused_step(fused)
                for group in self.param_groups:
                    if not group.get("fused"):
                        self._update_group(group)
        return loss

    def _fused_step(self, groups: list) -> None:
        """``fused=True``: the updates of ``groups`` as one compiled program (the rules of
        ``_capture``: one fused kernel per parameter, hyper-parameters read at every call,
        retraced when a guard of ``_capture`` fails) instead of a Python loop of ops.

        The gradients are the program's arguments, so a ``.grad`` replaced at every step
        (``zero_grad()`` then ``backward()``) is no stale capture; one program per set of
        parameters that have a gradient."""
        params = [p for group in groups for p in group["params"] if p.grad is not None]
        if not params:
            return
        programs = self.__dict__.setdefault("_fused_programs", {})
        key = tuple(id(p) for p in params)
        program = programs.get(key)
        if program is None:
            # NOTE: compile sits above optim in the layers (DESIGN.md); only fused=True
            # needs it, so the import is made here, once per set of parameters
            from ..compiler.function import CompiledFunction

            def update(*grads) -> None:
                kept = [p.grad for p in params]
                try:
                    for p, g in zip(params, grads):
                        p.grad = g
                    _capture.guard_groups(self)
                    for group in groups:
                        _capture.tracer().mark_update_group()   # NOTE (horizontal fusion)
                        self._trace_group(group)
                finally:
                    for p, g in zip(params, kept):
                        p.grad = g
            program = programs[key] = CompiledFunction(update, fullgraph=True)
        program(*[p.grad for p in params])

    def _update_group(self, group: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement step()")

    def _trace_group(self, group: dict) -> None:
        """The update of ``group`` in tensor ops, for a compile trace (``_capture``)."""
        raise NotImplementedError(f"{type(self).__name__}.step() cannot be compiled; call it "
                                  f"outside the compiled function")

    # ---- state dict --------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``.

        Parameters are numbered in order across groups, as in PyTorch; the state values
        are the live state tensors (save or deep-copy the dict to snapshot it).
        """
        for hook in self._hooks("state_dict_pre").values():
            hook(self)
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            ids = []
            for p in group["params"]:
                if id(p) not in index:
                    index[id(p)] = len(index)
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {index[id(p)]: s for p, s in self.state.items() if id(p) in index}
        out = {"state": state, "param_groups": groups}
        for hook in self._hooks("state_dict_post").values():
            replaced = hook(self, out)
            out = out if replaced is None else replaced
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore options and state saved by ``state_dict()`` (copied, cast to each
        parameter's dtype except ``step``) so training continues exactly."""
        if isinstance(state_dict, dict):
            state_dict = dict(state_dict)   # a hook may edit it, never the caller's
        for hook in self._hooks("load_state_dict_pre").values():
            replaced = hook(self, state_dict)
            state_dict = state_dict if replaced is None else replaced
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict \
                or "state" not in state_dict:
            raise ValueError("load_state_dict: expected a dict with 'state' and 'param_groups' "
                             "as returned by Optimizer.state_dict()")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)}) than the optimizer "
                             f"({len(self.param_groups)})")
        for i, (mine, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(mine["params"]) != len(saved["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't "
                                 f"match the size of optimizer's group: group {i} has "
                                 f"{len(saved['params'])} saved parameters, the optimizer "
                                 f"{len(mine['params'])}")
        id_map = {}
        for mine, saved in zip(self.param_groups, saved_groups):
            for saved_id, p in zip(saved["params"], mine["params"]):
                id_map[saved_id] = p
        new_state: defaultdict = defaultdict(dict)
        for key, value in state_dict["state"].items():
            # str keys come from formats that stringify dict keys
            key = int(key) if isinstance(key, str) and key.lstrip("-").isdigit() else key
            if key in id_map:
                p = id_map[key]
                new_state[p] = {k: _cast_state(p, k, v) for k, v in value.items()}
            else:
                new_state[key] = copy.deepcopy(value)
        new_groups = []
        for mine, saved in zip(self.param_groups, saved_groups):
            g = ParamGroup(copy.deepcopy({k: v for k, v in saved.items() if k != "params"}))
            g["params"] = mine["params"]
            if "param_names" in mine and "param_names" not in g:
                g["param_names"] = mine["param_names"]
            new_groups.append(g)
        self.state = new_state
        self.param_groups = new_groups
        for hook in self._hooks("load_state_dict_post").values():
            hook(self)

    # ---- display -----------------------------------------------------------------------
    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def __getstate__(self) -> dict:
        return {"defaults": self.defaults, "state": self.state,
                "param_groups": self.param_groups}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def _cast_state(p: Tensor, key, value):
    if isinstance(value, Tensor):
        arr = np.array(np.asarray(value._data), copy=True)
        if key != "step" and arr.dtype.kind == "f" and p._data.dtype.kind == "f":
            arr = arr.astype(p._data.dtype, copy=False)
        return _wrap(arr)
    if isinstance(value, dict):
        return {k: _cast_state(p, k, v) for k, v in value.items()}
    return copy.deepcopy(value)


# ---- helpers shared by the update rules -------------------------------------------------
def _check_float(name: str, value, lo: float = 0.0) -> None:
    if isinstance(value, Tensor):
        value = value.item()
    if not value >= lo:
        raise ValueError(f"Invalid {name} value: {value}")


def _scalar(v) -> float:
    return float(v.item()) if isinstance(v, Tensor) else float(v)


def _step_tensor() -> Tensor:
    return _wrap(np.zeros((), dtype=np.float32))


def _bump_step(state: dict) -> float:
    """Increment the 0-d float32 ``step`` tensor in place and return its new value."""
    step = state["step"]
    arr = step._data
    arr += 1
    return float(arr)


def _params_with_grad(group: dict):
    for p in group["params"]:
        g = p.grad
        if g is not None:
            yield p, p._data, g._data


def _array(x) -> np.ndarray:
    """``x`` as an ndarray the update may write into: NumPy arithmetic on a 0-d array (a
    scalar parameter, such as a learned temperature) returns a NumPy scalar, which
    ``out=`` refuses ("return arrays must be of ArrayType")."""
    return np.asarray(x)   # an ndarray as it is, a NumPy scalar as a 0-d array


def _touch(p: Tensor) -> None:
    p._version[0] += 1
