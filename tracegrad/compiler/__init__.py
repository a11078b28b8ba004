"""tracegrad.compiler: the @compile frontend (tracing, signatures, compiled autograd)."""


def __getattr__(name):
    # NOTE: lazy, so importing tracegrad.compiler.errors from the core pulls in nothing else
    if name == "mark_dynamic":
        from .dynamic import mark_dynamic
        return mark_dynamic
    if name in ("reset", "disable", "is_compiling"):
        from . import torch_api
        return getattr(torch_api, name)
    raise AttributeError(f"module 'tracegrad.compiler' has no attribute {name!r}")
