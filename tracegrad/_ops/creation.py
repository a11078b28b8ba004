"""Tensor creation: tensor/as_tensor/from_numpy, zeros/ones/full/empty, ranges, eye,
random tensors (from the process-wide generator or a given ``Generator``), ``*_like``."""
from __future__ import annotations

import numbers

import numpy as np

from .. import _dtype
from ..cuda import to_device
from .._device import device as _device
from .._dispatch import apply, made_from_sizes
from .._primitives import PRIMITIVES as P
from .._random import numpy_generator
from .._tensor import Tensor, _wrap
from ..codegen.ops import Op


# The device factory functions use when given none (``set_default_device``); None is the CPU.
_default_device: list = [None]


def set_default_device(device) -> None:
    """Make factory functions (``zeros``, ``tensor``, ``rand``, ...) allocate on ``device``
    when they are not given one; ``None`` restores the CPU.

    >>> import tracegrad as torch
    >>> torch.set_default_device("cpu"); torch.get_default_device()
    device(type='cpu')
    """
    _default_device[0] = None if device is None or _device(device).type == "cpu" else _device(device)


def get_default_device() -> _device:
    return _default_device[0] or _device("cpu")


def _finish(data: np.ndarray, requires_grad: bool = False, device=None) -> Tensor:
    t = _wrap(data)
    if device is None:
        device = _default_device[0]
    if device is not None:
        dev = _device(device)
        if dev.type != "cpu":
            return to_device(t, dev).requires_grad_(requires_grad) if requires_grad else to_device(t, dev)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _sizes(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    # (a compile guard trace's symbolic size is an int: kept, NOTE (tensors made from a
    # size) in compiler/made_sizes.py)
    for s in size:
        if isinstance(s, float):   # PyTorch's: zeros(2.0) is an error, not zeros(2)
            raise TypeError(f"size must be a tuple of ints, but got an element of type float "
                            f"({s!r} in {tuple(size)})")
        if type(s) is int and s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: "
                               f"{list(size)}")
    return tuple(s if isinstance(s, int) else int(s) for s in size)


def _made(np_fn, shape: tuple, *args, requires_grad=False, device=None) -> Tensor:
    """``np_fn(shape, *args)`` as a new tensor; ``shape`` may hold a compile guard trace's
    symbolic sizes (``made_from_sizes``)."""
    return made_from_sizes(shape, lambda s, *a: _finish(np_fn(s, *a), requires_grad, device),
                           shape, *args)


def _np_dtype(dtype, default=None) -> np.dtype:
    if dtype is not None:
        return _dtype.to_numpy_dtype(dtype)
    return _dtype.get_default_dtype().np if default is None else np.dtype(default)


def _element_dtype(x) -> np.dtype:
    """One element's dtype in PyTorch's inference: Python floats take the default dtype,
    ints int64, bools bool; NumPy scalars and arrays and tensors keep their own."""
    if isinstance(x, (np.ndarray, np.generic)):
        if x.dtype.kind not in "biuf":
            raise TypeError(f"tensor(): can't convert a NumPy array of dtype {x.dtype}; "
                            f"supported: {', '.join(d.name for d in _dtype.ALL)}")
        return x.dtype
    if isinstance(x, Tensor):
        return x._data.dtype
    if isinstance(x, (str, bytes)):
        raise TypeError(f"tensor(): invalid data type '{type(x).__name__}' (no dtype holds it)")
    if isinstance(x, bool):
        return np.dtype(np.bool_)
    if isinstance(x, numbers.Integral):
        return np.dtype(np.int64)
    if isinstance(x, numbers.Real):
        return _dtype.get_default_dtype().np
    raise RuntimeError(f"tensor(): Could not infer dtype of {type(x).__name__}")


