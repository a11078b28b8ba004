"""On-disk cache of compiled CPU kernels, so a second process skips LLVM entirely.

An entry is one file ``<cache_dir>/llvm/<key>.tgc`` holding the object code MCJIT
made, the optimized IR (for the dump tool) and the kernels' signatures; a ``.tgb`` entry
holds one object made from several modules (a program's kernels compiled together) and
each member's key, optimized IR and signatures; a ``.plan`` entry a planned program. The key
(see ``llvm_jit.cache_key``) hashes the source, host CPU name and features, the
llvmlite version and ``FORMAT_VERSION``, so a stale entry is simply never found.

File layout: ``MAGIC``, a 4-byte little-endian header length, a JSON header (format
version, section sizes, extra metadata), the payload, and last a 32-byte sha256 of
every byte before it. The digest covers the header too: nothing read from the file is
trusted before it matches (a flipped digit in a header's signature once made every
later process segfault). An entry that is truncated, corrupt, of another format or
whose header lacks a field is deleted and reported as a miss, never trusted; the
caller then rebuilds it. Writes go to a temporary file then ``os.replace``, so a
concurrent reader sees the old entry or the whole new one. Inside ``deferred()`` (a
compile's first call) writes queue up and the helper thread writes them once the block
ends (NOTE (deferred writes)); a read of a queued entry waits for it.

``TRACEGRAD_CACHE_DIR`` moves the cache; ``TRACEGRAD_DISABLE_DISK_CACHE=1`` turns it off.

Example:
    >>> cache_size_bytes() >= 0
    True
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import shutil
import struct
import tempfile
import threading
from typing import Any, Iterator

from . import helper_thread

FORMAT_VERSION = 2
MAGIC = b"TGCACHE\x00"
_LEN = struct.Struct("<I")
_DIGEST_BYTES = hashlib.sha256().digest_size

Signatures = dict[str, tuple[int, int]]


class CorruptEntry(ValueError):
    """A cache file failed a check; it is deleted and rebuilt."""


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


def _encode(sections: list[bytes], meta: dict[str, Any]) -> bytes:
    return _assemble(_header(sections, meta), sections)


def _header(sections: list[bytes], meta: dict[str, Any]) -> bytes:
    header = dict(meta, format=FORMAT_VERSION, sizes=[len(s) for s in sections])
    return json.dumps(header, sort_keys=True).encode()


def _assemble(head: bytes, sections: list[bytes]) -> bytes:
    body = MAGIC + _LEN.pack(len(head)) + head + b"".join(sections)
    return body + hashlib.sha256(body).digest()


def _decode(data: bytes) -> tuple[list[bytes], dict[str, Any]]:
    """Sections and header of an entry's bytes; raises CorruptEntry on any damage."""
    body, digest = data[:-_DIGEST_BYTES], data[-_DIGEST_BYTES:]
    if len(data) <= len(MAGIC) + _LEN.size + _DIGEST_BYTES or not body.startswith(MAGIC):
        raise CorruptEntry("not a cache entry")
    if hashlib.sha256(body).digest() != digest:
        raise CorruptEntry("digest mismatch")
    # From here the bytes are what _encode wrote; the checks below guard against an
    # entry written by a buggy version with a valid digest.
    (n,) = _LEN.unpack_from(body, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    try:
        header = json.loads(body[start:start + n])
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptEntry(f"unreadable header: {e}") from None
    if not isinstance(header, dict):
        raise CorruptEntry("header is not an object")
    sizes = header.get("sizes")
    payload = body[start + n:]
    if header.get("format") != FORMAT_VERSION or not isinstance(sizes, list) \
            or not all(type(s) is int and s >= 0 for s in sizes) or sum(sizes) != len(payload):
        raise CorruptEntry("format or size mismatch")
    sections, pos = [], 0
    for size in sizes:
        sections.append(payload[pos:pos + size])
        pos += size
    return sections, header


def _write(path: str, sections: list[bytes], meta: dict[str, Any]) -> None:
    # the header is made now: a caller's dict may change once this returns
    job = (path, sections, _header(sections, meta))
    with _done:
        if _deferring:
            _queue.append(job)
            _queued[path] = _queued.get(path, 0) + 1
            return
    _write_now(*job)


def _write_now(path: str, sections: list[bytes], head: bytes) -> None:
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_assemble(head, sections))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # a read-only or full disk only costs a recompile next time


