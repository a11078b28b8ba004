"""``tracegrad.accelerator``: PyTorch's device-agnostic accelerator API.

As in PyTorch, the CPU is not an accelerator: without a CUDA GPU, ``is_available()`` is
False and ``current_accelerator()`` is None, so the idiom

    device = torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"

picks "cpu" here and "cuda" where ``tracegrad.cuda.is_available()``.
"""
from __future__ import annotations

from . import cuda as _cuda
from ._device import device as _device

_index = [0]


def is_available() -> bool:
    return _cuda.is_available()


def device_count() -> int:
    return _cuda.device_count() if _cuda.is_available() else 0


def current_accelerator(check_available: bool = False):
    """The accelerator's device type (``device(type='cuda')``), or None without one."""
    if not _cuda.is_available():
        return None
    return _device("cuda", _index[0])


def current_device_index() -> int:
    return _index[0] if is_available() else -1


def set_device_index(device) -> None:
    index = device.index if isinstance(device, _device) else int(device)
    if not 0 <= index < device_count():
        raise RuntimeError(f"accelerator.set_device_index: invalid device index {index} "
                           f"({device_count()} accelerator devices)")
    _index[0] = index


set_device_idx = set_device_index
current_device_idx = current_device_index


def synchronize(device=None) -> None:
    """Eager CUDA work here completes before its result is returned: nothing to wait for."""


__all__ = ["current_accelerator", "current_device_idx", "current_device_index", "device_count",
           "is_available", "set_device_idx", "set_device_index", "synchronize"]
