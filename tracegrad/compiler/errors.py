"""Errors raised while tracing for ``@compile`` (defined on the core's bottom floor,
``tracegrad._errors``, so that ``_tensor`` can raise them without importing upward)."""
from .._errors import TraceError

__all__ = ["TraceError"]
