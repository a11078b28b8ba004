"""tracegrad.codegen: graph IR, passes, fusion, loop-kernel IR and renderers.

Pure: text in, text out. Imports nothing from ``tracegrad`` or ``runtime``.
"""
