"""The one table, the JSON file and the optional bar chart."""
from __future__ import annotations

import json
import math

from .harness import MAIN_ARMS, PEER_ARMS, WHOLE_STEP, Row

HEADER = ["workload", "size", "unit", "eager", "compiled", "whole step", "speedup", "GB/s", "% BW",
          "compile cold / warm", "numpy", "torch", "torch.compile", "jax.jit", "check / note"]


def _num(v: float) -> str:
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _time_cell(row: Row, arm: str) -> str:
    t = row.times.get(arm)
    if t is None:
        return row.notes.get(arm, "—")
    return f"{_num(t.median * row.scale)} ±{100 * t.spread / 2:.0f}%"


def _secs(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.2f} s" if v >= 1 else f"{v * 1e3:.0f} ms" if v >= 0.01 else f"{v * 1e3:.1f} ms"


def _check_cell(row: Row) -> str:
    parts = []
    if row.status == "failed":
        parts.append("FAILED")
    if row.correct is True:
        parts.append("compiled == eager")
    elif row.correct is False:
        parts.append("MISMATCH compiled != eager")
    if row.note:
        parts.append(row.note)
    jits = [f"{a} {_secs(row.times[a].first)}" for a in ("torch.compile", "jax.jit")
            if a in row.times]
    if jits:
        parts.append("peer first call: " + ", ".join(jits))
    return "; ".join(parts) if parts else "—"


def cells(row: Row, bandwidth: float | None) -> list[str]:
    sp = row.speedup()
    g = row.gbps()
    compile_cell = "—"
    if row.compile_cold is not None or row.compile_warm is not None:
        compile_cell = f"{_secs(row.compile_cold)} / {_secs(row.compile_warm)}"
    return [row.name, row.size, row.unit,
            *(_time_cell(row, a) for a in MAIN_ARMS),
            _time_cell(row, WHOLE_STEP),
            f"{sp:.2f}x" if sp else "—",
            f"{g:.1f}" if g else "—",
            f"{100 * g / bandwidth:.0f}%" if (g and bandwidth) else "—",
            compile_cell,
            *(_time_cell(row, a) for a in PEER_ARMS),
            _check_cell(row).replace("|", "/")]


def table(rows: list[Row], machine: dict) -> str:
    """A Markdown table (readable in a terminal too), preceded by the machine line."""
    bw = machine.get("bandwidth", {}).get("gbps")
    lines = [machine_line(machine), ""]
    body = [cells(r, bw) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(HEADER)]
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(HEADER, widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for b in body:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(b, widths)) + " |")
    lines.append("")
    lines.append("Times are medians ± half the interquartile range over interleaved "
                 "repetitions; speedup = eager / compiled; GB/s = minimum bytes read+written per "
                 "call / compiled time (eager when there is no compiled arm); % BW against the "
                 "machine line's copy bandwidth; compile cold = fresh disk cache, warm = new "
                 "compiled function loading from the disk cache (first-call time minus "
                 "steady-state call time).")
    return "\n".join(lines)


def machine_line(machine: dict) -> str:
    bw = machine.get("bandwidth", {})
    peers = ", ".join(f"{k} {v}" for k, v in machine.get("peers", {}).items()) or "none"
    nan = float("nan")
    return (f"machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
            f"{machine.get('features', '')}; memory bandwidth {bw.get('gbps', nan):.1f} GB/s "
            f"(np.copyto {bw.get('copy_mib', '?')} MiB in {bw.get('copy_ms', nan):.1f} ms); "
            f"python {machine.get('python', '?')}, numpy {machine.get('numpy', '?')}, "
            f"llvmlite {machine.get('llvmlite', '?')}, tracegrad {machine.get('tracegrad', '?')}; "
            f"peers: {peers}; "
            + " ".join(f"{k}={v}" for k, v in machine.get("thread_env", {}).items())
            + f"; mode: {machine.get('mode', '?')}; 1-min load average "
            f"{machine.get('load_start', '?')} at start, {machine.get('load_end', '?')} at end; "
            f"{machine.get('date', '')}")


def _clean(v):
    """JSON has no NaN/inf: write them as null so the file stays well formed."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def write_json(path: str, rows: list[Row], machine: dict) -> None:
    bw = machine.get("bandwidth", {}).get("gbps")
    doc = {"machine": machine, "machine_line": machine_line(machine),
           "rows": [r.as_dict(bw) for r in rows]}
    with open(path, "w") as f:
        json.dump(_clean(doc), f, indent=2, allow_nan=False)
        f.write("\n")


def write_plot(path: str, rows: list[Row]) -> str:
    """A PNG bar chart of speedups (eager / compiled, and eager / each peer)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as e:  # noqa: BLE001
        return (f"--plot: matplotlib is not importable ({type(e).__name__}: {e}); "
                f"no chart written. pip install matplotlib to get one.")
    shown = [r for r in rows if r.times.get("eager") and len(r.times) > 1]
    if not shown:
        return "--plot: no row has two arms to compare; no chart written."
    arms = [a for a in ("compiled", *PEER_ARMS) if any(a in r.times for r in shown)]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(shown)), 4.5))
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        xs, ys = [], []
        for j, r in enumerate(shown):
            if arm in r.times:
                xs.append(j + i * width)
                ys.append(r.times["eager"].median / r.times[arm].median)
        ax.bar(xs, ys, width, label=f"{arm}")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([j + width * (len(arms) - 1) / 2 for j in range(len(shown))])
    ax.set_xticklabels([f"{r.name}\n{r.size}" for r in shown], rotation=30, ha="right",
                       fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("speedup over tracegrad eager (x, log scale)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"--plot: wrote {path}"
