"""Optimizer updates inside a compile trace (NOTE (training step capture) in
compiler/tracer.py).

Eagerly, the update rules work on NumPy storage in place (fast, no dispatch). A trace sees
only tensor operations, so under a trace ``Optimizer.step`` runs the rules written here with
in-place tensor ops instead: the tracer records them as writes into the parameters and the
state tensors, and the compiled step writes those back at every call.

What changes between steps is never a constant in the code: every hyper-parameter that is
a number (lr, betas, eps, weight decay, momentum...) and every value derived from the step
count (Adam's bias corrections, Adagrad's decayed lr) is a 0-d runtime input, computed on
the host in float64 at each call exactly as the eager rule computes it. What decides the
shape of the update (a zero or non-zero weight decay, nesterov, amsgrad, the parameters of
each group, whether a state tensor exists yet) is a guard: when it changes, the step is
traced again rather than replayed.

>>> import tracegrad as torch
>>> w = torch.tensor([1.0, 2.0], requires_grad=True)
>>> opt = torch.optim.SGD([w], lr=0.5)
>>> step = torch.compile(lambda: opt.step())
>>> w.grad = torch.tensor([1.0, 1.0]); _ = step(); w
tensor([0.5000, 1.5000], requires_grad=True)
"""
from __future__ import annotations

import math
from operator import is_

import numpy as np

from .. import _trace_state
from .._errors import TraceError
from .._tensor import Tensor, _wrap


def tracer():
    """This thread's active compile tracer, or None."""
    return _trace_state.state.tracer if _trace_state.active_traces else None


def _scalar(v) -> float:
    return float(v.item()) if isinstance(v, Tensor) else float(v)


class Hyper:
    """Runtime scalars and guards of one traced ``step()`` of one parameter group."""

    def __init__(self, group: dict, dtype) -> None:
        self.tracer = tracer()
        self.group = group
        self.dtype = np.dtype(dtype)

    def value(self, read, dtype=None) -> Tensor:
        """A 0-d input computed by ``read()`` (a float) at every call, of the parameter's
        dtype unless ``dtype`` is given (float32 state scalars of a float64 parameter)."""
        return self.tracer.runtime_scalar(read, self.dtype if dtype is None else dtype)

    def option(self, name: str, index: int | None = None) -> Tensor:
        """``group[name]`` (``[index]``) as a runtime input, one per group and trace."""
        group = self.group
        shared = self.tracer.__dict__.setdefault("optimizer_options", {})
        key = (id(group), name, index, self.dtype)
        value = shared.get(key)
        if value is None:
            read = ((lambda: _scalar(group[name])) if index is None
                    else (lambda: _scalar(group[name][index])))
            value = shared[key] = self.value(read)
        return value

    def derived(self, name: str, read) -> Tensor:
        """A value computed from the group's options only, one per group and trace."""
        shared = self.tracer.__dict__.setdefault("optimizer_options", {})
        key = (id(self.group), name, None, self.dtype)
        value = shared.get(key)
        if value is None:
            value = shared[key] = self.value(read)
        return value

    def new_state(self, like: np.ndarray, fill: float = 0.0, dtype=None) -> Tensor:
        """A state tensor made now, eagerly, that outlives the trace."""
        arr = np.full_like(like, fill) if dtype is None else np.full(like.shape, fill, dtype)
        return self.tracer.keep(_wrap(arr))

    def new_step(self) -> Tensor:
        """A step count: a 0-d float32 tensor, as eager mode and PyTorch keep it."""
        return self.new_state(np.zeros(()), dtype=np.float32)

    def guard_state(self, opt, p: Tensor) -> None:
        _guard_state(self.tracer, opt, p)


def _guard_state(active, opt, p: Tensor) -> None:
    """The trace read these state tensors of ``p``: retrace when the state dict, a key or
    a tensor in it is replaced (a first step, ``load_state_dict``)."""
    state = opt.state[p]
    keys, values = list(state), list(state.values())

    def holds() -> bool:
        now = opt.state.get(p)
        return (now is state and len(now) == len(keys)
                and all(map(is_, map(now.get, keys), values)))
    holds.what = f"the state of a {type(opt).__name__} parameter was made or replaced"
    active.guards.append(holds)


def guard_groups(optimizer) -> None:
    """Retrace when a group or parameter is added or removed, or an option that shapes
    the update changes (a boolean, or a number becoming zero or non-zero)."""
    seen = _groups_key(optimizer, _shape_of)
    active = tracer()
    active.stepped = True
    active.mark_phase("update")
    groups_held = _unchanged_or(optimizer, lambda: _groups_key(optimizer, _shape_of) == seen)
    groups_held.what = (f"{type(optimizer).__name__}.param_groups changed (a group or "
                        f"parameter added, or an option that shapes the update)")
    active.guards.append(groups_held)


