"""``DataLoader``: batches from a dataset, in the main process or in worker processes.

With ``num_workers > 0`` the main process sends lists of indices to forked workers
(round-robin, at most ``prefetch_factor`` tasks per worker in flight), and yields the
results in the order it sent the tasks: batches are the same, in the same order, as
with ``num_workers=0``.
"""
from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
import sys
import time

from . import _worker
from ._collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader"]


class _InfiniteConstantSampler(Sampler):
    def __iter__(self):
        while True:
            yield None


class DataLoader:
    """Iterate over ``dataset`` in batches (PyTorch's ``torch.utils.data.DataLoader``).

    >>> import tracegrad as torch
    >>> from tracegrad.utils.data import TensorDataset
    >>> ds = TensorDataset(torch.arange(5), torch.arange(5) * 10)
    >>> [x.tolist() for x, y in DataLoader(ds, batch_size=2)]
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler=None, batch_sampler=None, num_workers: int = 0, collate_fn=None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor: int | None = None, persistent_workers: bool = False,
                 pin_memory_device: str = "", in_order: bool = True) -> None:
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 "
                             "to disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in "
                             "multiprocessing. let num_workers > 0 to enable multiprocessing, "
                             "otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and prefetch_factor < 1:
            raise ValueError("prefetch_factor option should be at least 1")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")

        self._is_iterable = isinstance(dataset, IterableDataset)
        if self._is_iterable:
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"shuffle option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"sampler option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None:
            if drop_last:
                raise ValueError("batch_size=None option disables auto-batching and is "
                                 "mutually exclusive with drop_last")
        elif not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if sampler is None:
            if self._is_iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if batch_sampler is not None else default_convert)
        self.pin_memory = pin_memory  # accepted, no effect: memory is host memory already
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        self._iterator = None

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self) -> int:
        if self._is_iterable:
            n = len(self.dataset)
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)

    def _check_not_empty(self) -> None:
        if self._is_iterable or not hasattr(self.dataset, "__len__"):
            return
        if len(self.dataset) == 0:
            raise ValueError(f"DataLoader: the dataset ({type(self.dataset).__name__}) is "
                             f"empty (len(dataset) == 0), so there are no samples to load")

    def __iter__(self):
        self._check_not_empty()
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if self.persistent_workers:
            if self._iterator is None or self._iterator._closed:
                self._iterator = _MultiProcessIter(self)
            else:
                self._iterator._reset()
            return self._iterator
        return _MultiProcessIter(self)

    def _base_seed(self) -> int:
        from ..._random import numpy_generator
        return int(numpy_generator(self.generator).integers(0, 2 ** 63 - 1))


class _SingleProcessIter:
    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader
        self._sampler_iter = iter(loader._index_sampler)
        self._dataset_iter = iter(loader.dataset) if loader._is_iterable else None
        # Drawn as with workers, so a loader's generator advances the same either way.
        self._base_seed = loader._base_seed()
        self._ended = False

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._loader)

    def __next__(self):
        loader = self._loader
        if self._ended:
            raise StopIteration
        indices = next(self._sampler_iter)
        try:
            if self._dataset_iter is not None:
                return _worker.fetch_iterable(self._dataset_iter, loader.batch_size,
                                              loader.drop_last, loader.collate_fn,
                                              loader._auto_collation)
            return _worker.fetch(loader.dataset, indices, loader.collate_fn,
                                 loader._auto_collation)
        except StopIteration:
            self._ended = True
            raise


def _default_context():
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


class _MultiProcessIter:
    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader
        ctx = loader.multiprocessing_context
        if ctx is None:
            ctx = _default_context()
        elif isinstance(ctx, str):
            ctx = multiprocessing.get_context(ctx)
        n = loader.num_workers
        self._closed = False
        self._base_seed = loader._base_seed()
        self._result_queue = ctx.Queue()
        self._done_event = ctx.Event()
        self._index_queues = []
        self._workers = []
        for wid in range(n):
            iq = ctx.Queue()
            iq.cancel_join_thread()
            w = ctx.Process(target=_worker.worker_loop, daemon=True, args=(
                loader.dataset, loader._is_iterable, iq, self._result_queue, self._done_event,
                loader.collate_fn, loader._auto_collation, loader.batch_size, loader.drop_last,
                self._base_seed + wid, loader.worker_init_fn, wid, n, os.getpid()))
            w.start()
            self._index_queues.append(iq)
            self._workers.append(w)
        self._epoch = -1
        self._send_idx = 0
        self._rcvd_idx = 0
        self._reset()

    def _reset(self) -> None:
        # Task ids keep counting across epochs, so late results of an unfinished epoch
        # (persistent workers) are recognised as stale and dropped.
        self._epoch += 1
        self._sampler_iter = iter(self._loader._index_sampler)
        self._rcvd_idx = self._send_idx
        self._task_worker: dict[int, int] = {}   # task id -> worker, for tasks in flight
        self._results: dict[int, object] = {}
        self._active = [True] * len(self._workers)
        self._next_worker = itertools.cycle(range(len(self._workers)))
        self._sampler_done = False
        for _ in range(self._loader.prefetch_factor * len(self._workers)):
            self._put_task()

    def _put_task(self) -> None:
        if self._sampler_done or not any(self._active):
            return
        try:
            indices = next(self._sampler_iter)
        except StopIteration:
            self._sampler_done = True
            return
        for _ in range(len(self._workers)):
            wid = next(self._next_worker)
            if self._active[wid]:
                break
        self._index_queues[wid].put((self._epoch, self._send_idx, indices))
        self._task_worker[self._send_idx] = wid
        self._send_idx += 1

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._loader)

    def __next__(self):
        while True:
            if self._rcvd_idx >= self._send_idx:
                if not self._loader.persistent_workers:
                    self._shutdown()
                raise StopIteration
            data = self._results.pop(self._rcvd_idx, None)
            if data is None:
                data = self._get_result()
                if data is None:
                    continue
            del self._task_worker[self._rcvd_idx]
            self._rcvd_idx += 1
            if isinstance(data, _worker.IterableExhausted):
                self._active[data.worker_id] = False
                # tasks queued on that worker will come back exhausted as well
                self._put_task()
                continue
            self._put_task()
            if isinstance(data, _worker.ExceptionWrapper):
                self._shutdown(wait=1.0)
                data.reraise()
            return data

    def _get_result(self):
        """Wait for the result of task ``_rcvd_idx``; stash others. None: got another."""
        timeout = self._loader.timeout
        start = time.monotonic()
        while True:
            wait = _worker.STATUS_INTERVAL if timeout <= 0 else min(
                _worker.STATUS_INTERVAL, max(0.0, timeout - (time.monotonic() - start)))
            try:
                task_id, data = self._result_queue.get(timeout=wait)
            except queue.Empty:
                if timeout > 0 and time.monotonic() - start >= timeout:
                    self._shutdown(wait=0.2)
                    raise RuntimeError(f"DataLoader timed out after {timeout} seconds")
                dead = [w.pid for w in self._workers if not w.is_alive()]
                if dead:
                    self._shutdown(wait=0.2)
                    raise RuntimeError(f"DataLoader worker (pid(s) "
                                       f"{', '.join(map(str, dead))}) exited unexpectedly")
                continue
            if task_id == self._rcvd_idx:
                return data
            if task_id in self._task_worker:
                self._results[task_id] = data
            return None

    def _shutdown(self, wait: float = 5.0) -> None:
        """Stop the workers: ask, wait up to ``wait`` seconds, then terminate."""
        if self._closed:
            return
        self._closed = True
        self._done_event.set()
        for q in self._index_queues:
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
        for w in self._workers:
            w.join(timeout=wait)
            if w.is_alive():
                w.terminate()
                w.join(timeout=1.0)
        for q in self._index_queues:
            q.close()
        self._result_queue.cancel_join_thread()
        self._result_queue.close()

    def __del__(self) -> None:
        try:
            self._shutdown()
        except Exception:
            pass
