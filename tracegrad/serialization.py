"""``save`` / ``load``: tracegrad's own format, PyTorch's checkpoints and safetensors.

Formats (``load`` recognises each by its first bytes):

- ``"tracegrad"``: the native format (``_serialization_native``). It holds data (tensors,
  containers, plain values) and never code: there is no pickle in it.
- ``"torch"``: PyTorch's zip checkpoint (``data.pkl`` + storages), what ``torch.save``
  writes and ``torch.load(weights_only=True)`` reads (``_serialization_torch``).
- ``"safetensors"``: the model hubs' format, a dict of tensors
  (``_serialization_safetensors``).

Decision (PyTorch >= 2.6 semantics): ``save(obj, f)`` writes any object. A data tree goes
to the native format; anything else (a whole model, a custom class) goes to PyTorch's zip
format, which pickles it. ``load`` defaults to ``weights_only=True``: native and
safetensors files only hold data, and zip checkpoints go through a restricted unpickler that
rebuilds tensors, containers and the classes allow-listed with ``add_safe_globals`` /
``safe_globals``, and refuses anything else without importing or calling it.
``weights_only=False`` is the explicit opt-in to full unpickling, with PyTorch's warning.

>>> import io, tracegrad as torch
>>> buf = io.BytesIO()
>>> save({"w": torch.arange(3), "step": 7}, buf)
>>> _ = buf.seek(0); load(buf)
{'w': tensor([0, 1, 2]), 'step': 7}
"""
from __future__ import annotations

import io
import os
import pickle
import tempfile
import warnings
from typing import Any

from ._serialization_native import (FORMAT_VERSION, MAGIC, _NotData, _PREAMBLE, _read_exact,
                                    load_native, native_parts)
from ._serialization_torch import (_SAFE_GLOBALS, add_safe_globals, clear_safe_globals,
                                   get_safe_globals, safe_globals)
from ._size import Size
from ._tensor import Tensor

__all__ = ["save", "load", "FORMAT_VERSION", "MAGIC", "add_safe_globals", "clear_safe_globals",
           "get_safe_globals", "safe_globals"]

_FORMATS = ("tracegrad", "torch", "safetensors")


def save(obj: Any, f, pickle_module=None, pickle_protocol=None,
         _use_new_zipfile_serialization: bool = True, *, format: str | None = None,
         metadata: dict | None = None) -> None:
    """Write ``obj`` to ``f``, a path (written atomically) or a binary file object.

    ``format``: ``"tracegrad"`` (data only: tensors, containers, plain values), ``"torch"``
    (PyTorch's zip checkpoint, any picklable object; ``torch.load`` reads it) or
    ``"safetensors"`` (a dict of tensors; ``metadata`` adds str-to-str entries). The default
    picks ``"tracegrad"`` for data and ``"torch"`` for anything else (see the module
    docstring). Shared storage is not preserved: each tensor is saved as its own copy.
    """
    if pickle_module is not None and getattr(pickle_module, "__name__", "") != "pickle":
        raise TypeError("tracegrad.save: a custom pickle_module is not supported")
    if pickle_protocol not in (None, 2):
        raise ValueError(f"tracegrad.save: pickle_protocol must be 2 (what PyTorch writes), "
                         f"got {pickle_protocol!r}")
    if format is not None and format not in _FORMATS:
        raise ValueError(f"tracegrad.save: unknown format {format!r}; expected one of "
                         f"{', '.join(_FORMATS)}")
    parts = None
    if format in (None, "tracegrad"):
        try:
            parts = native_parts(obj)
        except _NotData:
            if format == "tracegrad":
                raise
    if parts is None and format == "safetensors":
        from ._serialization_safetensors import save_bytes
        parts = [save_bytes(obj, metadata)]
    elif parts is None:
        parts = [_torch_bytes(obj)]
    _write_parts(f, parts)


def _torch_bytes(obj) -> bytes:
    from ._serialization_torch import save_zip
    out = io.BytesIO()
    try:
        save_zip(obj, out)
    except (pickle.PicklingError, AttributeError, TypeError) as e:
        kind = type(obj).__module__ + "." + type(obj).__qualname__
        raise TypeError(f"tracegrad.save: cannot save an object of type {kind}: it is not a "
                        f"data tree and pickling it failed ({type(e).__name__}: {e})") from None
    return out.getvalue()