def _groups_key(optimizer, option_key) -> tuple:
    """Each group's dict (the runtime scalars read it; load_state_dict replaces it), its
    parameters, and ``option_key`` of each option."""
    return tuple((id(g), tuple(id(p) for p in g["params"]),
                  tuple((k, option_key(v)) for k, v in g.items() if k != "params"))
                 for g in optimizer.param_groups)


_IMMUTABLE = (bool, int, float, str, type(None), tuple, Tensor)


def _unchanged_or(optimizer, check):
    """``check``, skipped while every group, key, option value and parameter is the very
    object it was when ``check`` last held (one identity pass, ~1 µs, instead of
    rebuilding the groups' shape, ~3-5 µs per call). Options that could change in
    place (a list of betas) always take ``check``."""
    def snapshot():
        groups = optimizer.param_groups
        if any(not isinstance(v, _IMMUTABLE) for g in groups for k, v in g.items()
               if k != "params"):
            return None
        return [(g, list(g), list(g.values()), list(g["params"])) for g in groups]
    last = [None]

    def holds() -> bool:
        now, before = optimizer.param_groups, last[0]
        if before is not None and len(now) == len(before):
            # a loop, not all() over a generator: ~0.5 µs less per call for one group
            for g, (g0, keys, values, params) in zip(now, before):
                if not (g is g0 and len(g) == len(keys) and all(map(is_, g, keys))
                        and all(map(is_, g.values(), values))
                        and len(ps := g["params"]) == len(params)
                        and all(map(is_, ps, params))):
                    break
            else:
                return True
        if not check():
            return False
        last[0] = snapshot()
        return True
    return holds


def _shape_of(v):
    if isinstance(v, (bool, str)) or v is None:
        return v
    if isinstance(v, (tuple, list)):
        return tuple(_shape_of(x) for x in v)
    if isinstance(v, Tensor):
        return "tensor"
    return float(v) != 0.0


def grads(group: dict):
    """``(p, grad)`` of each parameter of ``group`` that has a gradient now (in the trace).

    Which parameters have one shapes the update, so it is a guard: a ``.grad`` set or
    cleared outside the traced function (which no ``note_grad`` guard sees) retraces.
    (A ``.grad`` made before the call and replaced by another tensor retraces too: NOTE
    (gradient reads) in compiler/tracer.py. ``fused=True`` passes the gradients as
    arguments instead, for a step whose gradients are new tensors at every call.)"""
    params = list(group["params"])
    had = [p.grad is not None for p in params]
    # A .grad this trace wrote (backward, zero_grad) exists or not by the trace itself,
    # and note_grad guards what it was at the call's start; comparing that start with the
    # traced state here would retrace the first step's program at the second step, and
    # every micro-batch cycle of gradient accumulation.
    active = tracer()
    written = {id(leaf) for leaf, _, _ in active.grads_written()}
    outside = [(p, has) for p, has in zip(params, had) if id(p) not in written]
    grads_held = lambda: all([(p.grad is not None) is has for p, has in outside])  # noqa: E731
    grads_held.what = "a parameter's .grad was set or cleared outside the step"
    active.guards.append(grads_held)
    for p, has in zip(params, had):
        if has:
            yield p, p.grad


def _step_count(state: dict):
    """A reader of this call's step count (the stored count, before the step adds 1)."""
    return lambda: float(np.asarray(state["step"]._data)) + 1.0


def _signed_decayed(h: Hyper, group: dict, p: Tensor, g: Tensor) -> Tensor:
    """The gradient the rules step along: negated for ``maximize``, plus L2 weight decay
    (coupled; AdamW's decoupled decay is its own branch)."""
    if group["maximize"]:
        g = -g
    if group["weight_decay"] != 0:
        g = g + h.option("weight_decay") * p
    return g


def _decayed(h: Hyper, group: dict, p: Tensor, g: Tensor, decoupled: bool) -> Tensor:
    """``_signed_decayed``, or for decoupled weight decay (AdamW) the eager rule's
    ``p *= 1 - lr * weight_decay`` and the gradient only negated for ``maximize``."""
    if not (decoupled and group["weight_decay"] != 0):
        return _signed_decayed(h, group, p, g)
    p.mul_(h.derived("1-lr*wd", lambda: 1 - _scalar(group["lr"])
                     * _scalar(group["weight_decay"])))
    return -g if group["maximize"] else g


def new_adam_state(h: Hyper, state: dict, p: Tensor) -> None:
    state["step"] = h.new_step()
    state["exp_avg"] = h.new_state(p._data)
    state["exp_avg_sq"] = h.new_state(p._data)


