"""NOTE (private blocks) in runtime.allocator: pooled blocks are private memory, so a
forked child (a DataLoader worker) that reuses a block it inherited from the pool writes
its own copy, never the parent's tensor."""
import os
import sys

import numpy as np
import pytest

from tracegrad.runtime import allocator

MB = 1 << 20


def _mapping_flags(address: int) -> str:
    """The permission column of /proc/self/maps ('rw-p' private, 'rw-s' shared)."""
    with open("/proc/self/maps") as f:
        for line in f:
            span, perms = line.split()[:2]
            low, high = (int(v, 16) for v in span.split("-"))
            if low <= address < high:
                return perms
    raise AssertionError(f"{address:#x} is not mapped")


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc (Linux)")
def test_pooled_blocks_are_private_mappings():
    a = allocator.empty((4 * MB,), np.uint8)
    assert _mapping_flags(a.ctypes.data).endswith("p")


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin",
                    reason="needs fork")
def test_a_forked_child_reusing_a_pooled_block_does_not_write_the_parents():
    size = 3 * MB
    block = allocator.empty((size,), np.uint8)
    del block   # back to the pool: parent and child both hold it free after the fork
    child_reads, parent_writes = os.pipe()
    parent_reads, child_writes = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: take the pooled block, fill it, let the parent write its own
        code = 1
        try:
            mine = allocator.empty((size,), np.uint8)
            mine[:] = 1
            os.write(child_writes, b"x")
            os.read(child_reads, 1)
            code = 0 if (mine == 1).all() else 2
        finally:
            os._exit(code)
    theirs_written = os.read(parent_reads, 1)
    assert theirs_written == b"x"
    parents = allocator.empty((size,), np.uint8)   # the same pooled block, in the parent
    parents[:] = 2
    os.write(parent_writes, b"y")
    _, status = os.waitpid(pid, 0)
    for fd in (child_reads, parent_writes, parent_reads, child_writes):
        os.close(fd)
    assert (parents == 2).all()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, \
        "the child's pooled block changed under it: parent and child share its pages"

