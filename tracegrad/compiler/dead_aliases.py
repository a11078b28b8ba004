"""Writes through ``detach()`` aliases whose source tensor is gone (used by the tracer).

NOTE (aliases of a dead tensor): ``base[:5].detach()`` and ``base[2:].detach()`` share
storage and one version counter; once ``base`` is gone neither can name the other (their
``_alias_of`` is a dead weak reference), so the tracer's ``_written_since_made`` finds no
root. Eagerly a write through one is seen by the other (two overlapping parameters that
an optimizer updates one after the other), while a trace would read the other as it was
at the call: 0.04 off eager after one SGD step. The shared counter still links them: a
write through such an alias records its counter and storage, and reading or writing
another tensor on that counter whose storage overlaps stops the trace (TraceError: the
call runs eagerly). Aliases whose source is alive never get here: the tracer refuses a
write into those outright.
"""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from .errors import TraceError


def alias_of_dead_tensor(t: Tensor) -> bool:
    """``t`` came from ``detach()`` (or ``.data``) of a tensor that no longer exists."""
    return t._view is None and t._alias_of is not None and t._alias_of[0]() is None


class WrittenAliases:
    """The aliases of dead tensors written in one trace, by their version counter."""

    def __init__(self) -> None:
        # id of a shared version counter -> (the tensor written through it, its storage
        # before the trace); the tensor is held, so the counter's id stays its own
        self._by_counter: dict[int, tuple[Tensor, object]] = {}

    def _overlaps(self, t: Tensor, writes: dict) -> bool:
        if not self._by_counter or not alias_of_dead_tensor(t):
            return False
        writer, written = self._by_counter.get(id(t._version), (t, None))
        if writer is t:
            return False
        # ``writes``: the tracer's id -> Write; a written tensor holds a trace value now
        mine = writes[id(t)].original if id(t) in writes else t._data
        if isinstance(mine, np.ndarray) and isinstance(written, np.ndarray):
            return bool(np.may_share_memory(mine, written))
        return True   # device arrays: no bounds to compare, so assume they overlap

    def refuse_stale_read(self, t: Tensor, writes: dict) -> None:
        """``t`` is read: refuse if another alias of its storage was written."""
        if self._overlaps(t, writes):
            raise TraceError(f"a detach() alias (shape {tuple(t.shape)}) is read after "
                             f"another alias of the same storage was written in place; a "
                             f"compile trace does not follow that")

    def note_write(self, t: Tensor, writes: dict) -> None:
        """``t``, a tensor from before the trace, is written for the first time."""
        if not alias_of_dead_tensor(t):
            return
        if self._overlaps(t, writes):
            raise TraceError(f"two detach() aliases of one storage (shape "
                             f"{tuple(t.shape)}) are written in place; a compile trace "
                             f"does not follow that")
        self._by_counter.setdefault(id(t._version), (t, t._data))
