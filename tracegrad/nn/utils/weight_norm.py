"""``weight_norm`` / ``remove_weight_norm`` (PyTorch's hook-based ``torch.nn.utils``
form): ``weight = g * v / ||v||``, the norm taken over every dimension but ``dim``.

>>> import tracegrad as torch
>>> m = weight_norm(torch.nn.Linear(3, 2))
>>> sorted(n for n, _ in m.named_parameters())
['bias', 'weight_g', 'weight_v']
>>> tuple(m.weight_g.shape)
(2, 1)
"""
from __future__ import annotations

from ..._tensor import Tensor
from ...autograd.grad_mode import no_grad
from ..parameter import Parameter, is_lazy


def norm_except_dim(v: Tensor, pow: float = 2, dim: int = 0) -> Tensor:
    """The ``pow``-norm of each slice of ``v`` along ``dim``, shaped to broadcast against
    ``v`` (size 1 elsewhere); ``dim=-1`` is the norm of the whole tensor."""
    if dim == -1:
        return v.norm(pow)
    dims = tuple(d for d in range(v.ndim) if d != dim)
    return (v.abs() ** pow).sum(dim=dims, keepdim=True) ** (1.0 / pow)


def _weight_norm(v: Tensor, g: Tensor, dim: int) -> Tensor:
    return v * (g / norm_except_dim(v, 2, dim))


class WeightNorm:
    """The forward pre-hook that recomputes ``module.<name>`` from ``<name>_g`` and
    ``<name>_v`` before every call."""

    def __init__(self, name: str, dim: int | None) -> None:
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module) -> Tensor:
        return _weight_norm(getattr(module, self.name + "_v"), getattr(module, self.name + "_g"),
                            self.dim)

    @staticmethod
    def apply(module, name: str, dim: int | None) -> "WeightNorm":
        if hook_of(module, name, WeightNorm) is not None:
            raise RuntimeError(f"Cannot register two weight_norm hooks on the same "
                               f"parameter {name}")
        fn = WeightNorm(name, dim)
        weight = getattr(module, name)
        if is_lazy(weight):
            raise ValueError("The module passed to `WeightNorm` can't have uninitialized "
                             "parameters. Make sure to run the dummy forward before applying "
                             "weight normalization")
        if fn.dim != -1 and not -weight.ndim <= fn.dim < weight.ndim:
            raise IndexError(f"weight_norm: dim {fn.dim} is out of range for {name} of shape "
                             f"{tuple(weight.shape)}")
        fn.dim = fn.dim % weight.ndim if fn.dim != -1 else -1
        del module._parameters[name]
        with no_grad():
            module.register_parameter(name + "_g", Parameter(norm_except_dim(weight, 2, fn.dim)))
            module.register_parameter(name + "_v", Parameter(weight.detach().clone()))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module) -> None:
        with no_grad():
            weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.detach()))

    def __call__(self, module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module, name: str = "weight", dim: int | None = 0):
    """Split ``module.<name>`` into a magnitude ``<name>_g`` and a direction
    ``<name>_v``; ``dim=None`` normalises the whole tensor."""
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module, name: str = "weight"):
    """Fold ``<name>_g`` and ``<name>_v`` back into one parameter ``<name>``."""
    return remove_hook_of(module, name, WeightNorm, "weight_norm")


def hook_of(module, name: str, kind: type):
    """(key, hook) of ``module``'s forward pre-hook of type ``kind`` reparametrising
    ``module.<name>``, or None."""
    return next(((k, hook) for k, hook in module._forward_pre_hooks.items()
                 if isinstance(hook, kind) and hook.name == name), None)


def remove_hook_of(module, name: str, kind: type, what: str):
    """Undo the reparametrisation ``what`` (a forward pre-hook of type ``kind``) of
    ``module.<name>``; PyTorch's ValueError when there is none."""
    found = hook_of(module, name, kind)
    if found is None:
        raise ValueError(f"{what} of '{name}' not found in {module}")
    k, hook = found
    hook.remove(module)
    del module._forward_pre_hooks[k]
    return module
