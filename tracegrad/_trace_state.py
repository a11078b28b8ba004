"""Whether a compile trace is recording. The dispatcher reads ``current`` on every op."""
current = None  # the active tracer (tracegrad.compiler.tracer.Tracer) or None