def _first_moment(h: Hyper, group: dict, m: Tensor, g: Tensor) -> Tensor:
    m.mul_(h.option("betas", 0))
    m.add_(h.derived("1-beta1", lambda: 1 - _scalar(group["betas"][0])) * g)
    return m


def adam_moments(h: Hyper, group: dict, state: dict, g: Tensor) -> tuple[Tensor, Tensor]:
    """Adam's running averages of ``g`` and ``g * g``, updated in place."""
    m = _first_moment(h, group, state["exp_avg"], g)
    v = state["exp_avg_sq"]
    v.mul_(h.option("betas", 1))
    v.add_(h.derived("1-beta2", lambda: 1 - _scalar(group["betas"][1])) * (g * g))
    return m, v


def sgd(opt, group: dict) -> None:
    for p, g in grads(group):
        h = Hyper(group, p._data.dtype)
        g = _signed_decayed(h, group, p, g)
        if group["momentum"] != 0:
            g = _sgd_momentum(opt, h, group, p, g)
        p.sub_(h.option("lr") * g)


def _sgd_momentum(opt, h: Hyper, group: dict, p: Tensor, g: Tensor) -> Tensor:
    """The direction of a momentum step. Only momentum makes state: plain SGD leaves
    ``opt.state`` empty, as eager mode and PyTorch do (a state dict with one empty entry
    per parameter would differ from theirs)."""
    state = opt.state[p]
    h.guard_state(opt, p)
    buf = state.get("momentum_buffer")
    if buf is None:
        buf = state["momentum_buffer"] = h.new_state(p._data)
        buf.copy_(g)
    else:
        buf.mul_(h.option("momentum"))
        if group["dampening"] == 0:
            buf.add_(g)
        else:
            buf.add_(h.derived("1-dampening", lambda: 1.0 - _scalar(group["dampening"])) * g)
    return g + h.option("momentum") * buf if group["nesterov"] else buf


def adam(opt, group: dict, decoupled: bool) -> None:
    decoupled = group.get("decoupled_weight_decay", decoupled)
    for p, g in grads(group):
        _adam_param(opt, group, p, g, decoupled)


def _adam_param(opt, group: dict, p: Tensor, g: Tensor, decoupled: bool) -> None:
    # NOTE (one function per parameter): the readers made below (``step()``) close over
    # this parameter's state; closures made in a loop body would all read the last
    # parameter's step count (wrong when the counts differ: a parameter that had no
    # gradient at some steps)
    h = Hyper(group, p._data.dtype)
    state = opt.state[p]
    if not state:
        new_adam_state(h, state, p)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = h.new_state(p._data)
    h.guard_state(opt, p)
    step = _step_count(state)
    state["step"].add_(1)
    g = _decayed(h, group, p, g, decoupled)
    m, v = adam_moments(h, group, state, g)
    if group["amsgrad"]:
        vmax = state["max_exp_avg_sq"]
        vmax.copy_(vmax.maximum(v))
        denom = vmax.sqrt()
    else:
        denom = v.sqrt()
    bias2_sqrt = h.value(lambda: math.sqrt(1 - _scalar(group["betas"][1]) ** step()))
    denom = denom / bias2_sqrt + h.option("eps")
    step_size = h.value(lambda: -(_scalar(group["lr"])
                                  / (1 - _scalar(group["betas"][0]) ** step())))
    p.add_((m / denom) * step_size)


def rmsprop(opt, group: dict) -> None:
    for p, g in grads(group):
        h = Hyper(group, p._data.dtype)
        state = opt.state[p]
        if not state:
            state["step"] = h.new_step()
            state["square_avg"] = h.new_state(p._data)
            if group["momentum"] > 0:
                state["momentum_buffer"] = h.new_state(p._data)
            if group["centered"]:
                state["grad_avg"] = h.new_state(p._data)
        h.guard_state(opt, p)
        state["step"].add_(1)
        g = _signed_decayed(h, group, p, g)
        alpha = h.option("alpha")
        one_minus_alpha = h.derived("1-alpha", lambda: 1 - _scalar(group["alpha"]))
        s = state["square_avg"]
        s.mul_(alpha)
        s.add_(one_minus_alpha * (g * g))
        if group["centered"]:
            a = state["grad_avg"]
            a.mul_(alpha)
            a.add_(one_minus_alpha * g)
            avg = (s - a * a).sqrt()
        else:
            avg = s.sqrt()
        avg = avg + h.option("eps")
        if group["momentum"] > 0:
            b = state["momentum_buffer"]
            b.mul_(h.option("momentum"))
            b.add_(g / avg)
            p.sub_(h.option("lr") * b)
        else:
            p.add_((g / avg) * h.derived("-lr", lambda: -_scalar(group["lr"])))


