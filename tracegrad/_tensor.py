"""``Tensor``: a NumPy array (or, while tracing, a shape-only trace value) plus autograd
state. Operations live in ``tracegrad/_ops/`` and are attached as methods there; this
file holds what a tensor *is*: storage, attributes, conversions, grad bookkeeping, repr.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import _dtype
from ._device import CPU, device as _device_cls
from ._size import Size


class Tensor:
    """A multi-dimensional array with autograd, PyTorch's ``torch.Tensor``.

    >>> import tracegrad as torch
    >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward(); x.grad
    tensor([2., 4.])
    """

    __slots__ = ("_data", "_requires_grad", "grad_fn", "_version", "__weakref__", "__dict__")
    # Rarely set state lives in the instance dict with these class defaults, so making an
    # op's output tensor (``_wrap``, on every op) sets only the four slots above.
    grad = None
    _hooks = None
    _post_accumulate_grad_hooks = None
    _retains_grad = False
    _device = CPU

    # ``torch.Tensor(data)`` / ``torch.Tensor(2, 3)``: the legacy float constructor.
    def __new__(cls, *args, **kwargs):
        self = object.__new__(cls)
        _init_empty(self, None)
        if args or kwargs:
            self._data = _legacy_construct(args, kwargs.pop("dtype", None) or _dtype.get_default_dtype())
        else:
            self._data = np.empty((0,), dtype=_dtype.get_default_dtype().np)
        return self

    def __init__(self, *args, **kwargs) -> None:
        pass

    # ---- attributes -------------------------------------------------------------------
    @property
    def data(self) -> "Tensor":
        """The same storage without autograd history (changes to it are not tracked)."""
        out = _wrap(self._data)
        out._device = self._device
        return out

    @data.setter
    def data(self, value: "Tensor") -> None:
        if isinstance(value, Tensor):
            self._data = value._data
            self._device = value._device  # a tensor moved by ``p.data = p.cuda()`` is on cuda
        else:
            self._data = np.asarray(value)

    @property
    def requires_grad(self) -> bool:
        return bool(self._requires_grad)  # None marks a legacy volatile tensor

    @property
    def volatile(self) -> bool:
        return self._requires_grad is None

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self._data.dtype.kind != "f":
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients, "
                               f"got {self.dtype} (shape {tuple(self.shape)})")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_(False): you can only change requires_grad of "
                               "leaf tensors; use .detach() for a non-leaf")
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim, "size")]

    def dim(self) -> int:
        return self._data.ndim

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def ndimension(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def nelement(self) -> int:
        return self.numel()

    def element_size(self) -> int:
        return self._data.dtype.itemsize

    @property
    def dtype(self) -> _dtype.dtype:
        return _dtype.from_numpy_dtype(self._data.dtype)

    @property
    def device(self) -> _device_cls:
        return self._device

    @property
    def is_cuda(self) -> bool:
        return self._device.type == "cuda"

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    def stride(self, dim: int | None = None):
        strides = tuple(s // self._data.itemsize for s in self._data.strides)
        return strides if dim is None else strides[_wrap_dim(dim, self.ndim, "stride")]

    def data_ptr(self) -> int:
        return self._data.__array_interface__["data"][0]

    @property
    def T(self) -> "Tensor":
        return self.permute(*range(self.ndim - 1, -1, -1))

    @property
    def mT(self) -> "Tensor":
        return self.transpose(-2, -1)

    # ---- conversion -------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The storage itself (shared, no copy), like ``torch.Tensor.numpy``."""
        if self._requires_grad:
            raise RuntimeError("numpy(): can't call numpy() on a tensor that requires grad; "
                               "use tensor.detach().numpy() instead")
        return _concrete(self._data, "numpy()")

    def __array__(self, dtype=None, copy=None):
        arr = _concrete(self._data, "__array__")
        return arr if dtype is None else arr.astype(dtype)

    def item(self):
        arr = _concrete(self._data, "item()")
        if arr.size != 1:
            raise ValueError(f"item(): a Tensor with {arr.size} elements cannot be converted "
                             f"to a Python scalar (shape {arr.shape})")
        return arr.reshape(()).item()

    def tolist(self):
        return _concrete(self._data, "tolist()").tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors can be used as an index, got {self.dtype}")
        return int(self.item())

    def __bool__(self) -> bool:
        arr = _concrete(self._data, "bool(tensor)")
        if arr.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {arr.size} elements is ambiguous")
        return bool(arr.reshape(()))

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __hash__(self) -> int:
        return id(self)

    def __reduce_ex__(self, protocol):
        # Pickling (DataLoader workers send batches between processes): data and flag only.
        return (_rebuild, (np.asarray(self._data), self._requires_grad))

    def __deepcopy__(self, memo):
        import copy
        out = _wrap(np.array(self._data, copy=True))
        out._device = self._device
        out._requires_grad = self._requires_grad
        if self.grad is not None:
            out.grad = copy.deepcopy(self.grad, memo)
        if type(self) is not Tensor:
            out.__class__ = type(self)  # subclasses (Parameter) add no slots
            out.__dict__.update(copy.deepcopy(self.__dict__, memo))
        memo[id(self)] = out
        return out

    # ---- autograd ----------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``."""
        from .autograd.engine import backward
        backward((self,), None if gradient is None else (gradient,), retain_graph,
                 create_graph, inputs=inputs)

    def detach(self) -> "Tensor":
        out = _wrap(self._data)
        out._device = self._device
        out._version = self._version  # shares storage, so shares the version counter
        return out

    def detach_(self) -> "Tensor":
        self.grad_fn = None
        self._requires_grad = False
        return self

    def retain_grad(self) -> None:
        if self.grad_fn is None:
            return
        self._retains_grad = True
        import weakref
        if self.grad_fn.retained is None:
            self.grad_fn.retained = []
        self.grad_fn.retained.append(weakref.ref(self))

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook):
        """``hook(grad) -> grad or None`` runs when this tensor's gradient is computed."""
        if not self._requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that "
                               "doesn't require gradient")
        if self.grad_fn is not None:
            self.grad_fn.register_hook(hook)
        else:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
        return _RemovableHandle(self, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """``hook(tensor) -> None`` runs once this leaf's ``.grad`` holds its final
        gradient of a backward pass, possibly before the rest of the backward has run."""
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                               "tensors")
        if self._post_accumulate_grad_hooks is None:
            self._post_accumulate_grad_hooks = []
        self._post_accumulate_grad_hooks.append(hook)
        return _RemovableHandle(self, hook)

    def _bump_version(self) -> None:
        self._version[0] += 1

    @property
    def _version_number(self) -> int:
        return self._version[0]

    # ---- display -----------------------------------------------------------------------
    def __repr__(self) -> str:
        from ._repr import tensor_repr
        return tensor_repr(self)

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0 and spec:
            return format(self.item(), spec)
        return repr(self)


