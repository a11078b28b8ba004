"""``tracegrad.cuda``: device queries and memory (``torch.cuda``'s names). CUDA tensors
need PyCUDA and a GPU; without them ``is_available()`` is False and moving a tensor to
CUDA raises a clear error saying what is missing.

>>> import tracegrad
>>> tracegrad.cuda.memory_allocated() >= 0
True
"""
from __future__ import annotations

import functools
import sys
from types import ModuleType

from . import legacy
from ._cuda_tensor import move_data
from ._device import device

__all__ = ["is_available", "device_count", "current_device", "get_device_name", "synchronize",
           "memory_allocated", "memory_reserved", "max_memory_allocated", "memory_stats",
           "empty_cache", "manual_seed", "manual_seed_all"]
# also OutOfMemoryError, KernelLaunchError and KernelBuildError, loaded with the runtime


@functools.lru_cache(maxsize=1)
def _probe_pycuda() -> tuple[bool, str, int]:
    try:
        import pycuda.driver as drv  # optional dependency (tracegrad[cuda]): probed on first use
    except Exception as e:  # ImportError, or a broken install
        return False, f"PyCUDA is not installed ({type(e).__name__}: {e}); pip install 'tracegrad[cuda]'", 0
    try:
        drv.init()
        n = drv.Device.count()
    except Exception as e:
        return False, f"no usable CUDA driver or GPU ({e})", 0
    if n == 0:
        return False, "no CUDA GPU found", 0
    return True, "", n


def _runtime() -> tuple[ModuleType, ModuleType]:
    """(runtime.cuda_device, runtime.cuda_driver), loaded on first use: NOTE (lazy CUDA runtime)
    in _cuda_tensor.py."""
    from .runtime import cuda_device, cuda_driver as driver  # NOTE (lazy CUDA runtime): loaded on first use
    return cuda_device, driver


_ERRORS = {"OutOfMemoryError": "cuda_allocator", "KernelLaunchError": "cuda_device",
           "KernelBuildError": "cuda_modules"}


def __getattr__(name: str):
    if name in _ERRORS:   # the runtime's error classes, without loading it at import
        import importlib  # (rarely needed: only for these error classes)
        module = importlib.import_module(f"{__package__}.runtime.{_ERRORS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'tracegrad.cuda' has no attribute '{name}'")


def _probe() -> tuple[bool, str, int]:
    # a driver installed with runtime.cuda_driver.set_driver (the tests' simulated device)
    # stands for the GPU
    driver = _runtime()[1]
    if driver.active_driver_name() != "pycuda":
        return True, "", driver.get_driver().device_count()
    return _probe_pycuda()


def is_available() -> bool:
    """Whether CUDA tensors can be made: PyCUDA imports and a GPU is there."""
    return _probe()[0]


def device_count() -> int:
    return _probe()[2]


def why_unavailable() -> str:
    return _probe()[1]


def _device_state():
    ok, why, _ = _probe()
    if not ok:
        raise RuntimeError(f"CUDA is not available: {why}")
    return _runtime()[0].current()


def _loaded_device():
    """The device if the runtime made one already (queries never start a driver)."""
    module = sys.modules.get(f"{__package__}.runtime.cuda_device")
    return module.current() if module is not None and module.initialized() else None


def current_device() -> int:
    """Index of the current device (tracegrad uses device 0)."""
    _device_state()
    return 0


def get_device_name(device=None) -> str:
    return _device_state().driver.device_name()


def synchronize(device=None) -> None:
    """Wait for every queued kernel; a failed one raises, naming it."""
    cuda_device = _loaded_device()
    if cuda_device is not None:
        cuda_device.synchronize()


def memory_allocated(device=None) -> int:
    """Bytes held by live CUDA tensors (as the caching allocator rounds them)."""
    dev = _loaded_device()
    return 0 if dev is None else dev.allocator.memory_stats()["allocated_bytes"]


def memory_reserved(device=None) -> int:
    """Bytes the caching allocator holds from the driver: live and cached blocks."""
    dev = _loaded_device()
    return 0 if dev is None else dev.allocator.memory_stats()["reserved_bytes"]


def max_memory_allocated(device=None) -> int:
    dev = _loaded_device()
    return 0 if dev is None else dev.allocator.memory_stats()["peak_allocated_bytes"]


def memory_stats(device=None) -> dict:
    dev = _loaded_device()
    return {} if dev is None else dev.allocator.memory_stats()


def empty_cache() -> None:
    """Give every cached (freed) device block back to the driver."""
    dev = _loaded_device()
    if dev is not None:
        dev.allocator.empty_cache()


_to_device_fn = None


def _differentiable_move(t, dev):
    """A move that autograd sees through (the gradient moves back), as a custom Function."""
    global _to_device_fn
    if _to_device_fn is None:
        from .autograd.function import Function  # a higher floor; only grad-tracking moves need it

        class ToDevice(Function):
            @staticmethod
            def forward(ctx, x, dev):
                ctx.source = x._device
                return move_data(x, dev)

            @staticmethod
            def backward(ctx, g):
                return move_data(g, ctx.source), None
        _to_device_fn = ToDevice
    return _to_device_fn.apply(t, dev)   # (Function.apply records only under grad mode)


def to_device(t, dev):
    """``t`` on ``dev``: itself if it is there, else a copy that autograd sees through."""
    if dev.type == "cuda":
        ok, why, n = _probe()
        if not ok:
            raise RuntimeError(f"cannot move a tensor of shape {tuple(t.shape)} to {dev}: CUDA "
                               f"is not available: {why}")
        if (dev.index or 0) >= n:
            raise RuntimeError(f"CUDA error: invalid device ordinal {dev.index} "
                               f"(device_count() is {n})")
    if (t._device.type == "cuda") == (dev.type == "cuda"):
        return t
    if t._requires_grad:
        return _differentiable_move(t, dev)
    return move_data(t, dev)


def manual_seed(seed: int) -> None:
    """A no-op, kept for PyTorch scripts: tracegrad draws CUDA random numbers from the host
    generator (so a CUDA run draws the numbers a CPU run does), which
    ``tracegrad.manual_seed`` seeds; reseeding it here would change a CPU-only script's
    random stream, which ``torch.cuda.manual_seed`` never does."""


manual_seed_all = manual_seed


def _cuda_type(name: str):

    def make(*args, **kwargs):
        return to_device(getattr(legacy, name)(*args, **kwargs), device("cuda"))
    make.__name__ = name
    return make


FloatTensor = _cuda_type("FloatTensor")
DoubleTensor = _cuda_type("DoubleTensor")
LongTensor = _cuda_type("LongTensor")
IntTensor = _cuda_type("IntTensor")
ByteTensor = _cuda_type("ByteTensor")