def adagrad(opt, group: dict) -> None:
    for p, g in grads(group):
        _adagrad_param(opt, group, p, g)


def _adagrad_param(opt, group: dict, p: Tensor, g: Tensor) -> None:
    # NOTE (one function per parameter), see _adam_param
    h = Hyper(group, p._data.dtype)
    state = opt.state[p]
    if not state:
        # a parameter added by add_param_group after __init__: its state is made here,
        # kept past the trace (opt._init_state's plain tensors would be the trace's own,
        # never written back: the sum and step stayed 0)
        state["step"] = h.new_step()
        state["sum"] = h.new_state(p._data, fill=_scalar(group["initial_accumulator_value"]))
    h.guard_state(opt, p)
    step = _step_count(state)
    state["step"].add_(1)
    g = _signed_decayed(h, group, p, g)
    s = state["sum"]
    s.add_(g * g)
    std = s.sqrt() + h.option("eps")
    clr = h.value(lambda: -(_scalar(group["lr"])
                            / (1 + (step() - 1) * _scalar(group["lr_decay"]))))
    p.add_((g / std) * clr)


def adadelta(opt, group: dict) -> None:
    for p, g in grads(group):
        h = Hyper(group, p._data.dtype)
        state = opt.state[p]
        if not state:
            state["step"] = h.new_step()
            state["square_avg"] = h.new_state(p._data)
            state["acc_delta"] = h.new_state(p._data)
        h.guard_state(opt, p)
        state["step"].add_(1)
        g = _signed_decayed(h, group, p, g)
        rho, eps = h.option("rho"), h.option("eps")
        one_minus_rho = h.derived("1-rho", lambda: 1 - _scalar(group["rho"]))
        v, u = state["square_avg"], state["acc_delta"]
        v.mul_(rho)
        v.add_(one_minus_rho * (g * g))
        delta = (u + eps).sqrt() / (v + eps).sqrt() * g
        u.mul_(rho)
        u.add_(one_minus_rho * (delta * delta))
        p.sub_(h.option("lr") * delta)


def adamax(opt, group: dict) -> None:
    for p, g in grads(group):
        _adamax_param(opt, group, p, g)


def _adamax_param(opt, group: dict, p: Tensor, g: Tensor) -> None:
    # NOTE (one function per parameter), see _adam_param
    h = Hyper(group, p._data.dtype)
    state = opt.state[p]
    if not state:
        state["step"] = h.new_step()
        state["exp_avg"] = h.new_state(p._data)
        state["exp_inf"] = h.new_state(p._data)
    h.guard_state(opt, p)
    step = _step_count(state)
    state["step"].add_(1)
    g = _signed_decayed(h, group, p, g)
    m, u = _first_moment(h, group, state["exp_avg"], g), state["exp_inf"]
    u.mul_(h.option("betas", 1))
    u.copy_(u.maximum(g.abs() + h.option("eps")))
    step_size = h.value(lambda: _scalar(group["lr"])
                        / (1 - _scalar(group["betas"][0]) ** step()))
    p.sub_(step_size * (m / u))


# ---- optimizers that bring their own step() -----------------------------------------
def custom_step(step):
    """``step`` of an Optimizer subclass that overrides ``step()`` (PyTorch style, no
    ``_trace_group``), made safe inside a compile trace: it reads its options as Python
    numbers (baked into the program), so any change to ``param_groups`` retraces; its
    state must exist before the trace (state made inside would never be written back,
    a silent wrong answer), else the trace stops and the call falls back to eager, whose
    first step makes the state; later traces then capture it."""
    def wrapper(self, *args, **kwargs):
        active = tracer()
        if active is None:
            return step(self, *args, **kwargs)
        active.undo.append(self._state_restorer())
        seen = _groups_key(self, _exact)
        groups_same = lambda: _groups_key(self, _exact) == seen  # noqa: E731
        groups_same.what = f"{type(self).__name__}.param_groups changed"
        active.guards.append(groups_same)
        active.mark_update_group()   # every group as one (NOTE (horizontal fusion))
        active.stepped = True
        result = step(self, *args, **kwargs)
        for p, state in self.state.items():
            for key, value in state.items():
                if isinstance(value, Tensor) and active.made_here(value):
                    raise TraceError(
                        f"{type(self).__name__}.step() made its state {key!r} (shape "
                        f"{tuple(value.shape)}) inside the compiled function, which "
                        f"cannot keep it: make the state in __init__, or run one step "
                        f"before the first compiled call")
            _guard_state(active, self, p)
        return result
    wrapper.__wrapped__ = step
    return wrapper


def _exact(v):
    """An option as a custom step() bakes it into the program (a tensor is read)."""
    return "tensor" if isinstance(v, Tensor) else v