def _infer_dtype(data) -> np.dtype:
    """PyTorch's inference for ``tensor(data)``: the promotion of every element's dtype
    (``_element_dtype``), so ``[np.float64(1.5)]`` is float64 and ``[1, 2.5]`` the default
    float dtype; an empty sequence is the default dtype."""
    if not isinstance(data, (list, tuple, range)):
        return _element_dtype(data)
    if len(data) == 0:
        return _dtype.get_default_dtype().np
    result = None
    for kind in set(map(type, data)):   # (one look per Python scalar type, not per element)
        if kind is float or kind is int or kind is bool:
            found = _element_dtype(kind())
        else:
            found = None
            for item in data:
                if type(item) is kind:
                    dt = _infer_dtype(item)
                    found = dt if found is None else _dtype.promote_types(found, dt)
        result = found if result is None else _dtype.promote_types(result, found)
    return result


def _from_nested(data):
    """Lists that contain tensors (e.g. [t1, t2]) become one array."""
    if isinstance(data, (list, tuple)) and any(isinstance(d, (Tensor, list, tuple)) for d in data):
        return [_from_nested(d) for d in data]
    if isinstance(data, Tensor):
        return np.asarray(data._data)
    if isinstance(data, (list, tuple)):
        return [d.item() if isinstance(d, Tensor) else d for d in data]
    return data


def tensor(data, dtype=None, device=None, requires_grad: bool = False, pin_memory=False) -> Tensor:
    """A new tensor that copies ``data`` (nested lists, scalars, arrays or tensors)."""
    if isinstance(data, Tensor):
        arr = np.array(data._data, dtype=_np_dtype(dtype, data._data.dtype), copy=True)
        return _finish(arr, requires_grad, device)
    np_dtype = _dtype.to_numpy_dtype(dtype) if dtype is not None else _infer_dtype(data)
    data = _from_nested(data)
    arr = np.array(data, dtype=np_dtype, copy=True)
    _dtype.from_numpy_dtype(arr.dtype)
    return _finish(arr, requires_grad, device)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    if isinstance(data, Tensor):
        return data if dtype is None else data.to(dtype)
    if isinstance(data, np.ndarray) and (dtype is None or _dtype.to_numpy_dtype(dtype) == data.dtype):
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """Share ``array``'s memory: writes through either side are seen by both."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(array).__name__}")
    _dtype.from_numpy_dtype(array.dtype)
    return _wrap(array)


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _made(np.zeros, _sizes(size), _np_dtype(dtype), requires_grad=requires_grad,
                 device=device)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _made(np.ones, _sizes(size), _np_dtype(dtype), requires_grad=requires_grad,
                 device=device)


def empty(*size, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    return _made(np.empty, _sizes(size), _np_dtype(dtype), requires_grad=requires_grad,
                 device=device)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    if dtype is None:
        if isinstance(fill_value, bool):
            dtype = _dtype.bool_
        elif isinstance(fill_value, numbers.Integral):
            dtype = _dtype.int64
    size = (size,) if isinstance(size, numbers.Integral) else tuple(size)
    if _followed_float(fill_value, _np_dtype(dtype), requires_grad):
        return full(size, -0.0, dtype=dtype, device=device) + fill_value
    return _made(np.full, size, fill_value, _np_dtype(dtype), requires_grad=requires_grad,
                 device=device)


def _followed_float(value, np_dtype: np.dtype, requires_grad: bool) -> bool:
    """``value`` is a compile trace's followed float argument (it says it is a float and
    is none: NOTE (float arguments) in compiler/float_args.py) filling a float tensor: the
    fill is ``-0.0 + value`` (the same bits, -0.0 included), which the trace reads at each
    call, where NumPy's fill would read a constant and specialise the program per value."""
    return (isinstance(value, float) and hasattr(type(value), "runtime_input")
            and np_dtype.kind == "f" and not requires_grad)   # (a symbolic size's SymFloat
    #   has none: its guard traces compare graphs, where a NumPy fill is their constant)


def _like(x: Tensor, dtype):
    return x._data.dtype if dtype is None else _dtype.to_numpy_dtype(dtype)


