"""tracegrad's native file format: data only (tensors, containers, plain values), no pickle.

Native file layout (all integers little-endian)::

    magic    8 bytes   b"TRACEGRD"
    version  u32       FORMAT_VERSION
    reserved u32       0
    hlen     u64       length of the JSON header
    plen     u64       length of the payload
    sha256   32 bytes  digest of header + payload
    header   hlen bytes, UTF-8 JSON describing the object tree
    payload  plen bytes, raw little-endian tensor data (each block 64-byte aligned) and bytes

The header encodes ``None``, bools, ints, floats and strings as JSON values and every
other node as a JSON object with a ``"$"`` tag (list, tuple, dict, odict, tensor, bytes,
ndarray, dtype, size). Loading checks the magic, version, lengths and checksum before it
builds anything, so a truncated or corrupt file raises a ``RuntimeError`` naming the file
instead of returning a half-loaded model. There is no pickle anywhere.

Tensors are saved by value: two tensors that share storage (a tensor and its view) are
written, and loaded, as independent copies. Loaded tensors are writable views into one
buffer read from the file (no second copy).
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import struct
from collections import OrderedDict

import numpy as np

from . import _dtype
from ._size import Size
from ._tensor import Tensor, _wrap

MAGIC = b"TRACEGRD"
FORMAT_VERSION = 1
_PREAMBLE = struct.Struct("<8sIIQQ32s")
_ALIGN = 64
_MAX_DEPTH = 1000


class _NotData(TypeError):
    """``obj`` is not a data tree: the native format cannot hold it."""


def _unsupported(obj) -> TypeError:
    kind = type(obj).__module__ + "." + type(obj).__qualname__
    hint = ""
    if hasattr(obj, "state_dict") and callable(getattr(obj, "state_dict")):
        hint = (" It has a state_dict(): save `obj.state_dict()` instead and restore it with "
                "`obj.load_state_dict(tracegrad.load(f))`.")
    return _NotData(f"tracegrad.save(format='tracegrad') can only save tensors, NumPy arrays, "
                    f"None, bool, int, float, str, bytes and dicts/lists/tuples of them (state "
                    f"dicts), but got an object of type {kind}.{hint} To save a model's weights, "
                    f"save `model.state_dict()`. The default format (format=None) saves other "
                    f"objects by pickling them in PyTorch's format, which load() then refuses "
                    f"unless allow-listed (add_safe_globals).")


class _Writer:
    def __init__(self) -> None:
        self.chunks: list[bytes | memoryview] = []
        self.size = 0
        self.active: set[int] = set()

    def blob(self, data) -> tuple[int, int]:
        pad = (-self.size) % _ALIGN
        if pad:
            self.chunks.append(b"\0" * pad)
            self.size += pad
        offset = self.size
        mv = memoryview(data).cast("B")
        self.chunks.append(mv)
        self.size += mv.nbytes
        return offset, mv.nbytes

    def array(self, arr: np.ndarray) -> dict:
        if arr.dtype not in _dtype._FROM_NUMPY:
            raise TypeError(f"tracegrad.save: unsupported array dtype {arr.dtype}")
        le = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
        offset, n = self.blob(le.reshape(-1).view(np.uint8))
        return {"dtype": _dtype.from_numpy_dtype(arr.dtype).name, "shape": list(arr.shape),
                "offset": offset, "nbytes": n}

    def encode(self, obj, depth: int = 0):
        if depth > _MAX_DEPTH:
            raise ValueError(f"tracegrad.save: the object is nested more than {_MAX_DEPTH} "
                             f"levels deep")
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
            obj = obj.item()  # NumPy scalars become the Python number they hold
            if isinstance(obj, bool):
                return obj
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            if math.isfinite(obj):
                return float(obj)
            return {"$": "float", "v": repr(float(obj))}
        if isinstance(obj, Tensor):
            data = obj._data
            if not isinstance(data, np.ndarray):
                data = obj.cpu()._data if hasattr(obj, "cpu") else np.asarray(data)
            node = {"$": "tensor", **self.array(data),
                    "requires_grad": bool(obj._requires_grad)}
            if type(obj).__name__ == "Parameter":
                node["parameter"] = True
            return node
        if isinstance(obj, np.ndarray):
            return {"$": "ndarray", **self.array(obj)}
        if isinstance(obj, (bytes, bytearray)):
            offset, n = self.blob(bytes(obj))
            return {"$": "bytes", "offset": offset, "nbytes": n}
        if isinstance(obj, _dtype.dtype):
            return {"$": "dtype", "name": obj.name}
        if isinstance(obj, (dict, list, tuple)):
            if id(obj) in self.active:
                raise ValueError("tracegrad.save: the object contains itself (a reference "
                                 "cycle); state dicts must be trees")
            self.active.add(id(obj))
            try:
                return self._container(obj, depth)
            finally:
                self.active.discard(id(obj))
        raise _unsupported(obj)

    def _container(self, obj, depth: int):
        if isinstance(obj, dict):
            if type(obj) not in (dict, OrderedDict):
                raise _unsupported(obj)
            keys = [self.encode(k, depth + 1) for k in obj.keys()]
            for k in obj.keys():
                if isinstance(k, (Tensor, np.ndarray, list, dict)):
                    raise TypeError(f"tracegrad.save: dict keys must be plain values "
                                    f"(str, int, ...), got {type(k).__name__}")
            tag = "odict" if isinstance(obj, OrderedDict) else "dict"
            return {"$": tag, "keys": keys, "values": [self.encode(v, depth + 1)
                                                       for v in obj.values()]}
        if isinstance(obj, Size):
            return {"$": "size", "items": [int(s) for s in obj]}
        if isinstance(obj, tuple):
            if type(obj) is not tuple:
                raise _unsupported(obj)
            return {"$": "tuple", "items": [self.encode(v, depth + 1) for v in obj]}
        if type(obj) is not list:
            raise _unsupported(obj)
        return [self.encode(v, depth + 1) for v in obj]


def native_parts(obj) -> list:
    writer = _Writer()
    tree = writer.encode(obj)
    header = json.dumps({"format": "tracegrad", "version": FORMAT_VERSION, "root": tree},
                        separators=(",", ":"), allow_nan=False).encode("utf-8")
    digest = hashlib.sha256(header)
    for chunk in writer.chunks:
        digest.update(chunk)
    preamble = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, 0, len(header), writer.size,
                              digest.digest())
    return [preamble, header, *writer.chunks]


class _Reader:
    def __init__(self, payload: bytearray, name: str) -> None:
        self.payload = payload
        self.name = name

    def fail(self, what: str) -> RuntimeError:
        return RuntimeError(f"tracegrad.load({self.name}): corrupt file: {what}")

    def span(self, node: dict) -> tuple[int, int]:
        offset, n = node.get("offset"), node.get("nbytes")
        if not (isinstance(offset, int) and isinstance(n, int) and 0 <= offset
                and 0 <= n and offset + n <= len(self.payload)):
            raise self.fail(f"data block out of range (offset {offset}, {n} bytes, payload "
                            f"{len(self.payload)} bytes)")
        return offset, n

    def array(self, node: dict) -> np.ndarray:
        try:
            np_dtype = _dtype.to_numpy_dtype(node["dtype"])
            shape = tuple(int(s) for s in node["shape"])
        except (KeyError, TypeError, ValueError):
            raise self.fail(f"bad tensor description {node!r}") from None
        offset, n = self.span(node)
        count = int(np.prod(shape, dtype=np.int64))
        if count * np_dtype.itemsize != n or any(s < 0 for s in shape):
            raise self.fail(f"tensor of shape {shape} and dtype {np_dtype} does not fit its "
                            f"{n} bytes")
        arr = np.frombuffer(self.payload, dtype=np_dtype.newbyteorder("<"), count=count,
                            offset=offset)
        if arr.dtype != np_dtype:  # big-endian host
            arr = arr.astype(np_dtype)
        return arr.reshape(shape)

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict):
            raise self.fail(f"unexpected header value {node!r}")
        tag = node.get("$")
        if tag == "tensor":
            t = _wrap(self.array(node))
            if node.get("parameter"):
                return _as_parameter(t, bool(node.get("requires_grad", True)))
            if node.get("requires_grad") and t._data.dtype.kind == "f":
                t._requires_grad = True
            return t
        if tag == "ndarray":
            return self.array(node)
        if tag in ("dict", "odict"):
            keys = [_hashable(self.decode(k)) for k in node.get("keys", [])]
            values = [self.decode(v) for v in node.get("values", [])]
            if len(keys) != len(values):
                raise self.fail("dict with different numbers of keys and values")
            return (OrderedDict if tag == "odict" else dict)(zip(keys, values))
        if tag == "tuple":
            return tuple(self.decode(v) for v in node.get("items", []))
        if tag == "size":
            return Size(int(v) for v in node.get("items", []))
        if tag == "bytes":
            offset, n = self.span(node)
            return bytes(self.payload[offset:offset + n])
        if tag == "float":
            return float(node["v"])
        if tag == "dtype":
            return _dtype.to_dtype(node["name"])
        raise self.fail(f"unknown node type {tag!r}")


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def _as_parameter(t: Tensor, requires_grad: bool):
    try:
        from .nn import Parameter
    except ImportError:
        t._requires_grad = requires_grad
        return t
    return Parameter(t, requires_grad=requires_grad)


_CHUNK = 64 << 20


def _remaining(stream) -> int | None:
    """Bytes left in a seekable stream, else None."""
    try:
        if not stream.seekable():
            return None
        pos = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(pos)
        return end - pos
    except (AttributeError, OSError, ValueError):
        return None


def _read_exact(stream, n: int) -> bytearray:
    """Up to ``n`` bytes; fewer only at end of file. Grows in chunks, so a corrupt length
    field never allocates more than the file holds plus one chunk."""
    buf = bytearray(min(n, _CHUNK))
    got = 0
    while got < n:
        if got == len(buf):
            buf.extend(bytes(min(n - got, _CHUNK)))
        view = memoryview(buf)[got:]
        k = stream.readinto(view) if hasattr(stream, "readinto") else None
        if k is None:
            data = stream.read(len(view))
            k = len(data)
            view[:k] = data
        del view
        if not k:
            break
        got += k
    if got < len(buf):
        del buf[got:]
    return buf


def load_native(stream, pre: bytearray, name: str):
    """The object in a native file whose first ``len(pre)`` bytes (the magic included)
    were already read into ``pre``."""
    if len(pre) < _PREAMBLE.size:
        raise RuntimeError(f"tracegrad.load({name}): truncated file: the {_PREAMBLE.size}-byte "
                           f"preamble is cut short at {len(pre)} bytes")
    _, version, _, hlen, plen, digest = _PREAMBLE.unpack(bytes(pre))
    if version > FORMAT_VERSION or version < 1:
        raise RuntimeError(f"tracegrad.load({name}): unsupported format version {version} "
                           f"(this tracegrad reads versions 1 to {FORMAT_VERSION})")
    left = _remaining(stream)
    if left is not None and left < hlen + plen:
        raise RuntimeError(f"tracegrad.load({name}): truncated file: expected "
                           f"{_PREAMBLE.size + hlen + plen} bytes, found only "
                           f"{_PREAMBLE.size + left}")
    header = _read_exact(stream, hlen)
    payload = _read_exact(stream, plen) if len(header) == hlen else bytearray()
    if len(header) != hlen or len(payload) != plen:
        total = _PREAMBLE.size + hlen + plen
        got = _PREAMBLE.size + len(header) + len(payload)
        raise RuntimeError(f"tracegrad.load({name}): truncated file: expected {total} bytes, "
                           f"found only {got}")
    check = hashlib.sha256(header)
    check.update(payload)
    if check.digest() != digest:
        raise RuntimeError(f"tracegrad.load({name}): corrupt file: sha256 checksum mismatch "
                           f"(the file was modified or damaged after it was written)")
    try:
        meta = json.loads(bytes(header).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RuntimeError(f"tracegrad.load({name}): corrupt file: bad header ({e})") from None
    if not isinstance(meta, dict) or "root" not in meta:
        raise RuntimeError(f"tracegrad.load({name}): corrupt file: header has no root object")
    return _Reader(payload, name).decode(meta["root"])
