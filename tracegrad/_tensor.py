"""``Tensor``: a NumPy array (or, while tracing, a shape-only trace value) plus autograd
state. Operations live in ``tracegrad/_ops/`` and are attached as methods there; this
file holds what a tensor *is*: storage, attributes, conversions, grad bookkeeping, repr.
"""
from __future__ import annotations

import copy
import numbers
import warnings
import weakref

import numpy as np

from . import _dtype, _trace_state
from ._device import CPU, device as _device_cls
from ._repr import tensor_repr
from ._size import Size
from ._errors import TraceError


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
    _grad = None
    _hooks = None
    _post_accumulate_grad_hooks = None
    # View bookkeeping (NOTE (views) in _ops/views.py), set only on views and storage
    # aliases, so that plain op outputs pay nothing for it.
    _view = None       # a view: (root, view ops from the root, version its grad_fn is as of)
    _views = None      # a root without grad: weakrefs to its views (see wake_views)
    _no_grad_view = False  # a view of a tensor requiring grad, made under no_grad
    _alias_of = None   # detach() / .data: (weakref to the tensor whose storage it shares,
    #                    the version counter's value when it was made)
    _retains_grad = False
    _device = CPU
    _cuda_base = None  # a CUDA "view" (a copy): weakref to its base (NOTE (device views))

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
        out = _storage_alias(self)
        out._version = [0]  # as in PyTorch: .data does not share the version counter
        return out

    @data.setter
    def data(self, value: "Tensor") -> None:
        if isinstance(value, Tensor):
            _trace_state.rebind_data(self, value._data)
            self._device = value._device  # a tensor moved by ``p.data = p.cuda()`` is on cuda
        else:
            _trace_state.rebind_data(self, np.asarray(value))

    @property
    def grad(self):
        """The accumulated gradient of a leaf (or of a tensor that called ``retain_grad``)."""
        g = self._grad
        if g is None and self.grad_fn is not None and not self._retains_grad:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. "
                "Its .grad attribute won't be populated during autograd.backward(). If you "
                "indeed want the .grad field to be populated for a non-leaf Tensor, use "
                ".retain_grad() on the non-leaf Tensor. If you access the non-leaf Tensor by "
                "mistake, make sure you access the leaf Tensor instead.", UserWarning,
                stacklevel=2)
        if g is not None and _trace_state.is_tracing():   # NOTE (gradient reads), tracer.py
            _trace_state.state.tracer.note_grad_read(self, g)
        return g

    @grad.setter
    def grad(self, value) -> None:
        if _trace_state.active_traces and _trace_state.state.tracer is not None \
                and (value is not None or self._grad is not None):
            # ``p.grad = None`` (or a new tensor) in a compiled step: the trace must know,
            # or it takes the field it set for the call's start and retraces at every call
            # (NOTE (training step capture), compiler/tracer.py)
            _trace_state.state.tracer.note_grad(self, cleared=value is None)
        self._grad = value

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
        was = self._requires_grad
        self._requires_grad = bool(requires_grad)
        if requires_grad and not was and self._views is not None:
            wake_views(self)
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
        n = self._data.size
        return n if isinstance(n, int) else int(n)   # a traced size stays symbolic

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

    def is_contiguous(self, memory_format=None) -> bool:
        data = self._data
        if type(data) is np.ndarray:
            return bool(data.flags.c_contiguous)
        return is_contiguous_layout(data.shape, element_strides(data))

    def stride(self, dim: int | None = None):
        strides = element_strides(self._data)
        return strides if dim is None else strides[_wrap_dim(dim, self.ndim, "stride")]

    @property
    def _base(self):
        """The tensor this view was made from (the root of a chain of views), else None."""
        view = self._view
        return None if view is None else view[0]

    def _is_view(self) -> bool:
        """Whether this tensor is a view of another (``_base``), as in PyTorch."""
        return self._view is not None

    def data_ptr(self) -> int:
        return self._data.__array_interface__["data"][0]

    @property
    def T(self) -> "Tensor":
        n = self._data.ndim
        return self.t() if n == 2 else self.permute(*range(n - 1, -1, -1))   # (t(): cheaper)

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

    # NOTE: above NumPy's own (0) and ndarray's, as PyTorch's: ``np.float64(2) * t`` then
    # defers to Tensor.__rmul__ and gives a tensor; without it NumPy converted ``t`` through
    # __array__ and returned an ndarray (float64 where PyTorch keeps t's float32).
    __array_priority__ = 1000

    def __array__(self, dtype=None, copy=None):
        arr = _concrete(self._data, "__array__")
        return arr if dtype is None else arr.astype(dtype)

    def item(self):
        arr = _concrete(self._data, "item()")
        if arr.size != 1:
            raise RuntimeError(f"item(): a Tensor with {arr.size} elements cannot be converted "
                               f"to Scalar (shape {arr.shape})")
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
        return int(self._data.shape[0])   # len() makes a plain int of a traced size: say so

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
        out = _wrap(np.array(self._data, copy=True))
        out._device = self._device
        out._requires_grad = self._requires_grad
        if self._grad is not None:
            out.grad = copy.deepcopy(self._grad, memo)
        if type(self) is not Tensor:
            out.__class__ = type(self)  # subclasses (Parameter) add no slots
            out.__dict__.update(copy.deepcopy(self.__dict__, memo))
        memo[id(self)] = out
        return out

    # ---- autograd (``backward`` is the engine's, installed by ``_ops.methods``) ------------
    def detach(self) -> "Tensor":
        """The same storage and version counter, without history. As in PyTorch it is not
        a view (``_base`` is None), but a write through it is a write to ``self``."""
        return _storage_alias(self)

    def detach_(self) -> "Tensor":
        global histories_rewritten
        histories_rewritten = True  # views of self are behind its history now
        self.grad_fn = None
        self._requires_grad = False
        return self

    def retain_grad(self) -> None:
        if self.grad_fn is None:
            return
        self._retains_grad = True
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
        return tensor_repr(self)

    def __format__(self, spec: str) -> str:
        # PyTorch formats a 0-d tensor as its number, with or without a spec:
        # f"loss {loss}" prints "loss 0.25", not "loss tensor(0.2500)"
        if self._data.ndim == 0:
            return format(self.item(), spec)
        if spec:
            raise TypeError("unsupported format string passed to Tensor.__format__")
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
    """A fresh leaf tensor around ``data`` (no copy). The dispatcher inlines this for op
    outputs; made here, during a trace, the tensor is a local of the traced function."""
    t = _new_tensor(Tensor)
    t._data = data
    t._requires_grad = False
    t.grad_fn = None
    t._version = [0]
    if type(data) is not np.ndarray and getattr(data, "on_device", False):
        t._device = _CUDA0  # CUDA storage (runtime.cuda_device.DeviceArray)
    if _trace_state.active_traces and _trace_state_of_thread.tracer is not None:
        _trace_state.note_new_tensor(t)
    return t


