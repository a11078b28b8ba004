"""Errors raised while tracing for ``@compile``."""


class TraceError(RuntimeError):
    """The function did something a trace cannot follow (``.item()``, ``bool(tensor)``,
    ``.numpy()``, data-dependent shapes). ``@compile`` falls back to eager on it, or
    re-raises with ``fullgraph=True``."""
