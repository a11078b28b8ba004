"""``tracegrad.cuda``: device queries. CUDA tensors need PyCUDA and a GPU; without them
``is_available()`` is False and moving a tensor to CUDA raises a clear error."""
from __future__ import annotations

import functools

from . import legacy
from ._device import device


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[bool, str, int]:
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


def is_available() -> bool:
    return _probe()[0]


def device_count() -> int:
    return _probe()[2]


def why_unavailable() -> str:
    return _probe()[1]


def to_device(t, dev):
    if dev.type == "cpu":
        return t
    ok, why, _ = _probe()
    if not ok:
        raise RuntimeError(f"cannot move a tensor of shape {tuple(t.shape)} to {dev}: CUDA is "
                           f"not available: {why}")
    raise RuntimeError(f"cannot move a tensor to {dev}: tracegrad's CUDA tensors are not "
                       f"built yet")


def manual_seed(seed: int) -> None:
    """A no-op: tracegrad draws every random number from the host generator, which
    ``tracegrad.manual_seed`` seeds."""


manual_seed_all = manual_seed


def synchronize(device=None) -> None:
    pass


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
