"""``python -m benchmarks [--quick] [--only NAME[,NAME]] [--json PATH] [--plot PATH]
[--device cpu|cuda] [--tiny]``: one process, one table."""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import traceback
import warnings

import numpy as np


def _cpu() -> tuple[str, str]:
    name = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        for line in info.splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
        flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines()
                      if ln.startswith("flags")), [])
        simd = [f for f in ("avx2", "fma", "avx512f") if f in flags]
        return name, "+".join(simd) or "no AVX2"
    except OSError:
        return name, ""


def parse(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes, fewer repeats (< 1 min)")
    p.add_argument("--tiny", action="store_true",
                   help="tiny sizes for the test suite (also TG_BENCH_TINY=1); implies --quick")
    p.add_argument("--only", action="append", default=[],
                   help="run only these workloads (comma-separated or repeated)")
    p.add_argument("--json", metavar="PATH", help="write all rows and the machine line as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG bar chart of speedups")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    p.add_argument("--dump", metavar="DIR", default=None,
                   help="also dump the generated code of two showcase functions to DIR "
                        "(default with --quick: ./tracegrad_dump)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    if os.environ.get("TG_BENCH_TINY", "") in ("1", "true", "yes"):
        args.tiny = True
    if args.tiny:
        args.quick = True

    import tracegrad

    from . import THREAD_ENV, report
    from .harness import Config, Row, memory_bandwidth
    from .peers import discover, versions
    from .workloads import WORKLOADS

    if args.list:
        for name, mod in WORKLOADS.items():
            print(f"{name:12s} {(mod.__doc__ or '').strip().splitlines()[0]}")
        return 0
    if args.device == "cuda" and not tracegrad.cuda.is_available():
        why = getattr(tracegrad.cuda, "why_unavailable", lambda: "")()
        why = why or "tracegrad.cuda.is_available() is False"
        print(f"--device cuda: CUDA is not available here ({why}); nothing was run. "
              f"Use --device cpu.", file=sys.stderr)
        return 2
    if args.device == "cuda":   # the issue-15 targets: one table of device figures
        from . import cuda_device
        return cuda_device.main(args.quick, args.tiny)
    only = [n for arg in args.only for n in arg.split(",") if n]
    unknown = [n for n in only if n not in WORKLOADS]
    if unknown:
        print(f"--only: unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}",
              file=sys.stderr)
        return 2
    selected = [n for n in WORKLOADS if n in only] if only else list(WORKLOADS)

    # Compiles in this run go to a private disk cache, so runs neither read a stale cache
    # nor fill the user's; cold/warm compile timings use their own fresh folders anyway.
    own_cache = tempfile.TemporaryDirectory(prefix="tg-bench-")
    os.environ["TRACEGRAD_CACHE_DIR"] = own_cache.name

    cfg = Config(quick=args.quick, tiny=args.tiny, device=args.device,
                 peers=discover(args.device))
    cpu, features = _cpu()
    import llvmlite
    machine = {
        "cpu": cpu, "cores": os.cpu_count(), "features": features,
        "python": platform.python_version(), "numpy": np.__version__,
        "llvmlite": llvmlite.__version__, "tracegrad": tracegrad.__version__,
        "peers": versions(cfg.peers), "device": args.device,
        "thread_env": {k: os.environ.get(k) for k in THREAD_ENV},
        "mode": "tiny" if args.tiny else ("quick" if args.quick else "full"),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    }
    machine["load_start"] = round(os.getloadavg()[0], 2)
    machine["bandwidth"] = memory_bandwidth(cfg)
    print(report.machine_line(machine), file=sys.stderr, flush=True)

    rows: list[Row] = []
    for name in selected:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                got = WORKLOADS[name].run(cfg)
            for w in caught:
                if "compile" in str(w.message):
                    print(f"  warning: {w.message}", file=sys.stderr)
        except Exception as e:  # noqa: BLE001 - one broken workload must not hide the rest
            tb = traceback.format_exc(limit=-3)
            print(f"  {name} failed:\n{tb}", file=sys.stderr)
            msg = f"{type(e).__name__}: {e}".splitlines()[0][:160]
            got = [Row(name, name, "—", status="failed", note=msg)]
        rows.extend(got)
    machine["load_end"] = round(os.getloadavg()[0], 2)

    print(report.table(rows, machine))
    if args.json:
        report.write_json(args.json, rows, machine)
        print(f"\n--json: wrote {args.json}")
    if args.plot:
        print(report.write_plot(args.plot, rows))
    dump = args.dump or ("tracegrad_dump" if args.quick and not args.tiny else None)
    if dump:
        from .showcase_dump import write_showcase_dump
        index = write_showcase_dump(dump)
        print(f"\ngenerated code (graph, fused kernels, loop IR, LLVM IR, assembly): {index}")
    own_cache.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
