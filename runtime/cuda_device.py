"""The CUDA device as the runtime sees it: driver, allocator, kernels, launches.

``current()`` is the one device (device 0) on the active driver (``runtime.cuda_driver``),
created on first use. ``DeviceArray`` is a C-contiguous array in device memory: shape,
dtype and a block from the caching allocator.

Launches are queued; ``synchronize()`` waits and, when a kernel failed, raises
``KernelLaunchError`` naming it (a real GPU reports an error without a name: the
message then names every kernel launched since the last synchronize, last first). A
copy to the host synchronizes first, so a failed kernel is reported there the same way.

>>> from tracegrad.runtime import cuda_device
>>> cuda_device.DeviceArray.__slots__
('shape', 'dtype', 'block', 'offset', 'device')
"""
from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np

from . import cuda_driver as driver_mod
from .cuda_allocator import CachingAllocator, DeviceBlock
from .cuda_modules import ModuleCache
from .cuda_driver import Driver, LaunchFailure

_PENDING_NAMES = 8


class KernelLaunchError(RuntimeError):
    """A kernel failed on the device (reported at the next synchronize)."""


class CudaDevice:
    """Device 0 of ``driver``: its allocator, module cache and launch queue."""

    def __init__(self, driver: Driver):
        self.driver = driver
        self.allocator = CachingAllocator(driver)
        self.modules = ModuleCache(driver)
        self.max_threads = min(driver.max_threads_per_block(), 1024)
        self._pending: list[str] = []   # kernels launched since the last synchronize
        self.launches = 0

    # -- memory ------------------------------------------------------------------------------
    def empty(self, shape: Sequence[int], dtype: Any) -> "DeviceArray":
        dtype = np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        return DeviceArray(shape, dtype, self.allocator.allocate(nbytes), 0, self)

    def to_device(self, host: Any, dtype: Any = None) -> "DeviceArray":
        """A device copy of ``host`` (any array-like; copied to C order first)."""
        host = np.asarray(host, dtype=dtype)
        if not host.flags.c_contiguous:
            host = np.ascontiguousarray(host).reshape(host.shape)
        out = self.empty(host.shape, host.dtype)
        if host.nbytes:
            self.driver.copy_htod(out.ptr, host)
        return out

    # -- launches ---------------------------------------------------------------------------
    def launch(self, name: str, function: Any, grid: tuple[int, int, int],
               block: tuple[int, int, int], args: Sequence[int], shared_bytes: int = 0) -> None:
        self.driver.launch(function, grid, block, shared_bytes, args)
        self.launches += 1
        self._pending.append(name)
        if len(self._pending) > _PENDING_NAMES:
            del self._pending[0]

    def synchronize(self) -> None:
        pending, self._pending = self._pending, []
        try:
            self.driver.synchronize()
        except LaunchFailure as e:
            if e.kernel is not None:
                where = f"kernel {e.kernel}"
            else:
                where = ("one of the kernels launched since the last synchronize (last first: "
                         f"{', '.join(reversed(pending)) or 'none'})")
            raise KernelLaunchError(f"CUDA error in {where}: {e}") from None


class DeviceArray:
    """A C-contiguous array in device memory (``block`` keeps the memory alive)."""

    __slots__ = ("shape", "dtype", "block", "offset", "device")
    on_device = True   # what tracegrad's core asks to tell a device array from a NumPy one

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, block: DeviceBlock,
                 offset: int, device: CudaDevice):
        self.shape, self.dtype, self.block = shape, dtype, block
        self.offset, self.device = offset, device

    @property
    def ptr(self) -> int:
        return self.block.ptr + self.offset

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def get(self) -> np.ndarray:
        """A host copy (waits for queued kernels; reports a failed one)."""
        out = np.empty(self.shape, self.dtype)
        self.device.synchronize()
        if out.nbytes:
            self.device.driver.copy_dtoh(out, self.ptr)
        return out

    def reshape(self, shape: Sequence[int]) -> "DeviceArray":
        shape = tuple(shape)
        if int(np.prod(shape, dtype=np.int64)) != self.size:
            raise ValueError(f"cannot reshape a device array of shape {self.shape} to {shape}")
        return DeviceArray(shape, self.dtype, self.block, self.offset, self.device)

    def __repr__(self) -> str:
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype.name}, ptr={self.ptr:#x})"


_lock = threading.Lock()
_device: CudaDevice | None = None


def current() -> CudaDevice:
    """The device on the active driver (created on first use)."""
    global _device
    with _lock:
        if _device is None:
            _device = CudaDevice(driver_mod.get_driver())
        return _device


def initialized() -> bool:
    return _device is not None


def reset() -> None:
    """Forget the device (after ``driver.set_driver``): its cache is freed; arrays and
    programs made on it must not be used afterwards."""
    global _device
    with _lock:
        if _device is not None:
            _device.allocator.close()
        _device = None
