"""Which optimizer group's update each node of a training step computes: the kernels of
one group may merge into one (NOTE (horizontal fusion), codegen/horizontal.py)."""
from __future__ import annotations

import bisect

__all__ = ["update_segments"]


def update_segments(tracer, forward_ids: dict[int, int]) -> dict[int, int] | None:
    """Forward graph node (``forward_ids``: trace node -> it) -> the index of the optimizer
    group whose update recorded it (``Tracer.mark_update_group``); None outside an
    optimizer step. Not used on CUDA, where a merged kernel would run on one thread."""
    if not tracer.update_groups:
        return None
    segments = {}
    for joint, node in forward_ids.items():
        if tracer.phase_of(joint) != "update":
            continue
        group = bisect.bisect_right(tracer.update_groups, joint) - 1
        if group >= 0:
            segments[node] = group
    return segments or None
