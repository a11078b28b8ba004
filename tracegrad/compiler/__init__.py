"""tracegrad.compiler: the @compile frontend (tracing, signatures, compiled autograd)."""


def __getattr__(name):
    # NOTE: lazy, so importing tracegrad.compiler.errors from the core pulls in nothing else
    if name == "mark_dynamic":
        from .dynamic import mark_dynamic
        return mark_dynamic
    raise AttributeError(f"module 'tracegrad.compiler' has no attribute {name!r}")
