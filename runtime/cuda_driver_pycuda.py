"""The driver seam (``runtime.cuda_driver``) implemented with PyCUDA, on device 0.

Imported only when a CUDA device is first used. One primary context, pushed on the
importing thread, and one stream: every launch and staged copy goes there, in order.

Copies of ``STAGE_BYTES`` or more go through two reused page-locked chunks
(``pagelocked_empty``), so the DMA engine reads pinned memory and the next chunk's host
copy overlaps the previous chunk's transfer; smaller copies are one synchronous
``memcpy``, which the driver stages itself.

Not run in this repository's CI (no GPU): ``tests/gpu/run.sh`` exercises it.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

import pycuda.compiler as compiler
import pycuda.driver as drv

from .cuda_driver import BuildFailure, DriverOutOfMemory, LaunchFailure

STAGE_BYTES = 1 << 20
_CHUNK = 16 << 20


class PyCudaDriver:
    name = "pycuda"

    def __init__(self) -> None:
        drv.init()
        if drv.Device.count() == 0:
            raise RuntimeError("no CUDA GPU found")
        self.device = drv.Device(0)
        self.context = self.device.retain_primary_context()
        self.context.push()
        self.stream = drv.Stream()
        self._allocations: dict[int, Any] = {}
        self._stage: list[Any] = []
        self._stage_done: list[Any] = []

    # -- queries ---------------------------------------------------------------------------
    def device_count(self) -> int:
        return drv.Device.count()

    def device_name(self) -> str:
        return self.device.name()

    def arch(self) -> str:
        major, minor = self.device.compute_capability()
        return f"sm_{major}{minor}"

    def versions(self) -> str:
        import pycuda
        nvcc = compiler.get_nvcc_version("nvcc") or "nvcc ?"
        return (f"pycuda {pycuda.VERSION_TEXT}; cuda {drv.get_version()}; "
                f"driver {drv.get_driver_version()}; {nvcc.strip().splitlines()[-1]}")

    def total_memory(self) -> int:
        return self.device.total_memory()

    def max_threads_per_block(self) -> int:
        return self.device.get_attribute(drv.device_attribute.MAX_THREADS_PER_BLOCK)

    # -- memory ------------------------------------------------------------------------------
    def mem_alloc(self, nbytes: int) -> int:
        try:
            alloc = drv.mem_alloc(max(nbytes, 1))
        except drv.MemoryError as e:
            raise DriverOutOfMemory(str(e)) from None
        ptr = int(alloc)
        self._allocations[ptr] = alloc
        return ptr

    def mem_free(self, ptr: int) -> None:
        self._allocations.pop(ptr).free()

    def _stage_buffers(self) -> None:
        if not self._stage:
            self._stage = [drv.pagelocked_empty(_CHUNK, np.uint8) for _ in range(2)]
            self._stage_done = [None, None]

    def copy_htod(self, dst: int, src: np.ndarray) -> None:
        raw = src.reshape(-1).view(np.uint8)
        if raw.nbytes < STAGE_BYTES:
            self.stream.synchronize()
            drv.memcpy_htod(dst, raw)
            return
        self._stage_buffers()
        for k, start in enumerate(range(0, raw.nbytes, _CHUNK)):
            part = raw[start:start + _CHUNK]
            slot = k % 2
            if self._stage_done[slot] is not None:
                self._stage_done[slot].synchronize()  # the chunk's last transfer is done
            self._stage[slot][:part.nbytes] = part
            drv.memcpy_htod_async(dst + start, self._stage[slot][:part.nbytes], self.stream)
            self._stage_done[slot] = drv.Event().record(self.stream)

    def copy_dtoh(self, dst: np.ndarray, src: int) -> None:
        raw = dst.reshape(-1).view(np.uint8)
        if raw.nbytes < STAGE_BYTES:
            self.stream.synchronize()
            drv.memcpy_dtoh(raw, src)
            return
        self._stage_buffers()
        for start in range(0, raw.nbytes, _CHUNK):
            part = raw[start:start + _CHUNK]
            drv.memcpy_dtoh_async(self._stage[0][:part.nbytes], src + start, self.stream)
            self.stream.synchronize()
            part[:] = self._stage[0][:part.nbytes]

    def copy_dtod(self, dst: int, src: int, nbytes: int) -> None:
        drv.memcpy_dtod_async(dst, src, nbytes, self.stream)

    def memset(self, dst: int, byte: int, nbytes: int) -> None:
        drv.memset_d8_async(dst, byte, nbytes, self.stream)

    # -- modules and launches -------------------------------------------------------------------
    def compile(self, source: str, name: str) -> bytes:
        try:
            return compiler.compile(source, arch=self.arch(), no_extern_c=True,
                                    options=["-lineinfo"])
        except drv.CompileError as e:
            raise BuildFailure(f"{e}\n{getattr(e, 'stderr', '')}") from None

    def load_module(self, image: bytes) -> Any:
        return drv.module_from_buffer(image)

    def get_function(self, module: Any, name: str) -> Any:
        return module.get_function(name)

    def launch(self, function: Any, grid: tuple[int, int, int], block: tuple[int, int, int],
               shared_bytes: int, args: Sequence[int]) -> None:
        if getattr(function, "arg_format", None) is None:
            # every tracegrad kernel parameter is a pointer: the format is fixed at the
            # first launch (PyCUDA cannot read a kernel's parameter list)
            function.prepare("P" * len(args))
        function.prepared_async_call(grid[:2], block, self.stream, *args,
                                     shared_size=shared_bytes)

    def synchronize(self) -> None:
        try:
            self.context.synchronize()
        except drv.Error as e:
            raise LaunchFailure(f"CUDA error: {e}") from None

