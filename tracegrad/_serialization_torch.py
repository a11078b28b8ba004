"""PyTorch's checkpoint format (what ``torch.save`` writes), read and written without torch.

A PyTorch checkpoint is a zip archive (stored, not compressed) with one top folder::

    archive/data.pkl      pickle (protocol 2) of the object; each tensor is a call
                          torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)
                          whose storage is a persistent id ('storage', torch.FloatStorage,
                          key, location, numel)
    archive/data/<key>    the storage's raw bytes (little-endian, 64-byte aligned)
    archive/byteorder     "little"
    archive/version       "3"

Reading with ``weights_only=True`` (the default) uses a restricted unpickler: the only
globals it resolves are the tensor-rebuild functions, dtypes, storage types and containers
below, plus what the user allow-lists (``add_safe_globals``). Any other global is refused
before anything is imported or called, which is what makes a malicious pickle harmless.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from typing import Any

import numpy as np

from . import _dtype
from ._device import device as _device_cls
from ._size import Size
from ._tensor import Tensor, _wrap

# storage class name <-> NumPy dtype; BFloat16 has no NumPy dtype and loads as float32.
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
    "ComplexDoubleStorage": np.complex128, "ComplexFloatStorage": np.complex64,
    "BFloat16Storage": "bfloat16",
}
_STORAGE_NAMES = {np.dtype(v): k for k, v in _STORAGE_DTYPES.items() if v != "bfloat16"}
_BYTES_PER = {"bfloat16": 2}


class _StorageType:
    """What ``torch.FloatStorage`` & co. resolve to: the element type of a storage."""

    def __init__(self, name: str) -> None:
        self.name = name
        kind = _STORAGE_DTYPES[name]
        self.np = None if kind == "bfloat16" else np.dtype(kind)
        self.itemsize = _BYTES_PER.get(kind) or self.np.itemsize


class _Storage:
    __slots__ = ("array", "kind")

    def __init__(self, array: np.ndarray, kind: _StorageType) -> None:
        self.array, self.kind = array, kind


def bfloat16_to_float32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 is the top half of a float32: widen the bits (exact)."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None) -> Tensor:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"_rebuild_tensor_v2: expected a storage, got "
                                     f"{type(storage).__name__}")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    offset = int(storage_offset)
    arr = storage.array
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size + stride):
        raise pickle.UnpicklingError(f"_rebuild_tensor_v2: bad view (offset {offset}, size "
                                     f"{size}, stride {stride})")
    if 0 not in size:
        last = offset + sum((n - 1) * st for n, st in zip(size, stride))
        if last >= arr.size:
            raise pickle.UnpicklingError(f"_rebuild_tensor_v2: the view (offset {offset}, size "
                                         f"{size}, stride {stride}) reads past its storage of "
                                         f"{arr.size} elements")
        view = np.lib.stride_tricks.as_strided(arr[offset:], size,
                                               [s * arr.itemsize for s in stride])
    else:
        view = np.zeros(size, dtype=arr.dtype)
    t = _wrap(view)
    if requires_grad and view.dtype.kind == "f":
        t._requires_grad = True
    return t


def _rebuild_parameter(data, requires_grad, backward_hooks=None, state=None):
    from .nn import Parameter
    return Parameter(data, requires_grad=bool(requires_grad))


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    return _rebuild_parameter(data, requires_grad)


def _codecs_encode(text, encoding="utf-8"):
    # protocol 2 writes bytes as _codecs.encode(str, "latin1"); allow exactly that
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode is only allowed for latin1 text, got "
                                     f"encoding {encoding!r}")
    return text.encode("latin1")


def _builtin_globals() -> dict:
    table = {
        "collections.OrderedDict": collections.OrderedDict,
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": _rebuild_parameter_with_state,
        "torch.Size": Size,
        "torch.device": _device_cls,
        "_codecs.encode": _codecs_encode,
        "builtins.set": set, "builtins.frozenset": frozenset, "builtins.complex": complex,
        "builtins.slice": slice, "builtins.bytearray": bytearray,
    }
    for name in _STORAGE_DTYPES:
        table["torch." + name] = _StorageType(name)
    for d in _dtype.ALL:
        table["torch." + d.name] = d
    return table


_BUILTIN = _builtin_globals()


class _Unpickler(pickle.Unpickler):
    """Resolves PyTorch's tensor globals to tracegrad's; ``restricted`` refuses the rest."""

    def __init__(self, file, archive, prefix: str, restricted: bool, allowed: dict) -> None:
        super().__init__(file)
        self.archive, self.prefix = archive, prefix
        self.restricted, self.allowed = restricted, allowed
        self.storages: dict = {}

    def find_class(self, module: str, name: str):
        key = f"{module}.{name}"
        if key in _BUILTIN:
            return _BUILTIN[key]
        if key in self.allowed:
            return self.allowed[key]
        if self.restricted:
            raise pickle.UnpicklingError(
                f"Weights only load failed. This file can still be loaded, to do so you have "
                f"two options, do those steps only if you trust the source of the checkpoint."
                f"\n (1) Pass weights_only=False to tracegrad.load: it can execute arbitrary "
                f"code if the file is malicious.\n (2) To load with weights_only=True, "
                f"allowlist what the file needs.\n WeightsUnpickler error: Unsupported global: "
                f"GLOBAL {key} was not an allowed global by default. Please use "
                f"`tracegrad.serialization.add_safe_globals([{name}])` or the "
                f"`tracegrad.serialization.safe_globals([{name}])` context manager to "
                f"allowlist this global if you trust this class/function.")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.200}")
        _, kind, key, location, numel = pid
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(self._read_storage(key, kind, int(numel)), kind)
        return self.storages[key]

    def _read_storage(self, key: str, kind: _StorageType, numel: int) -> np.ndarray:
        name = f"{self.prefix}data/{key}"
        try:
            raw = bytearray(self.archive.read(name))
        except KeyError:
            raise pickle.UnpicklingError(f"the checkpoint has no record {name!r}") from None
        if len(raw) < numel * kind.itemsize:
            raise pickle.UnpicklingError(f"storage {name!r} holds {len(raw)} bytes, fewer than "
                                         f"its {numel} elements of {kind.name} need")
        if kind.np is None:
            return bfloat16_to_float32(np.frombuffer(raw, dtype="<u2", count=numel))
        arr = np.frombuffer(raw, dtype=kind.np.newbyteorder("<"), count=numel)
        return arr if arr.dtype == kind.np else arr.astype(kind.np)


def load_zip(fileobj, name: str, weights_only: bool, allowed: dict) -> Any:
    try:
        archive = zipfile.ZipFile(fileobj)
    except zipfile.BadZipFile as e:
        raise RuntimeError(f"tracegrad.load({name}): not a valid PyTorch zip checkpoint "
                           f"({e})") from None
    with archive:
        pkl = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if not pkl:
            raise RuntimeError(f"tracegrad.load({name}): a zip file without <name>/data.pkl: "
                               f"not a PyTorch checkpoint")
        prefix = pkl[0][:-len("data.pkl")]
        byteorder = prefix + "byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise RuntimeError(f"tracegrad.load({name}): big-endian checkpoints are not "
                               f"supported")
        unpickler = _Unpickler(io.BytesIO(archive.read(pkl[0])), archive, prefix,
                               weights_only, allowed)
        try:
            return unpickler.load()
        except pickle.UnpicklingError as e:
            raise pickle.UnpicklingError(f"tracegrad.load({name}): {e}") from None


# ---- writing ------------------------------------------------------------------------------
class _Global:
    """A name to write as a GLOBAL opcode (``torch._utils._rebuild_tensor_v2``) without
    importing it: torch need not be installed to write a file torch reads."""

    _cache: dict = {}

    def __new__(cls, module: str, name: str):
        key = (module, name)
        if key not in cls._cache:
            obj = super().__new__(cls)
            obj.module, obj.name = module, name
            cls._cache[key] = obj
        return cls._cache[key]

    def __call__(self, *args):  # the pickler's save_reduce insists on a callable
        raise TypeError(f"{self.module}.{self.name} is a name written into a checkpoint")


class _StorageRef:
    __slots__ = ("key", "kind", "numel")

    def __init__(self, key: str, kind: str, numel: int) -> None:
        self.key, self.kind, self.numel = key, kind, numel


class _TorchPickler(pickle._Pickler):
    """The pure-Python pickler (it lets ``save`` be extended), writing tensors, dtypes,
    sizes and devices under PyTorch's names and tensor data as separate storages."""

    def __init__(self, file) -> None:
        super().__init__(file, protocol=2)
        self.storage_data: list[tuple[str, bytes]] = []

    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            return ("storage", _Global("torch", obj.kind), obj.key, "cpu", obj.numel)
        return None

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
            obj = obj.item()  # as the native format does: weights-only readers refuse NumPy
        if isinstance(obj, _dtype.dtype):
            obj = _Global("torch", obj.name)
        if isinstance(obj, _Global):
            memo = self.memo.get(id(obj))
            if memo is not None:
                self.write(self.get(memo[0]))
                return
            self.write(pickle.GLOBAL + obj.module.encode() + b"\n" + obj.name.encode() + b"\n")
            self.memoize(obj)
            return
        super().save(obj, save_persistent_id)

    def reducer_override(self, obj):
        if isinstance(obj, Tensor):
            if type(obj).__name__ == "Parameter":
                plain = _wrap(obj._data)
                return (_Global("torch._utils", "_rebuild_parameter"),
                        (plain, bool(obj._requires_grad), collections.OrderedDict()))
            return self._tensor(obj)
        if isinstance(obj, Size):
            return (_Global("torch", "Size"), (tuple(int(s) for s in obj),))
        if isinstance(obj, _device_cls):
            return (_Global("torch", "device"), (str(obj),))
        return NotImplemented

    def _tensor(self, t: Tensor):
        data = t._data if isinstance(t._data, np.ndarray) else t.cpu()._data
        kind = _STORAGE_NAMES.get(data.dtype)
        if kind is None:
            raise TypeError(f"tracegrad.save(format='torch'): dtype {data.dtype} has no "
                            f"PyTorch storage type")
        flat = np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("<"))
        key = str(len(self.storage_data))
        self.storage_data.append((key, flat.tobytes()))
        stride, acc = [], 1
        for n in reversed(data.shape):
            stride.append(acc)
            acc *= n
        ref = _StorageRef(key, kind, int(data.size))
        return (_Global("torch._utils", "_rebuild_tensor_v2"),
                (ref, 0, tuple(data.shape), tuple(reversed(stride)),
                 bool(t._requires_grad), collections.OrderedDict()))


