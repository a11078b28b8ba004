"""tracegrad's benchmark suite: ``python -m benchmarks [--quick] [--only NAME] ...``.

Every workload runs tracegrad eager and ``tracegrad.compile`` side by side in one
process, beside a hand-written NumPy peer and, when importable, PyTorch and JAX.
"""
