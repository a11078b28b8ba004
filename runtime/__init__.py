"""tracegrad.runtime: turns generated source into callables and runs them."""
