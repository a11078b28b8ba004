"""What a trace prints waits until the trace has succeeded.

NOTE: ``print("loss", loss)`` writes ``"loss"`` and the separator before it converts
``loss``, and converting a traced tensor stops the trace (it has no value yet); the eager
rerun then prints the whole line, so the user saw ``loss loss tensor(...)``. The tracing
thread's writes to ``sys.stdout`` are held while it traces: a successful trace writes them
out (it ran the function's Python once, as before), a failed one drops them, since the
eager rerun prints them again. Other threads write through unchanged.
"""
from __future__ import annotations

import contextlib
import sys
import threading


class _HeldStdout:
    """``sys.stdout`` while a trace runs: holds the tracing thread's text."""

    def __init__(self, real) -> None:
        self._real = real
        self._owner = threading.get_ident()
        self._held: list = []

    def write(self, text: str) -> int:
        if threading.get_ident() != self._owner:
            return self._real.write(text)
        self._held.append(text)
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if threading.get_ident() != self._owner:
            self._real.flush()

    def __getattr__(self, name: str):  # encoding, isatty, fileno...: the real stream's
        return getattr(self._real, name)


@contextlib.contextmanager
def stdout_held_until_success():
    """Run a trace with its prints held: written out when it returns, dropped when it
    raises (NOTE above)."""
    real = sys.stdout
    if real is None:  # pythonw, or a closed stdout: nothing to hold
        yield
        return
    held = _HeldStdout(real)
    sys.stdout = held
    try:
        yield
    except BaseException:
        _restore(held, real)
        raise
    _restore(held, real)
    if held._held:
        real.write("".join(held._held))


def _restore(held: _HeldStdout, real) -> None:
    if sys.stdout is held:  # else the traced code replaced stdout itself: leave its choice
        sys.stdout = real
