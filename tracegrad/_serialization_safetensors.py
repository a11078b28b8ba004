"""The safetensors format, read and written directly.

NOTE (why not the ``safetensors`` package): the format is three lines of spec (an 8-byte
little-endian header length, a JSON header mapping each name to dtype, shape and
``data_offsets``, then the raw little-endian bytes), so reading it takes less code than
adapting the package's torch/numpy front ends, needs no optional dependency, and keeps
every check (offsets in range, sizes matching shapes, no overlap) in our hands.

Layout::

    u64 N | N bytes of JSON {"name": {"dtype": "F32", "shape": [2, 3],
                                      "data_offsets": [begin, end]}, ...,
                             "__metadata__": {"key": "value"}} | data
"""
from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from ._serialization_torch import bfloat16_to_float32
from ._tensor import Tensor, _wrap

_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
           "I8": "i1", "U8": "u1", "BOOL": "?", "BF16": "bfloat16"}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items() if v != "bfloat16"}
_MAX_HEADER = 100 << 20  # the reference implementation's limit


def looks_like_safetensors(head: bytes) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= _MAX_HEADER and head[8:9] == b"{"


def load_bytes(data: bytes | bytearray, name: str) -> dict:
    """A dict of tensors (in the header's order). BF16 tensors widen to float32, since
    tracegrad has no bfloat16 dtype; the conversion is exact."""
    def fail(what: str) -> RuntimeError:
        return RuntimeError(f"tracegrad.load({name}): invalid safetensors file: {what}")

    if len(data) < 8:
        raise fail("shorter than its 8-byte header length")
    (n,) = struct.unpack("<Q", bytes(data[:8]))
    if n > _MAX_HEADER or 8 + n > len(data):
        raise fail(f"header length {n} does not fit the {len(data)}-byte file")
    try:
        header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise fail(f"bad JSON header ({e})") from None
    if not isinstance(header, dict):
        raise fail("the header is not a JSON object")
    body = memoryview(data)[8 + n:]
    out: dict[str, Any] = {}
    spans = []
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            code, shape = info["dtype"], tuple(int(s) for s in info["shape"])
            begin, end = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise fail(f"bad entry for {key!r}: {info!r:.200}") from None
        if code not in _DTYPES:
            raise fail(f"{key!r} has dtype {code}, which tracegrad cannot load (supported: "
                       f"{', '.join(_DTYPES)})")
        itemsize = 2 if code == "BF16" else np.dtype(_DTYPES[code]).itemsize
        count = int(np.prod(shape, dtype=np.int64))
        if any(s < 0 for s in shape) or not 0 <= begin <= end <= len(body) \
                or end - begin != count * itemsize:
            raise fail(f"{key!r} (shape {list(shape)}, {code}) does not match its data "
                       f"offsets [{begin}, {end}] in a {len(body)}-byte data section")
        spans.append((begin, end, key))
        raw = bytearray(body[begin:end])
        if code == "BF16":
            arr = bfloat16_to_float32(np.frombuffer(raw, dtype="<u2"))
        else:
            arr = np.frombuffer(raw, dtype=_DTYPES[code])
            arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
        out[key] = _wrap(arr.reshape(shape))
    spans.sort()
    for (b0, e0, k0), (b1, e1, k1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise fail(f"tensors {k0!r} and {k1!r} overlap")
    return out


def save_bytes(tensors: dict, metadata: dict | None = None) -> bytes:
    """The safetensors encoding of ``{name: tensor}`` (``metadata``: str to str)."""
    if not isinstance(tensors, dict):
        raise TypeError(f"tracegrad.save(format='safetensors') saves a dict of tensors "
                        f"(a state dict), got {type(tensors).__name__}")
    header: dict[str, Any] = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("safetensors metadata must map str to str")
        header["__metadata__"] = dict(metadata)
    blobs, offset = [], 0
    for key in sorted(tensors):
        t = tensors[key]
        if not isinstance(key, str) or not isinstance(t, Tensor):
            raise TypeError(f"tracegrad.save(format='safetensors'): entries must be "
                            f"str -> Tensor, got {key!r} -> {type(t).__name__}")
        arr = np.asarray(t._data)
        code = _CODES.get(arr.dtype)
        if code is None:
            raise TypeError(f"tracegrad.save(format='safetensors'): {key!r} has dtype "
                            f"{arr.dtype}, which safetensors cannot hold")
        raw = np.ascontiguousarray(arr, dtype=np.dtype(_DTYPES[code])).tobytes()
        header[key] = {"dtype": code, "shape": list(arr.shape),
                       "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((-len(text)) % 8)  # the data section starts 8-byte aligned
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)
