"""``Work``: the handle an ``async_op=True`` collective returns, over MPI requests."""
from __future__ import annotations

import time
from typing import Callable


class Work:
    """Waits on non-blocking MPI requests, then runs the finishing step (divide for AVG,
    copy back into a non-contiguous tensor) exactly once."""

    def __init__(self, requests, finish: Callable[[], object] | None = None,
                 what: str = "collective") -> None:
        self._requests = list(requests)
        self._finish = finish
        self._done = False
        self._result = None
        self._what = what

    def is_completed(self) -> bool:
        """True once every request has completed (polls MPI, so it also makes progress)."""
        if self._done:
            return True
        if self._requests and not all(r.Test() for r in self._requests):
            return False
        self._complete()
        return True

    def wait(self, timeout=None) -> bool:
        """Blocks until the operation has finished; returns True. With ``timeout`` (seconds
        or a ``datetime.timedelta``) raises RuntimeError if it has not finished by then."""
        if self._done:
            return True
        if timeout is None:
            for r in self._requests:
                r.Wait()
        else:
            seconds = timeout.total_seconds() if hasattr(timeout, "total_seconds") else timeout
            deadline = time.monotonic() + float(seconds)
            while not all(r.Test() for r in self._requests):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Work.wait: {self._what} did not finish within "
                                       f"{float(seconds)} s (a peer rank may never join it)")
                time.sleep(1e-4)
        self._complete()
        return True

    def result(self):
        self.wait()
        return self._result

    def _complete(self) -> None:
        self._done = True
        self._requests = []
        if self._finish is not None:
            self._result = self._finish()
            self._finish = None

    def __repr__(self) -> str:
        return f"Work({self._what}, completed={self._done})"

