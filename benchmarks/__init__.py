"""tracegrad's benchmark suite: ``python -m benchmarks [--quick] [--only NAME] ...``.

Every workload runs tracegrad eager and ``tracegrad.compile`` side by side in one
process, beside a hand-written NumPy peer and, when importable, PyTorch and JAX.
"""
import os

# NOTE: arms of different libraries alternate in one process on few cores. OpenBLAS
# workers busy-wait ~2^28 cycles after each BLAS call and libgomp (PyTorch) workers spin
# too, so a spinning pool from the previous arm starves the next arm's threads: measured
# here, the seed MLP step went from ~1 ms to ~40 ms for every arm. Set before NumPy is
# first imported (this package's import comes first under ``python -m``); a user's own
# setting wins. The machine line reports the values in force.
# tracegrad's compiled programs no longer need these (they hold OpenBLAS to one thread
# while they run: NOTE (one kind of worker), runtime.blas_threads); the peers' arms, and
# a compiled arm that runs right after a NumPy arm's multi-threaded matmul, still do.
# TRACEGRAD_BENCH_THREAD_ENV=0 leaves them unset, to measure what a user's process sees
# (the machine line then shows None).
THREAD_ENV = {"OPENBLAS_THREAD_TIMEOUT": "4", "OMP_WAIT_POLICY": "PASSIVE"}
if os.environ.get("TRACEGRAD_BENCH_THREAD_ENV", "1") != "0":
    for _k, _v in THREAD_ENV.items():
        os.environ.setdefault(_k, _v)
