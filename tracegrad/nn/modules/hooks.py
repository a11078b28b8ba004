"""``RemovableHandle``: what ``register_*_hook`` returns (PyTorch's
``torch.utils.hooks.RemovableHandle``)."""
from __future__ import annotations

import itertools
import weakref


class RemovableHandle:
    """Returned by ``register_*_hook``; ``remove()`` unregisters the hook."""

    _next_id = itertools.count()

    def __init__(self, *hook_dicts) -> None:
        self.hooks_dict_refs = [weakref.ref(d) for d in hook_dicts]
        self.id = next(RemovableHandle._next_id)

    def remove(self) -> None:
        for ref in self.hooks_dict_refs:
            d = ref()
            if d is not None and self.id in d:
                del d[self.id]

    # pickled with its module (a lazy module keeps its handles): the dicts themselves
    # travel, weak references to them are rebuilt (PyTorch's handle does the same)
    def __getstate__(self):
        return [ref() for ref in self.hooks_dict_refs], self.id

    def __setstate__(self, state) -> None:
        dicts, self.id = state
        self.hooks_dict_refs = [weakref.ref(d) if d is not None else _dead_ref
                                for d in dicts]

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _dead_ref():
    return None
