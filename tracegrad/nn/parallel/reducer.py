"""The gradient reducer behind DistributedDataParallel: parameters grouped into buckets,
each bucket's all-reduce started as soon as its last gradient is ready during backward,
and ``backward()`` returning only after every bucket's average is in ``.grad``.

NOTE (progress): between ranks on one machine an all-reduce is CPU work (shared-memory
copies and sums) that MPI does only inside MPI calls. Each bucket starts with
``Iallreduce``; every later bucket start also tests the earlier requests, which moves them
on and lets a finished bucket write its averages while backward goes on. A thread that
waited on the requests (Horovod's design) was measured here too and lost: on two cores
shared by both ranks it slowed backward more than it hid (digits epoch 2x slower, the
time after the last gradient longer).

NOTE (bucket order): MPI needs every rank to start collectives in the same order, and the
order gradients become ready could differ between ranks. Buckets are therefore started
strictly by index: a ready bucket waits until every bucket before it has started. Buckets
hold parameters in reverse registration order, the order in which backward usually
produces their gradients, so this rarely delays one.

NOTE (slot layout): a weight's gradient is usually the transpose of a matmul result
(Fortran order). Copying it into a C-ordered bucket slot is a strided copy that cost 8 ms
per 4 MiB here, against 0.1 ms in memory order. So a slot takes the gradient's own
layout. Ranks normally agree on it (the same code made the gradients); to be sure, every
bucket carries one trailer element per parameter, 1 for C order and ``world + 1`` for
Fortran order (0 for an unused parameter), summed with the data: a sum that mixes both
codes means the ranks disagreed, and that parameter is reduced again in C order.
"""
from __future__ import annotations

import time
import weakref

import numpy as np