_new_tensor = object.__new__
_CUDA0 = _device_cls("cuda", 0)
_trace_state_of_thread = _trace_state.state


def _storage_alias(x: Tensor) -> Tensor:
    """A tensor without history on ``x``'s storage and version counter (``detach``). It
    remembers (weakly) whose storage it shares, so that a compile trace can refuse what
    it cannot follow: a write through it (eagerly a write to ``x``), or a read of it after
    ``x`` was written."""
    out = _new_tensor(Tensor)
    out._data = x._data
    out._requires_grad = False
    out.grad_fn = None
    out._version = x._version
    if x._device is not CPU:
        out._device = x._device
    view = x._view
    if view is not None:
        root = view[0]
    else:
        owner = x._alias_of[0]() if x._alias_of is not None else None
        root = owner if owner is not None else x
    # weak: once the owner is gone (the engine detaches a gradient it then drops) the alias
    # is a tensor like any other
    out._alias_of = (weakref.ref(root), x._version[0])
    return out


# Set (for good) by the first in-place op that gives a tensor new history: until then no
# view can be behind its root's history, and recording an op skips the check per input.
histories_rewritten = False


def sync_view_history(x: Tensor) -> None:
    """Bring a view's ``grad_fn`` up to date after its storage was written through another
    alias (PyTorch regenerates a view's grad_fn when its base's version moved): replay
    the view ops on the root's current history. Cheap when nothing changed."""
    view = x._view
    version = x._version[0]
    if view is None or view[2] == version:
        return
    _replay_history(x, view, version)


