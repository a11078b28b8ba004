"""CUDA kernels from source to a launchable function, cached in memory and on disk.

A binary (cubin for PyCUDA) is keyed by a hash of the source, the target architecture
and the compiler/driver versions (``cache_key``), so a second process loads it without
nvcc and a stale binary is never found. The disk cache checks every entry's digest; an
entry the driver then refuses to load is deleted and rebuilt once, never trusted.

A build failure raises ``KernelBuildError`` naming the file the failing source was saved
to, so it can be read and compiled by hand.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from typing import Any

from . import disk_cache
from .cuda_driver import BuildFailure, Driver

FORMAT_VERSION = 1


class KernelBuildError(RuntimeError):
    """A CUDA kernel failed to compile; ``source_path`` holds its source."""

    def __init__(self, message: str, source_path: str):
        super().__init__(message)
        self.source_path = source_path


def cache_key(source: str, arch: str, versions: str) -> str:
    h = hashlib.sha256()
    for part in (f"tracegrad-cuda-{FORMAT_VERSION}", arch, versions, source):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:40]


def failed_source_dir() -> str:
    return os.path.join(disk_cache.cache_dir(), "cuda-failed")


class ModuleCache:
    """``function(source, name)``: the launchable ``name`` from ``source``, built once."""

    def __init__(self, driver: Driver):
        self.driver = driver
        self._lock = threading.Lock()
        self._modules: dict[str, Any] = {}
        self._functions: dict[tuple[str, str], Any] = {}
        self._target = (driver.arch(), driver.versions())
        self.stats = {"memory_hits": 0, "disk_hits": 0, "builds": 0, "build_seconds": 0.0}
        self.images: dict[str, bytes] = {}   # key -> binary, for explain/dump

    def key(self, source: str) -> str:
        return cache_key(source, *self._target)

    def function(self, source: str, name: str) -> Any:
        key = self.key(source)
        with self._lock:
            fn = self._functions.get((key, name))
            if fn is not None:
                self.stats["memory_hits"] += 1
                return fn
            module = self._modules.get(key)
            if module is None:
                module = self._modules[key] = self._load(source, key, name)
            else:
                self.stats["memory_hits"] += 1
            fn = self._functions[(key, name)] = self.driver.get_function(module, name)
            return fn

    def _load(self, source: str, key: str, name: str) -> Any:
        entry = disk_cache.load_blob(key, "cubin")
        if entry is not None:
            try:
                module = self.driver.load_module(entry[0])
            except Exception:  # noqa: BLE001 - a binary the driver refuses: rebuild it
                disk_cache.remove(key, "cubin")
            else:
                self.stats["disk_hits"] += 1
                self.images[key] = entry[0]
                return module
        start = time.perf_counter()
        try:
            image = self.driver.compile(source, name)
        except BuildFailure as e:
            path = _save_failed(key, source)
            raise KernelBuildError(f"CUDA kernel {name} failed to build (source saved to "
                                   f"{path}):\n{e.log[-4000:]}", path) from None
        self.stats["builds"] += 1
        self.stats["build_seconds"] += time.perf_counter() - start
        disk_cache.store_blob(key, "cubin", image, {"name": name, "arch": self._target[0]})
        self.images[key] = image
        return self.driver.load_module(image)


def _save_failed(key: str, source: str) -> str:
    folder = failed_source_dir()
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{key}.cu")
    with open(path, "w") as f:
        f.write(source)
    return path
