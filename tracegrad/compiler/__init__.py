"""tracegrad.compiler: the @compile frontend (tracing, signatures, compiled autograd)."""
