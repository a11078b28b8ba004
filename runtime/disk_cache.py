"""On-disk cache of compiled CPU kernels, so a second process skips LLVM entirely.

An entry is one file ``<cache_dir>/llvm/<key>.tgc`` holding the object code MCJIT
made, the optimized IR (for the dump tool) and the kernels' signatures. The key
(see ``llvm_jit.cache_key``) hashes the source, host CPU name and features, the
llvmlite version and ``FORMAT_VERSION``, so a stale entry is simply never found.

File layout: ``MAGIC``, a 4-byte little-endian header length, a JSON header (format
version, section sizes, sha256 of the payload, extra metadata), then the payload.
A file that is truncated, corrupt or of another format is deleted and reported as
a miss, never trusted. Writes go to a temporary file then ``os.replace``, so a
concurrent reader sees the old entry or the whole new one.

``TRACEGRAD_CACHE_DIR`` moves the cache; ``TRACEGRAD_DISABLE_DISK_CACHE=1`` turns it off.

Example:
    >>> cache_size_bytes() >= 0
    True
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile

FORMAT_VERSION = 1
MAGIC = b"TGCACHE\x00"
_LEN = struct.Struct("<I")


def enabled() -> bool:
    return os.environ.get("TRACEGRAD_DISABLE_DISK_CACHE", "") not in ("1", "true", "yes")


def cache_dir() -> str:
    """Root folder of the cache (not created until something is stored)."""
    env = os.environ.get("TRACEGRAD_CACHE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tracegrad")


def _path(key: str, ext: str) -> str:
    return os.path.join(cache_dir(), "llvm", f"{key}.{ext}")


def _write(path: str, sections: list[bytes], meta: dict) -> None:
    payload = b"".join(sections)
    header = dict(meta, format=FORMAT_VERSION, sizes=[len(s) for s in sections],
                  sha256=hashlib.sha256(payload).hexdigest())
    head = json.dumps(header).encode()
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + _LEN.pack(len(head)) + head + payload)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only or full disk only costs a recompile next time


def _read(path: str) -> tuple[list[bytes], dict] | None:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        if not data.startswith(MAGIC):
            raise ValueError("bad magic")
        (n,) = _LEN.unpack_from(data, len(MAGIC))
        start = len(MAGIC) + _LEN.size
        header = json.loads(data[start:start + n])
        payload = data[start + n:]
        if header.get("format") != FORMAT_VERSION or sum(header["sizes"]) != len(payload):
            raise ValueError("format or size mismatch")
        if hashlib.sha256(payload).hexdigest() != header["sha256"]:
            raise ValueError("checksum mismatch")
    except (ValueError, KeyError, TypeError, struct.error):
        try:
            os.remove(path)  # corrupt or stale: rebuild, never trust
        except OSError:
            pass
        return None
    sections, pos = [], 0
    for size in header["sizes"]:
        sections.append(payload[pos:pos + size])
        pos += size
    return sections, header


def store(key: str, obj: bytes, optimized_ir: str, signatures: dict) -> None:
    """Save one compiled module (object code, optimized IR, name -> (n_buf, n_scalar))."""
    if enabled():
        _write(_path(key, "tgc"), [obj, optimized_ir.encode()], {"signatures": signatures})


def load(key: str) -> tuple[bytes, str, dict[str, tuple[int, int]]] | None:
    """The entry stored under ``key``, or None on a miss or a corrupt entry."""
    if not enabled():
        return None
    got = _read(_path(key, "tgc"))
    if got is None or len(got[0]) != 2:
        return None
    (obj, ir), header = got
    sigs = {name: (int(b), int(s)) for name, (b, s) in header["signatures"].items()}
    return obj, ir.decode(), sigs


def store_text(key: str, ext: str, text: str) -> None:
    """Save a derived text (e.g. assembly, ext ``"s"``) beside the entry."""
    if enabled():
        _write(_path(key, ext), [text.encode()], {})


def load_text(key: str, ext: str) -> str | None:
    if not enabled():
        return None
    got = _read(_path(key, ext))
    return None if got is None else got[0][0].decode()


def clear_cache() -> None:
    """Delete every cached entry."""
    shutil.rmtree(os.path.join(cache_dir(), "llvm"), ignore_errors=True)


def cache_size_bytes() -> int:
    """Total size of the cached files."""
    total = 0
    for root, _dirs, files in os.walk(os.path.join(cache_dir(), "llvm")):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total