def _write_parts(f, parts: list) -> None:
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".tracegrad-save-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    out.write(part)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    else:
        if not hasattr(f, "write"):
            raise TypeError(f"tracegrad.save: f must be a path or a binary file object, "
                            f"got {type(f).__name__}")
        for part in parts:
            f.write(part)


def load(f, map_location=None, pickle_module=None, *, weights_only: bool | None = None,
         mmap=None, **pickle_load_args) -> Any:
    """Read a tracegrad, PyTorch (zip) or safetensors file from a path or a binary file
    object.

    ``weights_only`` (default True): PyTorch checkpoints are unpickled by a restricted
    unpickler (tensors, containers, dtypes and ``add_safe_globals`` entries only).
    ``weights_only=False`` unpickles anything, which can run code from the file: only for
    files you trust. ``map_location`` may name a device (``"cpu"``, a ``tracegrad.device``)
    to move every tensor to; dicts and callables are accepted for PyTorch compatibility and
    leave tensors on the CPU.
    """
    if weights_only is None:
        weights_only = True
    if not weights_only:
        warnings.warn(
            "You are using tracegrad.load with weights_only=False. It uses the default "
            "pickle module implicitly, and it is possible to construct malicious pickle data "
            "which will execute arbitrary code during unpickling. Only load files from "
            "sources you trust; prefer weights_only=True with "
            "tracegrad.serialization.add_safe_globals for the classes a checkpoint needs.",
            UserWarning, stacklevel=2)
    if isinstance(f, (str, os.PathLike)):
        name = repr(os.fspath(f))
        try:
            with open(f, "rb") as stream:
                return _load_stream(stream, name, map_location, weights_only)
        except FileNotFoundError:
            raise FileNotFoundError(f"tracegrad.load: no such file: {name}") from None
    if not hasattr(f, "read"):
        raise TypeError(f"tracegrad.load: f must be a path or a binary file object, got "
                        f"{type(f).__name__}")
    return _load_stream(f, repr(getattr(f, "name", f)), map_location, weights_only)


def _load_stream(stream, name: str, map_location, weights_only: bool = True):
    from ._serialization_safetensors import load_bytes, looks_like_safetensors
    pre = _read_exact(stream, _PREAMBLE.size)
    head = bytes(pre)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        from ._serialization_torch import load_zip
        data = io.BytesIO(head + stream.read())
        obj = load_zip(data, name, weights_only, dict(_SAFE_GLOBALS))
        return _map_location(obj, map_location)
    if not head.startswith(MAGIC) and looks_like_safetensors(head):
        return _map_location(load_bytes(head + stream.read(), name), map_location)
    if len(pre) < len(MAGIC) or bytes(pre[:len(MAGIC)]) != MAGIC:
        if head[:1] == b"\x80":
            hint = (" (it looks like a pickle or a legacy (pre-1.6) PyTorch file: re-save it "
                    "with torch.save's default zip format)")
        else:
            hint = " (expected a tracegrad, PyTorch zip or safetensors file)"
        raise RuntimeError(f"tracegrad.load({name}): not a tracegrad file: wrong magic number "
                           f"{bytes(pre[:len(MAGIC)])!r}, expected {MAGIC!r}{hint}")
    return _map_location(load_native(stream, pre, name), map_location)


def _map_location(obj, map_location):
    if map_location is None or callable(map_location) or isinstance(map_location, dict):
        return obj
    from ._device import device as _device_cls
    dev = _device_cls(map_location) if not isinstance(map_location, _device_cls) else map_location
    if dev.type == "cpu":
        return obj
    return _move(obj, dev)


def _move(obj, dev):
    if isinstance(obj, Tensor):
        return obj.to(dev)
    if isinstance(obj, dict):
        return type(obj)((k, _move(v, dev)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_move(v, dev) for v in obj]
    if isinstance(obj, tuple) and not isinstance(obj, Size):
        return tuple(_move(v, dev) for v in obj)
    return obj

