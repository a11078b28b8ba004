"""The memory a compiled program's first call maps, faulted in while LLVM compiles it.

NOTE (warm results): the first call of a new program writes its results and temps into
fresh pages, and each 4 KiB page faults on first touch (``runtime.allocator``): softmax
over 4096x1024 float32 took 17.2 ms of CPU on its first run against 3.2 ms on later
ones, a third of its whole cold compile. ``warm`` maps pooled blocks of the sizes the
call will ask for on the helper thread (NOTE (one helper thread), runtime.helper_thread),
touches one byte per page and gives them back to the pool, so the call takes blocks
already faulted in; the helper runs while the compiling thread is in LLVM (both release
the GIL), on the machine's other core. The caller joins the task before the first call,
which then finds the warm blocks.

>>> t = warm([3 << 20])
>>> t.join()
True
>>> warm([100]) is None   # too small to pay for it
True
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from ..codegen.schedule import Program, Storage
from . import allocator, helper_thread

# Below this, a block's first touch costs less than handing it to the helper thread.
WARM_MIN_BYTES = 1 << 20
# At most this many bytes per compile: the call maps the rest as before.
WARM_MAX_BYTES = 512 << 20
_PAGE = 4096


def fresh_bytes(program: Program | None) -> list[int]:
    """Byte sizes of the blocks a call of ``program`` maps: its fresh results (those
    not written over an argument) and its temp slots."""
    if program is None:
        return []
    sizes = [info.nbytes for info in program.buffers.values() if info.storage is Storage.FRESH]
    return sizes + list(program.slots)


def warm(sizes: Iterable[int]) -> helper_thread.Task | None:
    """Fault in pooled blocks of ``sizes`` bytes on the helper thread (NOTE (warm
    results), NOTE (one helper thread)); None when none is big enough to pay for it."""
    todo, total = [], 0
    for n in sorted((n for n in sizes if n >= WARM_MIN_BYTES), reverse=True):
        if total + n <= WARM_MAX_BYTES:
            todo.append(n)
            total += n
    if not todo:
        return None
    return helper_thread.submit(_touch, todo)


def _touch(sizes: list[int]) -> None:
    # every block at once: two results of one size need two blocks
    blocks = [allocator.empty((n,), np.uint8) for n in sizes]
    for block in blocks:
        block[::_PAGE] = 0   # NumPy releases the GIL for this loop; the faults run here
    # the blocks go back to the pool, faulted in, when ``blocks`` is dropped
