"""``Parameter``: a Tensor that a ``Module`` registers as one of its parameters."""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor, _init_empty


class Parameter(Tensor):
    """A leaf tensor that requires grad by default and that modules collect.

    It shares storage with the tensor it wraps, as in PyTorch.

    >>> import tracegrad as torch
    >>> p = torch.nn.Parameter(torch.zeros(2))
    >>> p.requires_grad, isinstance(p, torch.Tensor)
    (True, True)
    """

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True):
        if data is None:
            data = Tensor()
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: expected a Tensor, got {type(data).__name__}")
        self = object.__new__(cls)
        _init_empty(self, data._data)
        self._device = data._device
        if requires_grad:
            self.requires_grad_(True)
        return self

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        return (_rebuild_parameter, (np.asarray(self._data), bool(self._requires_grad)))


def _rebuild_parameter(array, requires_grad):
    from .._tensor import _wrap
    return Parameter(_wrap(array), requires_grad)


class Buffer(Tensor):
    """Marks a tensor to register as a buffer when assigned to a module attribute
    (``torch.nn.Buffer``); the module stores a plain tensor."""

    def __new__(cls, data: Tensor | None = None, *, persistent: bool = True):
        if data is None:
            data = Tensor()
        self = object.__new__(cls)
        _init_empty(self, data._data)
        self._device = data._device
        self.__dict__["persistent"] = persistent
        return self


def is_lazy(param) -> bool:
    return False