def zeros_like(x: Tensor, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    return _made(np.zeros, tuple(x.shape), _like(x, dtype), requires_grad=requires_grad,
                 device=device or _dev(x))


def ones_like(x: Tensor, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    return _made(np.ones, tuple(x.shape), _like(x, dtype), requires_grad=requires_grad,
                 device=device or _dev(x))


def empty_like(x: Tensor, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    return _made(np.empty, tuple(x.shape), _like(x, dtype), requires_grad=requires_grad,
                 device=device or _dev(x))


def full_like(x: Tensor, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    if _followed_float(fill_value, _like(x, dtype), requires_grad):
        return full_like(x, -0.0, dtype, device) + fill_value
    return _made(np.full, tuple(x.shape), fill_value, _like(x, dtype),
                 requires_grad=requires_grad, device=device or _dev(x))


def _dev(x):
    d = getattr(x, "_device", None)
    return None if d is None or d.type == "cpu" else d


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if all(type(v) in (int, float, bool) or isinstance(v, np.generic) for v in vals):
        # (a compile guard trace's symbolic bound is left to made_from_sizes below)
        first, last, by = vals
        if by == 0:
            raise RuntimeError("arange: step must be nonzero")
        if by > 0 and last < first or by < 0 and last > first:
            # NOTE: PyTorch raises where NumPy gives an empty range
            raise RuntimeError(f"arange: upper bound and lower bound inconsistent with step "
                               f"sign (start={first}, end={last}, step={by})")
    elif step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if dtype is None:
        is_int = all(isinstance(v, numbers.Integral) for v in vals)
        dtype = _dtype.int64 if is_int else _dtype.get_default_dtype()
    np_dtype = _dtype.to_numpy_dtype(dtype)

    def make(*vals):
        return _finish(np.arange(*vals, dtype=np.float64 if np_dtype.kind == "f" else np_dtype)
                       .astype(np_dtype), requires_grad, device)
    if not all(type(v) is int for v in vals) and all(isinstance(v, int) for v in vals):
        # a compile guard trace's symbolic bound (NOTE (tensors made from a size) in
        # compiler/made_sizes.py): the length as ``len(range(...))`` gives it, followed
        first, last, by = vals
        length = max(0, (last - first + by - 1) // by if by > 0 else (first - last - by - 1) // -by)
        return made_from_sizes((length,), make, *vals)
    return make(*vals)


def _check_steps(op: str, steps) -> None:
    if int(steps) < 0:
        raise RuntimeError(f"{op}: number of steps must be non-negative, got {steps}")


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad=False) -> Tensor:
    _check_steps("linspace", steps)
    return _finish(np.linspace(start, end, int(steps)).astype(_np_dtype(dtype)), requires_grad, device)


def logspace(start, end, steps: int, base=10.0, dtype=None, device=None, requires_grad=False):
    _check_steps("logspace", steps)
    return _finish(np.logspace(start, end, int(steps), base=base).astype(_np_dtype(dtype)),
                   requires_grad, device)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad=False) -> Tensor:
    dt = _np_dtype(dtype)
    return made_from_sizes((n, n if m is None else m),
                           lambda n, m: _finish(np.eye(n, m, dtype=dt), requires_grad, device),
                           n, m)


def scalar_tensor(s, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A 0-d tensor of ``s`` in the default float dtype unless ``dtype`` is given."""
    return _finish(np.array(s, dtype=_np_dtype(dtype)), requires_grad, device)


def tril_indices(row: int, col: int, offset: int = 0, dtype=None, device=None) -> Tensor:
    """The (2, N) row and column indices of the lower triangle of a row x col matrix.

    >>> import tracegrad as torch
    >>> torch.tril_indices(3, 3).tolist()
    [[0, 1, 1, 2, 2, 2], [0, 0, 1, 0, 1, 2]]
    """
    rows, cols = np.tril_indices(int(row), int(offset), int(col))
    return _finish(np.stack([rows, cols]).astype(_np_dtype(dtype, np.int64)), False, device)


def triu_indices(row: int, col: int, offset: int = 0, dtype=None, device=None) -> Tensor:
    """The (2, N) row and column indices of the upper triangle of a row x col matrix."""
    rows, cols = np.triu_indices(int(row), int(offset), int(col))
    return _finish(np.stack([rows, cols]).astype(_np_dtype(dtype, np.int64)), False, device)


def _random(op: Op, size, dtype, generator, requires_grad, device, draw) -> Tensor:
    np_dtype = _np_dtype(dtype)
    if np_dtype.kind != "f":
        raise TypeError(f"{op.name.lower()}: expected a floating point dtype, got {np_dtype}")
    if generator is None:
        # Through the primitive, so a compile trace records a RAND/RANDN node that draws
        # from the same generator at every call.
        out = apply(P[op], (), {"shape": size, "dtype": np_dtype})
    else:
        out = _wrap(draw(numpy_generator(generator)).astype(np_dtype, copy=False))
    if device is None:
        device = _default_device[0]
    if device is not None and _device(device).type != "cpu":
        out = to_device(out, _device(device))
    if requires_grad:
        out.requires_grad_(True)
    return out


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    size = _sizes(size)
    return _random(Op.RAND, size, dtype, generator, requires_grad, device,
                   lambda g: g.random(size))


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    size = _sizes(size)
    return _random(Op.RANDN, size, dtype, generator, requires_grad, device,
                   lambda g: g.standard_normal(size))


def rand_like(x: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return rand(*x.shape, dtype=dtype or x.dtype, device=device or _dev(x),
                requires_grad=requires_grad)


def randn_like(x: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return randn(*x.shape, dtype=dtype or x.dtype, device=device or _dev(x),
                 requires_grad=requires_grad)


def randint(low, high=None, size=None, generator=None, dtype=None, device=None,
            requires_grad=False) -> Tensor:
    if size is None and isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if low >= high:
        raise RuntimeError(f"randint: random_ expects 'from' to be less than 'to', but got "
                           f"from={low} >= to={high}")
    arr = numpy_generator(generator).integers(low, high, size=tuple(size))
    return _finish(arr.astype(_np_dtype(dtype, np.dtype(np.int64))), requires_grad, device)


def randint_like(x: Tensor, low, high=None, dtype=None) -> Tensor:
    return randint(low, high, tuple(x.shape), dtype=dtype or x.dtype)


def randperm(n: int, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    arr = numpy_generator(generator).permutation(int(n))
    return _finish(arr.astype(_np_dtype(dtype, np.dtype(np.int64))), requires_grad, device)


def normal(mean=0.0, std=1.0, size=None, generator=None, dtype=None, device=None) -> Tensor:
    """``normal(mean, std, size)``; mean/std may be tensors (then their broadcast shape)."""
    if isinstance(std, numbers.Real) and not std >= 0:   # (NaN too, as PyTorch)
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        shape = np.broadcast_shapes(tuple(getattr(mean, "shape", ())), tuple(getattr(std, "shape", ())))
        dt = (mean if isinstance(mean, Tensor) else std).dtype
        return randn(*shape, generator=generator, dtype=dt) * std + mean
    return randn(*_sizes((size,) if isinstance(size, numbers.Integral) else tuple(size)),
                 generator=generator, dtype=dtype) * std + mean


def bernoulli(p: Tensor, generator=None) -> Tensor:
    return (rand(*p.shape, generator=generator, dtype=p.dtype) < p).to(p.dtype)


def multinomial(probs: Tensor, num_samples: int, replacement: bool = False, generator=None):
    g = numpy_generator(generator)
    p = np.asarray(probs._data, dtype=np.float64)
    rows = p.reshape(-1, p.shape[-1])
    out = np.stack([g.choice(rows.shape[1], num_samples, replace=replacement, p=r / r.sum())
                    for r in rows])
    return _finish(out.reshape(p.shape[:-1] + (num_samples,)).astype(np.int64))


__all__ = ["set_default_device", "get_default_device", "tensor", "as_tensor", "from_numpy", "zeros", "ones", "empty", "full", "zeros_like",
           "ones_like", "empty_like", "full_like", "arange", "linspace", "logspace", "eye",
           "rand", "randn", "rand_like", "randn_like", "randint", "randint_like", "randperm",
           "normal", "bernoulli", "multinomial", "scalar_tensor", "tril_indices",
           "triu_indices"]
