"""The NumPy protocol on ``DeviceArray``: elementwise ufuncs and operators run on the device.

Library code that updates storage in place with NumPy (the optimizers' ``w -= lr * g``,
``np.sqrt(v)``, ``np.divide(m, d, out=d)``, the autograd engine's accumulation) works on
CUDA storage unchanged: a ufunc on device arrays is a one-op elementwise program (a graph
of ``Op``, planned and run by ``runtime.cuda_program``, cached per op, operand shapes and
dtypes), and ``out=`` / in-place operators copy the result into the given array's memory
(the array keeps its identity, as ``w`` must). Python scalars are 0-d device inputs of
their sibling's dtype (weak, as NumPy 2 promotes them). A ufunc whose ``out`` is a host
array runs on the host with the device operands copied there. ``np.asarray`` of a device
array is a host copy. Anything else NumPy would do raises ``TypeError`` naming it.

>>> sorted(UFUNC_OPS)[:3]
['absolute', 'add', 'divide']
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..codegen.graph import Graph
from ..codegen.ops import COMPARISON, Op
from ..codegen.schedule import plan
from .cuda_device import CudaDevice, DeviceArray
from .cuda_program import CudaProgram

UFUNC_OPS = {"add": Op.ADD, "subtract": Op.SUB, "multiply": Op.MUL, "divide": Op.DIV,
             "negative": Op.NEG, "sqrt": Op.SQRT, "maximum": Op.MAXIMUM,
             "minimum": Op.MINIMUM, "exp": Op.EXP, "log": Op.LOG, "absolute": Op.ABS,
             "power": Op.POW, "sign": Op.SIGN, "tanh": Op.TANH, "less": Op.CMPLT,
             "less_equal": Op.CMPLE, "equal": Op.CMPEQ, "not_equal": Op.CMPNE}
_programs: dict[tuple, CudaProgram] = {}


def _weak_dtype(value, sibling: np.dtype | None) -> np.dtype:
    if sibling is not None:
        if isinstance(value, float) and sibling.kind in "iub":
            return np.dtype(np.float32)   # int array * 0.5: float, as NumPy's result
        return sibling
    return np.result_type(value)


def elementwise(op: Op, operands: list[Any], device: CudaDevice) -> DeviceArray:
    """``op`` on device arrays, host arrays and scalars: a fresh device array."""
    sibling = next((np.dtype(a.dtype) for a in operands if hasattr(a, "dtype")
                    and not isinstance(a, np.generic)), None)
    arrays: list[DeviceArray] = []
    for a in operands:
        if isinstance(a, DeviceArray):
            arrays.append(a)
        elif isinstance(a, np.ndarray):
            arrays.append(device.to_device(a))
        elif isinstance(a, (numbers.Number, np.generic)):
            arrays.append(device.to_device(np.array(a, dtype=_weak_dtype(a, sibling))))
        else:
            raise TypeError(f"{op.name} on a CUDA array: unsupported operand {type(a).__name__}")
    key = (op, tuple((a.shape, a.dtype) for a in arrays), id(device))
    program = _programs.get(key)
    if program is None:
        program = _programs[key] = _compile(op, arrays, device)
    return program(arrays)[0]


def _compile(op: Op, arrays: list[DeviceArray], device: CudaDevice) -> CudaProgram:
    g = Graph()
    dtype = np.result_type(*[a.dtype for a in arrays])
    if op is Op.DIV and dtype.kind in "iub":
        dtype = np.dtype(np.float64)
    ids = []
    for i, a in enumerate(arrays):
        node = g.add(Op.INPUT, (), a.shape, a.dtype, index=i)
        if a.dtype != dtype:
            node = g.add(Op.CAST, (node.id,), a.shape, dtype, dtype=dtype)
        ids.append(node.id)
    shape = np.broadcast_shapes(*[a.shape for a in arrays])
    out_dtype = np.dtype(np.bool_) if op in COMPARISON else dtype
    g.outputs = [g.add(op, tuple(ids), tuple(shape), out_dtype).id]
    return CudaProgram(plan(g), None, device)


def _cast(value: DeviceArray, dtype: np.dtype) -> DeviceArray:
    key = ("cast", value.shape, value.dtype, dtype, id(value.device))
    program = _programs.get(key)
    if program is None:
        g = Graph()
        x = g.add(Op.INPUT, (), value.shape, value.dtype, index=0)
        g.outputs = [g.add(Op.CAST, (x.id,), value.shape, dtype, dtype=dtype).id]
        program = _programs[key] = CudaProgram(plan(g), None, value.device)
    return program([value])[0]


def _write(out: DeviceArray, value: DeviceArray) -> DeviceArray:
    """Copy ``value`` into ``out``'s memory (cast on the device when the dtypes differ)."""
    if value.shape != out.shape:
        raise ValueError(f"non-broadcastable output operand with shape {out.shape} doesn't "
                         f"match the broadcast shape {value.shape}")
    if value.dtype != out.dtype:
        value = _cast(value, out.dtype)
    if out.nbytes:
        out.device.driver.copy_dtod(out.ptr, value.ptr, out.nbytes)
    return out


