"""The ``tracegrad`` command: ``dump``, ``info`` and ``cache``.

    tracegrad dump [--out DIR] [--backend llvm|cuda] SCRIPT.py [ARGS...]
    tracegrad info
    tracegrad cache clear | tracegrad cache info
"""
from __future__ import annotations

import argparse
import os
import platform
import runpy
import shutil
import sys


def _dump(args) -> int:
    out = os.path.abspath(args.out)
    os.environ["TRACEGRAD_DUMP"] = out
    if args.backend:
        os.environ["TRACEGRAD_BACKEND"] = args.backend
    sys.argv = [args.script] + list(args.args)
    try:
        runpy.run_path(args.script, run_name="__main__")
    finally:
        from .compiler.dump import write_index
        from pathlib import Path
        write_index(Path(out))
        print(f"tracegrad: dump written to {out} (open {os.path.join(out, 'index.md')})",
              file=sys.stderr)
    return 0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _info(args) -> int:
    import llvmlite
    import numpy
    import tracegrad
    from .runtime import disk_cache, llvm_jit
    from . import cuda
    print(f"tracegrad {tracegrad.__version__}, Python {platform.python_version()}, "
          f"NumPy {numpy.__version__}, llvmlite {llvmlite.__version__}")
    print(f"CPU: {_cpu_name()} ({os.cpu_count()} cores)")
    feats = [f for f in ("avx512f", "avx2", "fma", "sse4.2") if llvm_jit.host_has_feature(f)]
    print(f"vector features: {', '.join(feats) or 'none'}")
    cpu = llvm_jit.host_cpu()
    print(f"LLVM target: {cpu[0] if isinstance(cpu, tuple) else cpu}")
    print(f"CUDA: {'available' if cuda.is_available() else 'not available: ' + cuda.why_unavailable()}")
    print(f"nvcc: {shutil.which('nvcc') or ('/usr/local/cuda/bin/nvcc' if os.path.exists('/usr/local/cuda/bin/nvcc') else 'not found')}")
    print(f"kernel cache: {disk_cache.cache_dir()} ({disk_cache.cache_size_bytes() / 1e6:.1f} MB)")
    print(f"MPI: {_mpi_description()}")
    return 0


def _mpi_description() -> str:
    """The MPI library behind tracegrad.distributed, asked without starting MPI."""
    from .distributed import is_available
    if not is_available():
        return "not available (pip install 'tracegrad[distributed]')"
    import mpi4py
    if "mpi4py.MPI" not in sys.modules:
        mpi4py.rc.initialize = False  # MPI_Get_library_version needs no MPI_Init
        mpi4py.rc.finalize = False
    from mpi4py import MPI
    library = MPI.Get_library_version().strip().splitlines()[0].strip()
    major, minor = MPI.Get_version()
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    mpiexec = beside if os.path.exists(beside) else shutil.which("mpiexec") or "not found"
    return (f"{' '.join(library.split())} (MPI standard {major}.{minor}), mpi4py "
            f"{mpi4py.__version__}, mpiexec: {mpiexec}")


def _cache(args) -> int:
    from .runtime import disk_cache
    if args.action == "clear":
        size = disk_cache.cache_size_bytes()
        disk_cache.clear_cache()
        print(f"cleared {disk_cache.cache_dir()} ({size / 1e6:.1f} MB)")
    else:
        print(f"{disk_cache.cache_dir()}: {disk_cache.cache_size_bytes() / 1e6:.1f} MB")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tracegrad", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("dump", help="run a script with every compiled kernel dumped")
    p.add_argument("-o", "--out", default="tracegrad_dump",
                   help="folder to write (default: ./tracegrad_dump); before the script: "
                        "what follows the script is the script's own arguments")
    p.add_argument("--backend", choices=["llvm", "cuda"], default=None)
    p.add_argument("script")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(run=_dump)
    p = sub.add_parser("info", help="versions, CPU, LLVM target, CUDA, cache folder")
    p.set_defaults(run=_info)
    p = sub.add_parser("cache", help="the on-disk kernel cache")
    p.add_argument("action", choices=["clear", "info"])
    p.set_defaults(run=_cache)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
