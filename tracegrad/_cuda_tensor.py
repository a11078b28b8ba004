"""CUDA tensors: moving a tensor between devices, and primitives run eagerly on the device.

A CUDA tensor is a ``Tensor`` whose ``_data`` is a ``runtime.cuda_device.DeviceArray``
and whose ``_device`` is ``cuda:0``. The dispatcher sends every primitive with a CUDA
input here (``run_eager``): the primitive becomes a one-op graph (its inputs are graph
inputs; a Python scalar is a 0-d input of its sibling's dtype, as a trace makes it),
planned and lowered like any compiled program and run by ``runtime.cuda_program``. The
compiled program is cached per primitive, attributes and input shapes/dtypes, so an op
compiles once and every later call is a launch.

NOTE (device views): a movement op on a CUDA tensor copies (the one-op program ends in a
same-dtype cast, so it is a kernel): CUDA tensors do not share storage with their views.
A view remembers its base weakly (``views.mark_cuda_copy``); an in-place write into it
while the base lives raises rather than silently missing the base, and one whose base is
gone (``arange(12).reshape(3, 4)``) is an ordinary tensor. Writes into a CUDA tensor
itself work (through the NumPy protocol of ``runtime.cuda_numpy``).

Mixed devices raise PyTorch's error; a 0-d CPU tensor may join a CUDA op (PyTorch lets
CPU scalars do so).
"""
from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

from ._device import device as _device_cls
from ._tensor import Tensor, _wrap
from .codegen.ops import MOVEMENT, Op

if TYPE_CHECKING:
    from ._primitives.registry import Primitive
    from .runtime.cuda_device import CudaDevice, DeviceArray
    from .runtime.cuda_program import CudaProgram

CUDA0 = _device_cls("cuda", 0)
_MAX_SCALARS = 512

_programs: dict[tuple, tuple[CudaProgram, Any]] = {}
_scalars: dict[tuple, DeviceArray] = {}
stats = {"compiles": 0, "calls": 0}


def _extern_eval(node, arrays):
    from ._primitives import PRIMITIVES   # the registry imports the dispatcher, which imports this
    return PRIMITIVES[node.op].eager(*arrays, **node.attrs)


def _scalar_dtype(value) -> np.dtype:
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(value, numbers.Integral):
        return np.dtype(np.int64)
    return np.dtype(np.float32)


def _sibling_dtype(op: Op, args) -> np.dtype | None:
    """A Python scalar takes the dtype of the tensor it is combined with (it is 'weak')."""
    for a in (args[1:] if op is Op.WHERE else args):
        dt = getattr(a, "dtype", None)
        if dt is not None:
            return np.dtype(dt)
    return None


def _runtime():
    """NOTE (lazy CUDA runtime): ``import tracegrad`` loads no part of ``runtime`` (as NOTE
    (lazy compiler) in tracegrad/__init__.py); the CUDA runtime loads when a tensor first
    moves to the device (``tracegrad.cuda.to_device``), before any of this can run."""
    from .runtime import cuda_device, cuda_numpy  # noqa: F401 - cuda_numpy: NumPy protocol
    return cuda_device


def _device_scalar(dev: CudaDevice, value, dtype: np.dtype) -> DeviceArray:
    key = (type(value), value, dtype, id(dev))
    arr = _scalars.get(key)
    if arr is None:
        if len(_scalars) >= _MAX_SCALARS:
            _scalars.clear()
        arr = _scalars[key] = dev.to_device(np.array(value, dtype=dtype))
    return arr


def mixed_device_error(prim: Primitive, args) -> RuntimeError:
    return RuntimeError(f"Expected all tensors to be on the same device, but found at least "
                        f"two devices, cuda:0 and cpu! (when checking arguments for "
                        f"{prim.name}: shapes "
                        f"{[tuple(a.shape) for a in args if hasattr(a, 'shape')]})")


def _freeze(value):
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    try:
        hash(value)
        return value
    except TypeError:
        return repr(value)


def run_eager(prim: Primitive, inputs: tuple, args: list, attrs: dict) -> DeviceArray:
    """``prim`` on the device (see module doc); ``args`` are the inputs' data."""
    dev = _runtime().current()
    sibling = _sibling_dtype(prim.op, args)
    arrays: list[DeviceArray] = []
    for x, a in zip(inputs, args):
        if getattr(a, "on_device", False):
            if a.device is not dev:
                raise RuntimeError(f"{prim.name}: a CUDA tensor from a device that was reset")
            arrays.append(a)
        elif isinstance(x, Tensor) and x._device.type == "cuda":
            # a constant made on the host for the device (functions.full(like=...))
            arrays.append(dev.to_device(a))
        elif isinstance(x, Tensor):   # a CPU tensor: only a 0-d one may join
            if a.ndim != 0:
                raise mixed_device_error(prim, args)
            arrays.append(_device_scalar(dev, a.item(), a.dtype))
        else:
            arrays.append(_device_scalar(dev, a, sibling if sibling is not None
                                         else _scalar_dtype(a)))
    key = (prim.op, _freeze(attrs), tuple((a.shape, a.dtype) for a in arrays))
    entry = _programs.get(key)
    if entry is None or entry[1] is not dev:
        entry = _programs[key] = (_compile(prim, arrays, attrs, dev), dev)
    stats["calls"] += 1
    return entry[0](arrays)[0]


def _compile(prim: Primitive, arrays: list[DeviceArray], attrs: dict,
             dev: CudaDevice) -> CudaProgram:
    from .codegen.graph import Graph          # (see _runtime: loaded with the device)
    from .codegen.schedule import plan       # (as above)
    from .runtime.cuda_program import CudaProgram  # (as above)
    g = Graph()
    ids = tuple(g.add(Op.INPUT, (), a.shape, a.dtype, index=i).id for i, a in enumerate(arrays))
    shape, dtype = prim.shape(*arrays, **attrs)
    node = g.add(prim.op, ids, tuple(shape), np.dtype(dtype), **attrs)
    if prim.op in MOVEMENT:  # a view alone is index math, not a kernel: copy it out
        node = g.add(Op.CAST, (node.id,), node.shape, node.dtype, dtype=node.dtype)
    g.outputs = [node.id]
    stats["compiles"] += 1
    return CudaProgram(plan(g), _extern_eval, dev)


def move_data(t: Tensor, dev: _device_cls) -> Tensor:
    """A copy of ``t``'s data on ``dev``, without autograd history."""
    data = t._data
    if dev.type == "cpu":
        return _wrap(data.get() if getattr(data, "on_device", False) else np.array(data))
    if getattr(data, "on_device", False):
        out = _wrap(data)
    else:
        out = _wrap(_runtime().current().to_device(np.asarray(data)))
    out._device = CUDA0
    return out
