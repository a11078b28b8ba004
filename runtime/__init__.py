"""tracegrad.runtime: turns generated source into callables and runs them.

``memory_stats()`` and ``empty_cache()`` report on and empty the caching allocator that
compiled programs take their output and temp buffers from.
"""
from .allocator import empty_cache, memory_stats, reset_peak_stats

__all__ = ["memory_stats", "empty_cache", "reset_peak_stats"]
