"""The narrow seam between tracegrad's CUDA runtime and a device driver.

Everything in ``runtime/cuda_*.py`` talks to a GPU only through a ``Driver``: allocate,
free, copy in each direction, build a module from source, get a function, launch it with
a grid, a block, dynamic shared memory and pointer arguments, synchronize. The product
implements it with PyCUDA (``runtime.cuda_driver_pycuda``, imported only when a CUDA device is
first used, so ``import tracegrad`` never needs PyCUDA); the tests implement it with a
simulated device that builds the same CUDA C as C++ and runs it on host threads
(``tests/sim_device.py``). Nothing above ``runtime/`` sees a driver.

Device pointers are plain ints. A module is built in two steps so that its binary image
can live in the disk cache: ``compile(source, name)`` returns the image (a cubin for
PyCUDA, a shared object for the simulator) and ``load_module(image)`` loads it.

Launches are asynchronous: a launch error surfaces at the next ``synchronize`` as
``LaunchFailure`` (``runtime.cuda_device`` adds the names of the kernels launched since
the last synchronize).

>>> active_driver_name() in ("pycuda", "sim")
True
"""
from __future__ import annotations

import os
from typing import Any, Protocol, Sequence

import numpy as np


class DriverOutOfMemory(MemoryError):
    """The driver could not allocate; ``runtime.cuda_allocator`` retries once, then
    raises ``OutOfMemoryError``."""


class BuildFailure(RuntimeError):
    """The compiler rejected a module's source; ``log`` is its output."""

    def __init__(self, log: str):
        super().__init__(log)
        self.log = log


class LaunchFailure(RuntimeError):
    """A kernel failed on the device; reported by ``synchronize``. ``kernel`` is the
    failing function's name when the driver knows it (a real GPU does not)."""

    def __init__(self, message: str, kernel: str | None = None):
        super().__init__(message)
        self.kernel = kernel


class Driver(Protocol):
    """What ``runtime/cuda_*.py`` needs from a CUDA device (see module doc)."""

    name: str

    def device_count(self) -> int: ...

    def device_name(self) -> str: ...

    def arch(self) -> str:
        """Target architecture (``"sm_90"``); part of every binary's cache key."""

    def versions(self) -> str:
        """Compiler and driver versions; part of every binary's cache key."""

    def total_memory(self) -> int: ...

    def max_threads_per_block(self) -> int: ...

    def mem_alloc(self, nbytes: int) -> int:
        """A device pointer to ``nbytes``; raises ``DriverOutOfMemory``."""

    def mem_free(self, ptr: int) -> None: ...

    def copy_htod(self, dst: int, src: np.ndarray) -> None:
        """Copy the C-contiguous ``src`` to device address ``dst``."""

    def copy_dtoh(self, dst: np.ndarray, src: int) -> None:
        """Fill the C-contiguous ``dst`` from device address ``src``."""

    def copy_dtod(self, dst: int, src: int, nbytes: int) -> None: ...

    def memset(self, dst: int, byte: int, nbytes: int) -> None: ...

    def compile(self, source: str, name: str) -> bytes:
        """The binary image of ``source``; raises ``BuildFailure`` with the log."""

    def load_module(self, image: bytes) -> Any: ...

    def get_function(self, module: Any, name: str) -> Any: ...

    def launch(self, function: Any, grid: tuple[int, int, int], block: tuple[int, int, int],
               shared_bytes: int, args: Sequence[int]) -> None:
        """Queue ``function(*args)``; every argument is a device pointer."""

    def synchronize(self) -> None:
        """Wait for queued work; raises ``LaunchFailure`` if a kernel failed."""


_driver: Driver | None = None
_override: Driver | None = None


def set_driver(driver: Driver | None) -> None:
    """Use ``driver`` for every CUDA device from now on (the tests pass the simulated
    device); ``None`` goes back to PyCUDA. Runtime state built on the old driver (device
    buffers, modules) must not be used afterwards: ``runtime.cuda_device.reset()``."""
    global _override
    _override = driver


def active_driver_name() -> str:
    return _override.name if _override is not None else "pycuda"


def get_driver() -> Driver:
    """The active driver: the one ``set_driver`` installed, else PyCUDA (imported now;
    raises ``RuntimeError`` saying what is missing when PyCUDA or a GPU is not there)."""
    global _driver
    if _override is not None:
        return _override
    if _driver is None:
        if os.environ.get("TRACEGRAD_CUDA_DRIVER", "pycuda") not in ("pycuda", ""):
            raise RuntimeError("TRACEGRAD_CUDA_DRIVER names a driver that only the tests "
                               "install (set_driver)")
        try:
            from .cuda_driver_pycuda import PyCudaDriver  # NOTE: lazy; PyCUDA is an optional extra
        except ImportError as e:
            raise RuntimeError(f"CUDA is not available: PyCUDA is not installed ({e}); "
                               f"pip install 'tracegrad[cuda]'") from None
        try:
            _driver = PyCudaDriver()
        except Exception as e:  # noqa: BLE001 - the driver's own error types vary
            raise RuntimeError(f"CUDA is not available: no usable CUDA driver or GPU "
                               f"({type(e).__name__}: {e})") from None
    return _driver