_ALIGN = 64


def _write_record(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    """A stored record whose data starts 64-byte aligned, as torch writes it (the padding
    is an extra field, so readers that ignore alignment are unaffected)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    start = zf.fp.tell() + 30 + len(name.encode()) + 4
    pad = (-start) % _ALIGN
    info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad  # "FB" field, as torch uses
    zf.writestr(info, data)


def save_zip(obj, out, archive_name: str = "archive") -> None:
    """Write ``obj`` as PyTorch's zip checkpoint into the binary stream ``out``."""
    pkl = io.BytesIO()
    pickler = _TorchPickler(pkl)
    pickler.dump(obj)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        _write_record(zf, f"{archive_name}/data.pkl", pkl.getvalue())
        _write_record(zf, f"{archive_name}/byteorder", b"little")
        for key, data in pickler.storage_data:
            _write_record(zf, f"{archive_name}/data/{key}", data)
        _write_record(zf, f"{archive_name}/version", b"3\n")
    out.write(buffer.getvalue())


# ---- the weights-only allow list ------------------------------------------------------------
_SAFE_GLOBALS: dict[str, Any] = {}


def _global_name(entry) -> tuple[str, Any]:
    if isinstance(entry, tuple):
        if len(entry) != 2 or not isinstance(entry[1], str):
            raise TypeError(f"add_safe_globals: expected an object or (object, "
                            f"'module.name'), got {entry!r}")
        return entry[1], entry[0]
    module, name = getattr(entry, "__module__", None), getattr(entry, "__qualname__", None)
    if module is None or name is None:
        raise TypeError(f"add_safe_globals: {entry!r} has no __module__/__qualname__; pass "
                        f"(object, 'module.name')")
    return f"{module}.{name}", entry


def add_safe_globals(safe_globals: list) -> None:
    """Allow ``load(weights_only=True)`` to resolve these classes/functions (each an
    object, or ``(object, "module.name")`` when it is pickled under another name)."""
    for entry in safe_globals:
        key, obj = _global_name(entry)
        _SAFE_GLOBALS[key] = obj


def get_safe_globals() -> list:
    """The user's allow-listed globals (the built-in tensor/container globals excluded)."""
    return list(_SAFE_GLOBALS.values())


def clear_safe_globals() -> None:
    _SAFE_GLOBALS.clear()


class safe_globals:
    """Context manager: ``add_safe_globals`` for the duration of a ``with`` block."""

    def __init__(self, safe_globals: list) -> None:
        self.safe_globals = list(safe_globals)

    def __enter__(self):
        self._saved = dict(_SAFE_GLOBALS)
        add_safe_globals(self.safe_globals)
        return self

    def __exit__(self, *exc) -> bool:
        _SAFE_GLOBALS.clear()
        _SAFE_GLOBALS.update(self._saved)
        return False