def _array_ufunc(self: DeviceArray, ufunc, method, *inputs, out=None, casting=None, **kwargs):
    # ``casting="unsafe"`` is what ``out=`` gets anyway: the result is cast to out's dtype
    if method != "__call__" or kwargs or ufunc.__name__ not in UFUNC_OPS:
        raise TypeError(f"numpy.{ufunc.__name__}.{method} is not supported on a CUDA array")
    outs = out if isinstance(out, tuple) else (out,) if out is not None else ()
    if any(isinstance(o, np.ndarray) for o in outs):   # a host result: compute there
        host = [np.asarray(a) for a in inputs]
        return ufunc(*host, out=out)
    result = elementwise(UFUNC_OPS[ufunc.__name__], list(inputs), self.device)
    if outs:
        return _write(outs[0], result)
    return result


def _binary(name: str, reflected: bool = False, inplace: bool = False):
    op = UFUNC_OPS[name]

    def method(self: DeviceArray, other):
        if not isinstance(other, (DeviceArray, np.ndarray, numbers.Number, np.generic)):
            return NotImplemented
        operands = [other, self] if reflected else [self, other]
        result = elementwise(op, operands, self.device)
        return _write(self, result) if inplace else result
    return method


def _array(self: DeviceArray, dtype=None, copy=None) -> np.ndarray:
    host = self.get()
    return host if dtype is None else host.astype(dtype)


def _setitem(self: DeviceArray, key, value) -> None:
    if key is not Ellipsis and key != slice(None):
        # NOTE (host externs): a partial write takes a host round trip, like INDEX_PUT
        host = self.get()
        host[key] = value.get() if isinstance(value, DeviceArray) else value
        if self.nbytes:
            self.device.driver.copy_htod(self.ptr, host)
        return
    if isinstance(value, DeviceArray):
        _write(self, value)
        return
    host = np.broadcast_to(np.asarray(value, dtype=self.dtype), self.shape)
    if self.nbytes:
        self.device.driver.copy_htod(self.ptr, np.ascontiguousarray(host))


def _array_function(self: DeviceArray, func, types, args, kwargs):
    name = func.__name__
    if name in ("zeros_like", "empty_like", "ones_like", "full_like"):
        like = args[0]
        dtype = np.dtype(kwargs.get("dtype") or like.dtype)
        out = like.device.empty(like.shape, dtype)
        if name == "zeros_like":
            out.device.driver.memset(out.ptr, 0, out.nbytes)
        elif name != "empty_like":
            _setitem(out, Ellipsis, 1 if name == "ones_like" else args[1])
        return out
    if name == "clip":   # np.clip(x, lo, hi, out=...): maximum, then minimum
        x, lo, hi = (list(args) + [kwargs.pop("a_min", None), kwargs.pop("a_max", None)])[:3]
        out = kwargs.pop("out", None)
        if kwargs:
            raise TypeError(f"numpy.clip on a CUDA array: unsupported {sorted(kwargs)}")
        if lo is not None:
            x = elementwise(Op.MAXIMUM, [x, lo], self.device)
        if hi is not None:
            x = elementwise(Op.MINIMUM, [x, hi], self.device)
        return x if out is None else _write(out, x)
    if name == "copyto":
        dst, src = args[0], args[1]
        if isinstance(dst, DeviceArray):
            _setitem(dst, Ellipsis, src)
            return None
        np.copyto(dst, np.asarray(src), **kwargs)
        return None
    raise TypeError(f"numpy.{name} is not supported on a CUDA array (copy it to the host "
                    f"with .get() first)")


def install() -> None:
    """Attach the protocol to ``DeviceArray`` (done on import)."""
    methods: dict[str, Any] = {
        "__array_ufunc__": _array_ufunc, "__array_function__": _array_function,
        "__array__": _array, "__setitem__": _setitem,
        "__neg__": lambda self: elementwise(Op.NEG, [self], self.device),
        "__float__": lambda self: float(self.get())}
    for name, dunder in (("add", "add"), ("subtract", "sub"), ("multiply", "mul"),
                         ("divide", "truediv")):
        methods[f"__{dunder}__"] = _binary(name)
        methods[f"__r{dunder}__"] = _binary(name, reflected=True)
        methods[f"__i{dunder}__"] = _binary(name, inplace=True)
    for name, method in methods.items():
        setattr(DeviceArray, name, method)


install()
