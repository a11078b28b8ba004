"""Debug output for ``@compile`` through the ``tracegrad`` logger.

``TRACEGRAD_DEBUG=1`` logs every trace, compile, cache hit and miss, and why a call
retraced (which part of the signature changed); ``TRACEGRAD_DEBUG=2`` also logs each
program run with its time. Output goes to stderr.
"""
from __future__ import annotations

import logging
import os

logger = logging.getLogger("tracegrad")


def _from_environment() -> int:
    try:
        return int(os.environ.get("TRACEGRAD_DEBUG", "0") or 0)
    except ValueError:
        return 1


# Read once: every compiled call asks, and os.environ costs microseconds per lookup.
_level = _from_environment()


def debug_level() -> int:
    return _level


def set_debug_level(level: int | None = None) -> None:
    """Change the level at run time (None: re-read ``TRACEGRAD_DEBUG``)."""
    global _level
    _level = _from_environment() if level is None else int(level)
    _configure()


def _configure() -> None:
    if _level > 0 and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[tracegrad] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)


_configure()

_FIELDS = ("shape", "dtype", "device", "requires_grad", "layout")


def describe_key(key) -> str:
    treedef, parts, grad_mode = key
    tensors = [p for p in parts if isinstance(p, tuple)]
    desc = ", ".join(f"{p[1]}{list(p[0])}{'*' if p[3] else ''}" for p in tensors)
    return f"({desc}) grad_mode={grad_mode}"


def retrace_reason(key, previous: list) -> str:
    """Which part of the signature differs from the closest earlier signature."""
    if not previous:
        return "first call"
    treedef, parts, grad_mode = key
    best = None
    for old in previous:
        reasons = []
        if old[0] != treedef:
            reasons.append("argument structure or a non-tensor argument's value changed")
        if old[2] != grad_mode:
            reasons.append(f"grad mode changed ({old[2]} -> {grad_mode})")
        for i, (a, b) in enumerate(zip(old[1], parts)):
            if a != b and isinstance(a, tuple) and isinstance(b, tuple):
                for j, name in enumerate(_FIELDS):
                    if a[j] != b[j]:
                        reasons.append(f"argument {i} {name} changed ({a[j]} -> {b[j]})")
        if len(old[1]) != len(parts):
            reasons.append(f"number of tensor/scalar arguments changed ({len(old[1])} -> {len(parts)})")
        if best is None or len(reasons) < len(best):
            best = reasons
    return "; ".join(best) or "signature changed"
