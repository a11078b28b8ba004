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


class _UninitializedMixin:
    """A placeholder of no shape yet (a lazy module's parameter or buffer); ``materialize``
    gives it storage of the shape the first input implies and turns it into its
    ``cls_to_become`` in place, so the module's references stay valid."""
    cls_to_become: type = Tensor

    def materialize(self, shape, device=None, dtype=None) -> None:
        from .._ops.creation import empty
        dtype = dtype if dtype is not None else self.__dict__.get("_lazy_dtype")
        data = empty(*tuple(shape), **({"dtype": dtype} if dtype is not None else {}))
        self._data = data._data   # type: ignore[attr-defined]
        self._version[0] += 1     # type: ignore[attr-defined]
        self.__class__ = self.cls_to_become

    @property
    def shape(self):
        raise ValueError(f"Can't access the shape of an uninitialized parameter or buffer "
                         f"({type(self).__name__}): run a forward pass (or load a state_dict) "
                         f"first")

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def __reduce_ex__(self, protocol):
        return (type(self), (self.requires_grad,))


class UninitializedParameter(_UninitializedMixin, Parameter):
    """A parameter of a lazy module whose shape the first input decides.

    >>> import tracegrad as torch
    >>> p = torch.nn.UninitializedParameter()
    >>> p.materialize((2, 3)); type(p).__name__, tuple(p.shape)
    ('Parameter', (2, 3))
    """
    cls_to_become = Parameter

    def __new__(cls, requires_grad: bool = True, device=None, dtype=None):
        self = Parameter.__new__(cls, None, requires_grad)
        self.__dict__["_lazy_dtype"] = dtype
        return self


class UninitializedBuffer(_UninitializedMixin, Tensor):
    """A buffer of a lazy module whose shape the first input decides."""
    cls_to_become = Tensor

    def __new__(cls, requires_grad: bool = False, device=None, dtype=None):
        self = object.__new__(cls)
        _init_empty(self, Tensor()._data)
        self.__dict__["_lazy_dtype"] = dtype
        return self

    def __init__(self, *args, **kwargs) -> None:
        pass


def is_lazy(param) -> bool:
    """Whether ``param`` is an uninitialized (lazy) parameter or buffer."""
    return isinstance(param, _UninitializedMixin)