class _RemovableHandle:
    def __init__(self, tensor, hook) -> None:
        self._tensor, self._hook = tensor, hook

    def remove(self) -> None:
        t = self._tensor
        for hooks in (t._hooks, t._post_accumulate_grad_hooks,
                      t.grad_fn.hooks if t.grad_fn is not None else None):
            if hooks and self._hook in hooks:
                hooks.remove(self._hook)


def _init_empty(t: Tensor, data) -> None:
    t._data = data
    t._requires_grad = False
    t.grad_fn = None
    t._version = [0]


def _wrap(data) -> Tensor:
    """A fresh leaf tensor around ``data`` (no copy): the hot path for every op's output."""
    t = _new_tensor(Tensor)
    t._data = data
    t._requires_grad = False
    t.grad_fn = None
    t._version = [0]
    return t


_new_tensor = object.__new__


def _rebuild(array, requires_grad):
    t = _wrap(array)
    t._requires_grad = requires_grad
    return t


def _concrete(data, what: str) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data
    from .compiler.errors import TraceError
    raise TraceError(f"{what} needs a concrete value, which a compile trace does not have")


def _wrap_dim(dim: int, ndim: int, op: str) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim})")
    return dim + n if dim < 0 else dim


def _legacy_construct(args, dtype) -> np.ndarray:
    """``Tensor(data)`` copies data; ``Tensor(2, 3)`` or ``Tensor(Size)`` makes zeros
    (PyTorch leaves them uninitialised; zeros are a safe instance of that)."""
    np_dtype = _dtype.to_numpy_dtype(dtype)
    if len(args) == 1 and not isinstance(args[0], (numbers.Integral, Size)):
        src = args[0]
        if isinstance(src, Tensor):
            return src._data.astype(np_dtype)
        return np.array(src, dtype=np_dtype)
    sizes = args[0] if len(args) == 1 and isinstance(args[0], Size) else args
    if all(isinstance(s, numbers.Integral) for s in sizes):
        return np.zeros(tuple(int(s) for s in sizes), dtype=np_dtype)
    raise TypeError(f"Tensor(): expected data (array, list, tensor) or sizes, got {args!r}")