from ..._dispatch import is_tracing
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
        self.size = n
        self.flat = np.zeros(n + len(params), dtype=dtype)  # data, then layout trailer
        self.fortran = [False] * len(params)
        self.pending = len(params)
        self.unused: set = set()
        self.request = None  # the Iallreduce in flight

    def slot(self, i: int) -> np.ndarray:
        """Parameter ``i``'s values in the bucket, shaped like it, in its slot layout."""
        off, shape = self.offsets[i], tuple(self.params[i].shape)
        flat = self.flat[off:off + self.params[i].numel()]
        if self.fortran[i]:
            return flat.reshape(shape[::-1]).transpose()
        return flat.reshape(shape)


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
        self.next_to_finish = 0
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

    def __del__(self) -> None:
        # The parameters outlive a dropped DDP wrapper; their hooks should not.
        self.remove_hooks()

    # ---- one iteration ----------------------------------------------------------------
    def check_finished(self) -> None:
        """A forward must not start while the previous backward left buckets unreduced."""
        if not self.marked:
            return
        missing = [p for bucket in self.buckets for p in bucket.params
                   if id(p) not in self.marked]
        shapes = ", ".join(f"{tuple(p.shape)}" for p in missing[:8])
        self._reset()
        raise RuntimeError(
            f"DistributedDataParallel: Expected to have finished reduction in the prior "
            f"iteration before starting a new one. {len(missing)} parameter(s) got no gradient "
            f"(shapes {shapes}); pass find_unused_parameters=True to DistributedDataParallel "
            f"if some parameters take no part in producing the loss")

    def mark_unused(self, params: list) -> None:
        for p in params:
            b, i = self.where[id(p)]
            self.buckets[b].unused.add(i)
            self._mark(p, None)

    def grad_ready(self, param) -> None:
        if not self.sync:
            return
        if is_tracing():
            raise RuntimeError(
                "DistributedDataParallel: a gradient became ready inside a tracegrad.compile "
                "trace (backward() in a compiled training step); the all-reduce runs on "
                "values, so compile the loss function and call backward() outside it")
        if self.timeline is not None:
            self.timeline.append(("grad", _now()))
        self._mark(param, param.grad)

    def _mark(self, param, grad) -> None:
        key = id(param)
        if key in self.marked:
            raise RuntimeError(
                f"DistributedDataParallel: a parameter of shape {tuple(param.shape)} got its "
                f"gradient twice in one iteration (a second backward through the same "
                f"graph?); this is not supported")
        self.marked.add(key)
        b, i = self.where[key]
        bucket = self.buckets[b]
        trailer = bucket.flat[bucket.size:]
        if grad is None:
            bucket.fortran[i] = False
            bucket.slot(i)[...] = 0
            trailer[i] = 0
        else:
            data = grad._data
            bucket.fortran[i] = data.ndim > 1 and data.flags.f_contiguous and \
                not data.flags.c_contiguous
            np.copyto(bucket.slot(i), data)
            trailer[i] = self.world + 1 if bucket.fortran[i] else 1
            bucket.unused.discard(i)
        bucket.pending -= 1
        if bucket.pending == 0:
            self._start_ready_buckets()

    def _start_ready_buckets(self) -> None:
        MPI = mpi()
        while self.next_to_start < len(self.buckets) and \
                self.buckets[self.next_to_start].pending == 0:
            bucket = self.buckets[self.next_to_start]
            if self.world > 1:  # in a world of one the average is the gradient itself
                bucket.request = self.comm.Iallreduce(MPI.IN_PLACE, bucket.flat, MPI.SUM)
            if self.timeline is not None:
                self.timeline.append(("start", _now()))
            self.next_to_start += 1
        self._finish_buckets(wait=self.next_to_start == len(self.buckets))

    def _finish_buckets(self, wait: bool) -> None:
        """Averages the started buckets in order: those already reduced, or all of them
        with ``wait`` (the end of backward)."""
        while self.next_to_finish < self.next_to_start:
            bucket = self.buckets[self.next_to_finish]
            if bucket.request is not None:
                if wait:
                    bucket.request.Wait()
                elif not bucket.request.Test():
                    return
                bucket.request = None
                self._average(bucket)
            self.next_to_finish += 1
        if wait:
            if self.timeline is not None:
                self.timeline.append(("done", _now()))
            self._reset()

    def _average(self, bucket: _Bucket) -> None:
        """Writes a reduced bucket's averages into the gradients (which the engine no
        longer touches: they are final)."""
        redo = self._layouts_disagree(bucket)
        bucket.flat[:bucket.size] /= self.world
        for i, p in enumerate(bucket.params):
            avg = self._reduce_c_order(p) if i in redo else bucket.slot(i)
            if i in bucket.unused:
                # NOTE: a parameter unused here keeps grad None unless another rank used
                # it (then the average is non-zero), as in PyTorch.
                if p.grad is None and not avg.any():
                    continue
                if p.grad is None:
                    p.grad = _wrap(avg.copy())
                    continue
            np.copyto(p.grad._data, avg)
            p.grad._version[0] += 1

    def _layouts_disagree(self, bucket: _Bucket) -> set:
        """Indices of the parameters whose slot layout differed between ranks (see NOTE
        (slot layout)); every rank computes the same set from the same sums."""
        redo = set()
        for i, code in enumerate(bucket.flat[bucket.size:].tolist()):
            fortran_ranks, c_ranks = divmod(int(round(code)), self.world + 1)
            if fortran_ranks and c_ranks:
                redo.add(i)
        return redo

    def _reduce_c_order(self, p) -> np.ndarray:
        MPI = mpi()
        mine = np.zeros(tuple(p.shape), p._data.dtype) if p.grad is None else \
            np.ascontiguousarray(p.grad._data)
        self.comm.Allreduce(MPI.IN_PLACE, mine, MPI.SUM)
        mine /= self.world
        return mine

    def _reset(self) -> None:
        for bucket in self.buckets:
            bucket.pending = len(bucket.params)
            bucket.unused = set()
            if bucket.request is not None:  # an abandoned iteration: drain MPI
                bucket.request.Wait()
                bucket.request = None
        self.next_to_start = self.next_to_finish = 0
        self.marked = set()


_now = time.perf_counter
