"""What runs inside a DataLoader worker process, and ``get_worker_info``."""
from __future__ import annotations

import os
import queue
import random
import traceback

import numpy as np

__all__ = ["WorkerInfo", "get_worker_info"]

# How often a waiting worker checks that the main process is still alive (seconds).
STATUS_INTERVAL = 1.0


class WorkerInfo:
    """``id``, ``num_workers``, ``seed`` and this worker's copy of ``dataset``."""

    def __init__(self, id: int, num_workers: int, seed: int, dataset) -> None:
        self.id = id
        self.num_workers = num_workers
        self.seed = seed
        self.dataset = dataset

    def __repr__(self) -> str:
        return (f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed}, "
                f"dataset={type(self.dataset).__name__})")


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """Inside a DataLoader worker: its ``WorkerInfo``; in the main process: None."""
    return _worker_info


class ExceptionWrapper:
    """An exception raised in a worker, carried to the main process as text."""

    def __init__(self, exc: BaseException, where: str) -> None:
        self.exc_type = type(exc)
        self.message = f"Caught {type(exc).__name__} {where}.\nOriginal " + "".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__))

    def reraise(self):
        try:
            err = self.exc_type(self.message)
        except Exception:
            err = RuntimeError(self.message)
        raise err


class IterableExhausted:
    """Sent by a worker whose IterableDataset iterator has ended."""

    def __init__(self, worker_id: int) -> None:
        self.worker_id = worker_id


def fetch(dataset, indices, collate_fn, auto_collation: bool):
    """The samples at ``indices`` (a list, or one index without auto-batching), collated."""
    if auto_collation:
        getitems = getattr(dataset, "__getitems__", None)
        data = getitems(indices) if callable(getitems) else [dataset[i] for i in indices]
    else:
        data = dataset[indices]
    return collate_fn(data)


def fetch_iterable(it, batch_size, drop_last: bool, collate_fn, auto_collation: bool):
    """The next batch from an IterableDataset iterator; raises StopIteration at the end."""
    if not auto_collation:
        return collate_fn(next(it))
    data = []
    for item in it:
        data.append(item)
        if len(data) == batch_size:
            break
    if not data or (drop_last and len(data) < batch_size):
        raise StopIteration
    return collate_fn(data)


def seed_worker(seed: int) -> None:
    from ... import _random
    _random.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)


def worker_loop(dataset, is_iterable, index_queue, result_queue, done_event, collate_fn,
                auto_collation, batch_size, drop_last, seed, init_fn, worker_id, num_workers,
                parent_pid):
    """Take ``(epoch, task_id, indices)`` from ``index_queue``, put ``(task_id, batch)`` on
    ``result_queue``; ``None`` ends the loop. A new epoch restarts an iterable dataset."""
    global _worker_info
    try:
        seed_worker(seed)
        _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
        init_error = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
        except Exception as e:  # reported with the first task
            init_error = ExceptionWrapper(e, f"in worker_init_fn of DataLoader worker "
                                             f"process {worker_id}")
        it, it_epoch, exhausted = None, None, False
        while True:
            try:
                task = index_queue.get(timeout=STATUS_INTERVAL)
            except queue.Empty:
                if os.getppid() != parent_pid or done_event.is_set():
                    return
                continue
            if task is None:
                return
            epoch, task_id, indices = task
            if init_error is not None:
                result_queue.put((task_id, init_error))
                continue
            try:
                if is_iterable:
                    if it_epoch != epoch:
                        it, it_epoch, exhausted = iter(dataset), epoch, False
                    if exhausted:
                        result = IterableExhausted(worker_id)
                    else:
                        try:
                            result = fetch_iterable(it, batch_size, drop_last, collate_fn,
                                                    auto_collation)
                        except StopIteration:
                            exhausted = True
                            result = IterableExhausted(worker_id)
                else:
                    result = fetch(dataset, indices, collate_fn, auto_collation)
            except Exception as e:
                result = ExceptionWrapper(e, f"in DataLoader worker process {worker_id}")
            result_queue.put((task_id, result))
    except KeyboardInterrupt:
        pass