# NOTE (deferred writes): a compile's first call stored its kernels' objects, drivers and
# planned program before returning its result: encoding (a sha256 over each entry) and
# writing 3-5 files took 0.5-1.0 ms of softmax 4096x1024's ~23 ms cold compile. Inside
# ``deferred()`` the writes queue up, and when the block ends the helper thread writes
# them (temporary file, then ``os.replace``, as before) while the call runs its program
# and returns. Nothing reads a half-written queue: a read of a queued path,
# ``clear_cache``, ``cache_size_bytes`` and the interpreter's exit first ``flush()``: write
# what is still queued on the calling thread and wait for the write in progress, never
# for the helper's other tasks (a caller may hold the LLVM build lock that one of them
# waits for). A process killed before the writes end leaves no entry (or the old one),
# never a torn one. Measured on the cold compiles as the benchmark makes them (fresh
# folder, memory cache emptied, LLVM warm), median of 15 at load ~5.4, the calling
# thread's time in cache writes / in starting the page-warming thread (NOTE (one helper
# thread)) before this change, both now a queue put: softmax 4096x1024 0.75 / 0.88 ms,
# log_softmax 0.79 / 1.18, layer_norm 0.69 / 0.70, cross_entropy fwd+bwd 1.46 / 1.64,
# seed step 1.41 / - (no block big enough to warm). The first call's CPU on the calling
# thread, median of 30 alternating in one process, before / after: at load ~4.5 softmax
# 21.1 / 19.7 ms, log_softmax 23.3 / 22.4, layer_norm 17.0 / 15.8, cross_entropy 37.3 /
# 35.4, seed step 30.4 / 28.6; a rerun at load 5.5-8: 23.4 / 22.6, 25.1 / 25.6, 18.5 /
# 17.9, 42.0 / 42.0, 34.9 / 33.6. Wall times at those loads moved by +-5 ms between
# runs, more than the change.
_queue: list[tuple[str, list[bytes], bytes]] = []
_queued: dict[str, int] = {}   # path -> writes of it in the queue or being written
_done = threading.Condition()  # guards the three above and the two below
_deferring = 0
_writing = 0   # writes in progress


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Queue the block's writes; the helper thread writes them when the outermost block
    ends (NOTE (one helper thread))."""
    global _deferring
    with _done:
        _deferring += 1
    try:
        yield
    finally:
        with _done:
            _deferring -= 1
            start = not _deferring and bool(_queue)
        if start:
            helper_thread.submit(_drain)


def _drain() -> None:
    global _writing
    while True:
        with _done:
            if not _queue:
                return
            job = _queue.pop(0)
            _writing += 1
        try:
            _write_now(*job)
        finally:
            with _done:
                _writing -= 1
                _queued[job[0]] -= 1
                if not _queued[job[0]]:
                    del _queued[job[0]]
                _done.notify_all()


def flush() -> None:
    """Wait until every queued write is on disk (NOTE (deferred writes))."""
    _drain()
    with _done:
        while _writing:
            _done.wait()


def _forget_queue_in_child() -> None:
    # NOTE: the parent writes its own queue; a lock held at fork time stays held here
    global _queue, _queued, _done, _deferring, _writing
    _queue, _queued, _done, _deferring, _writing = [], {}, threading.Condition(), 0, 0


atexit.register(flush)
os.register_at_fork(after_in_child=_forget_queue_in_child)


def remove(key: str, ext: str = "tgc") -> None:
    """Delete one entry (a corrupt one, or one whose code failed a later check)."""
    if _path(key, ext) in _queued:
        flush()
    try:
        os.remove(_path(key, ext))
    except OSError:
        pass


def _read(key: str, ext: str) -> tuple[list[bytes], dict[str, Any]] | None:
    path = _path(key, ext)
    if path in _queued:   # (a miss elsewhere waits for nothing)
        flush()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        return _decode(data)
    except CorruptEntry:
        remove(key, ext)  # corrupt or stale: rebuild, never trust
        return None


def _signatures(header: dict[str, Any]) -> Signatures:
    sigs = header.get("signatures")
    if not isinstance(sigs, dict):
        raise CorruptEntry("no signatures")
    out: Signatures = {}
    for name, sig in sigs.items():
        if not (isinstance(sig, list) and len(sig) == 2
                and all(type(v) is int and 0 <= v < 1024 for v in sig)):
            raise CorruptEntry(f"bad signature for {name!r}: {sig!r}")
        out[name] = (sig[0], sig[1])
    return out


def store(key: str, obj: bytes, optimized_ir: str, signatures: Signatures) -> None:
    """Save one compiled module (object code, optimized IR, name -> (n_buf, n_scalar))."""
    if enabled():
        _write(_path(key, "tgc"), [obj, optimized_ir.encode()], {"signatures": signatures})


def load(key: str) -> tuple[bytes, str, Signatures] | None:
    """The entry stored under ``key``, or None on a miss or a corrupt entry (deleted)."""
    if not enabled():
        return None
    got = _read(key, "tgc")
    if got is None:
        return None
    sections, header = got
    try:
        if len(sections) != 2:
            raise CorruptEntry("expected 2 sections")
        return sections[0], sections[1].decode(), _signatures(header)
    except (CorruptEntry, UnicodeDecodeError):
        remove(key)
        return None


def store_batch(key: str, obj: bytes, keys: list[str], optimized_irs: list[str],
                signatures: list[Signatures]) -> None:
    """Save one object holding several modules' code (``llvm_jit``'s NOTE (one module per
    batch)): per member its cache key, optimized IR and signatures."""
    if enabled():
        _write(_path(key, "tgb"), [obj] + [text.encode() for text in optimized_irs],
               {"keys": keys, "signatures": signatures})


def load_batch(key: str) -> tuple[bytes, list[str], list[str], list[Signatures]] | None:
    """What ``store_batch`` saved, or None on a miss or a corrupt entry (deleted)."""
    if not enabled():
        return None
    got = _read(key, "tgb")
    if got is None:
        return None
    sections, header = got
    try:
        keys, sigs = header.get("keys"), header.get("signatures")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) \
                or not isinstance(sigs, list) or len(sigs) != len(keys) \
                or len(sections) != len(keys) + 1:
            raise CorruptEntry("batch layout")
        signatures = [_signatures({"signatures": sig}) for sig in sigs]
        return sections[0], keys, [text.decode() for text in sections[1:]], signatures
    except (CorruptEntry, UnicodeDecodeError):
        remove(key, "tgb")
        return None


def store_text(key: str, ext: str, text: str) -> None:
    """Save a derived text (e.g. assembly, ext ``"s"``) beside the entry."""
    if enabled():
        _write(_path(key, ext), [text.encode()], {})


def load_text(key: str, ext: str) -> str | None:
    if not enabled():
        return None
    got = _read(key, ext)
    if got is None:
        return None
    try:
        return got[0][0].decode()
    except (IndexError, UnicodeDecodeError):
        remove(key, ext)
        return None


def store_blob(key: str, ext: str, data: bytes, meta: dict[str, Any]) -> None:
    """Save a binary entry of another kind (a CUDA binary: ext ``"cubin"``)."""
    if enabled():
        _write(_path(key, ext), [data], {"meta": meta})


def load_blob(key: str, ext: str) -> tuple[bytes, dict[str, Any]] | None:
    """The ``(data, meta)`` saved by ``store_blob``; None on a miss or a corrupt entry."""
    if not enabled():
        return None
    got = _read(key, ext)
    if got is None:
        return None
    sections, header = got
    if len(sections) != 1 or not isinstance(header.get("meta"), dict):
        remove(key, ext)
        return None
    return sections[0], header["meta"]


def clear_cache() -> None:
    """Delete every cached entry."""
    flush()
    shutil.rmtree(os.path.join(cache_dir(), "llvm"), ignore_errors=True)


def cache_size_bytes() -> int:
    """Total size of the cached files."""
    flush()
    total = 0
    for root, _dirs, files in os.walk(os.path.join(cache_dir(), "llvm")):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total
