"""The gradient reducer behind DistributedDataParallel: parameters grouped into buckets,
each bucket's average started with a non-blocking all-reduce as soon as its last gradient
is ready during backward.

NOTE (bucket order): MPI needs every rank to start collectives in the same order, and the
order gradients become ready could differ between ranks. Buckets are therefore started
strictly by index: a ready bucket waits until every bucket before it has started. Buckets
hold parameters in reverse registration order, the order in which backward usually
produces their gradients, so this rarely delays one.
"""
from __future__ import annotations

import time
import weakref

import numpy as np

from ..._tensor import _wrap
from ...distributed.process_group import comm_for, mpi


class _Bucket:
    def __init__(self, params: list, dtype) -> None:
        self.params = params
        self.offsets = []
        n = 0
        for p in params:
            self.offsets.append(n)
            n += p.numel()
        self.flat = np.zeros(n, dtype=dtype)
        self.pending = len(params)
        self.unused: set = set()
        self.request = None

    def slot(self, i: int) -> np.ndarray:
        off = self.offsets[i]
        return self.flat[off:off + self.params[i].numel()]


def build_buckets(params: list, cap_bytes: int) -> list[_Bucket]:
    """Consecutive parameters in reverse order, one dtype per bucket, each bucket at
    most ``cap_bytes`` unless a single parameter is larger."""
    buckets, current, size = [], [], 0
    for p in reversed(params):
        nbytes = p.numel() * p._data.dtype.itemsize
        if current and (size + nbytes > cap_bytes or p._data.dtype != current[0]._data.dtype):
            buckets.append(_Bucket(current, current[0]._data.dtype))
            current, size = [], 0
        current.append(p)
        size += nbytes
    if current:
        buckets.append(_Bucket(current, current[0]._data.dtype))
    return buckets


class Reducer:
    """Owns the buckets and the post-accumulate-grad hooks of the parameters."""

    def __init__(self, params: list, cap_bytes: int, group=None) -> None:
        self.comm = comm_for(group, "DistributedDataParallel")
        self.world = self.comm.Get_size()
        self.buckets = build_buckets(params, cap_bytes)
        self.where = {}
        for b, bucket in enumerate(self.buckets):
            for i, p in enumerate(bucket.params):
                self.where[id(p)] = (b, i)
        self.next_to_start = 0
        self.marked: set = set()
        self.sync = True
        self.timeline: list | None = None  # (event, time) pairs when measuring overlap
        me = weakref.ref(self)

        def hook(param):
            reducer = me()
            if reducer is not None:
                reducer.grad_ready(param)
        self.handles = [p.register_post_accumulate_grad_hook(hook) for p in params]

    def remove_hooks(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    # ---- one iteration ----------------------------------------------------------------
    def check_finished(self) -> None:
        """A forward must not start while the previous backward left buckets unreduced."""
        if not self.marked:
            return
        missing = [p for bucket in self.buckets for p in bucket.params
                   if id(p) not in self.marked]
        names = ", ".join(f"{tuple(p.shape)}" for p in missing[:8])
        self._reset()
        raise RuntimeError(
            f"DistributedDataParallel: Expected to have finished reduction in the prior "
            f"iteration before starting a new one. {len(missing)} parameter(s) got no gradient "
            f"(shapes {names}); pass find_unused_parameters=True to DistributedDataParallel "
            f"if some parameters take no part in producing the loss")

    def mark_unused(self, params: list) -> None:
        for p in params:
            b, i = self.where[id(p)]
            self.buckets[b].unused.add(i)
            self._mark(p, None)

    def grad_ready(self, param) -> None:
        if not self.sync:
            return
        if self.timeline is not None:
            self.timeline.append(("grad", _now()))
        self._mark(param, param.grad)

    def _mark(self, param, grad) -> None:
        key = id(param)
        if key in self.marked:
            raise RuntimeError(
                f"DistributedDataParallel: a parameter of shape {tuple(param.shape)} got its "
                f"gradient twice in one iteration (a second backward through the same "
                f"graph, or a reused module with find_unused_parameters?); this is not "
                f"supported")
        self.marked.add(key)
        b, i = self.where[key]
        bucket = self.buckets[b]
        slot = bucket.slot(i)
        if grad is None:
            slot[...] = 0
        else:
            slot[...] = grad._data.reshape(-1)
            bucket.unused.discard(i)
        bucket.pending -= 1
        if bucket.pending == 0:
            self._start_ready_buckets()

    def _start_ready_buckets(self) -> None:
        MPI = mpi()
        while self.next_to_start < len(self.buckets) and \
                self.buckets[self.next_to_start].pending == 0:
            bucket = self.buckets[self.next_to_start]
            bucket.request = self.comm.Iallreduce(MPI.IN_PLACE, bucket.flat, MPI.SUM)
            if self.timeline is not None:
                self.timeline.append(("start", _now()))
            self.next_to_start += 1
        # Poking the earlier requests lets MPI progress them while backward goes on.
        for bucket in self.buckets[:self.next_to_start]:
            if bucket.request is not None:
                bucket.request.Test()
        if self.next_to_start == len(self.buckets):
            self._finish()

    def _finish(self) -> None:
        """Waits for every bucket and writes the averages into the gradients."""
        for bucket in self.buckets:
            bucket.request.Wait()
            bucket.request = None
            bucket.flat /= self.world
            for i, p in enumerate(bucket.params):
                avg = bucket.slot(i).reshape(p._data.shape)
                if i in bucket.unused:
                    # NOTE: a parameter unused here keeps grad None unless another rank
                    # used it (then the average is non-zero), as in PyTorch.
                    if p.grad is None and not avg.any():
                        continue
                    if p.grad is None:
                        p.grad = _wrap(avg.copy())
                        continue
                p.grad._data[...] = avg
                p.grad._version[0] += 1
        if self.timeline is not None:
            self.timeline.append(("done", _now()))
        self._reset()

    def _reset(self) -> None:
        for bucket in self.buckets:
            bucket.pending = len(bucket.params)
            bucket.unused = set()
            if bucket.request is not None:
                bucket.request.Wait()
                bucket.request = None
        self.next_to_start = 0
        self.marked = set()


_now = time.perf_counter