def _replay_history(x: Tensor, view: tuple, version: int) -> None:
    root, chain = view[0], view[1]
    if root._requires_grad or x._requires_grad:
        # NOTE: on the root itself: a leaf root must receive the gradient (the replayed
        # nodes take the root's grad_fn as their edge now, as it is at this moment)
        replayed = replay_view_ops(chain, root)
        x.grad_fn = replayed.grad_fn
        x._requires_grad = replayed._requires_grad
    x._view = (root, chain, version)


def remember_view(root: Tensor, view: Tensor) -> None:
    """Keep a weak reference to ``view`` on ``root``, a tensor that does not require grad:
    should the root come to require grad (an in-place op with a tensor that does, or
    ``requires_grad_()``), ``wake_views`` makes its views require grad too, as PyTorch's
    views follow their base."""
    views = root._views
    if views is None:
        root._views = [weakref.ref(view)]
        return
    n = len(views)
    if n >= 16 and n & (n - 1) == 0:
        views[:] = [r for r in views if r() is not None]  # amortised pruning of dead ones
    views.append(weakref.ref(view))


def wake_views(root: Tensor) -> None:
    """``root`` has just come to require grad: give its live views their history."""
    views, root._views = root._views, None
    for ref in views or ():
        v = ref()
        if v is not None and v._view is not None and v._view[0] is root:
            _replay_history(v, v._view, v._version[0])


def replay_view_ops(chain: tuple, t: Tensor) -> Tensor:
    """Redo a view's chain of ``(op, args)`` on ``t`` (its root, or a stand-in for it)."""
    for op, args in chain:
        t = op(t, *args)
    return t


def element_strides(data) -> tuple:
    """Strides in elements: NumPy's for an array; a trace value's layout as its view ops
    left it (contiguous unless a view op said otherwise)."""
    if type(data) is np.ndarray:
        return tuple(s // data.itemsize for s in data.strides)
    strides = getattr(data, "strides", None)
    return tuple(strides) if strides is not None else contiguous_strides(data.shape)


def contiguous_strides(shape) -> tuple:
    strides, step = [], 1
    for n in reversed(tuple(shape)):
        strides.append(step)
        step *= max(n, 1)   # (no int(): a traced size stays symbolic)
    return tuple(reversed(strides))


def is_contiguous_layout(shape, strides) -> bool:
    expected = 1
    for n, s in zip(reversed(tuple(shape)), reversed(tuple(strides))):
        if n == 0:
            return True
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


def _rebuild(array, requires_grad):
    t = _wrap(array)
    t._requires_grad = requires_grad
    return t


def has_values(t: Tensor) -> bool:
    """Whether ``t`` holds concrete values: a compile trace's tensors hold only a shape and
    dtype. The one way library code asks before checking values (index ranges, ...)."""
    return isinstance(t._data, np.ndarray)


def _concrete(data, what: str) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data
    if getattr(data, "on_device", False):  # a CUDA tensor (runtime.cuda_device.DeviceArray)
        if what in ("numpy()", "__array__"):
            raise TypeError("can't convert cuda:0 device type tensor to numpy. Use "
                            "Tensor.cpu() to copy the tensor to host memory first.")
        return data.get()
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
