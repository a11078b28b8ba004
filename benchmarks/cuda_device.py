"""``python -m benchmarks --device cuda [--quick]``: the issue-15 targets on a CUDA device.

- copy: device-to-device copy bandwidth (read + write bytes per second), measured in the
  same run as the kernels it calibrates;
- gelu: the fused tanh-GELU compiled kernel on 16M float32 (1M with --quick, 4096 with --tiny), as a fraction
  of that copy bandwidth (target >= 70%);
- softmax / layer_norm: 4096x1024 rows (512x1024 with --quick), kernel count (target: one
  each) and time;
- seed_mlp: the seed network trained for a few SGD steps on the device and on the CPU, same
  starting weights: the losses must agree.

Times wait for the device (``tracegrad.cuda.synchronize``) before the clock stops.
"""
from __future__ import annotations

import time

import numpy as np

import tracegrad
import tracegrad.nn.functional as F

from .wl_seed_mlp import LR, _data, loss_fn


def _time(fn, repeats: int) -> float:
    fn()
    tracegrad.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    tracegrad.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def _copy_bandwidth(n: int, repeats: int) -> float:
    from tracegrad.runtime import cuda_device
    dev = cuda_device.current()
    src = dev.empty((n,), np.float32)
    dst = dev.empty((n,), np.float32)
    seconds = _time(lambda: dev.driver.copy_dtod(dst.ptr, src.ptr, src.nbytes), repeats)
    return 2 * src.nbytes / seconds


def _gelu(x):
    return 0.5 * x * (1 + tracegrad.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))


def _kernels(fn, *args) -> int:
    report = tracegrad.compile(fn).explain(*args)
    return len(report.forward.kernels)


def run(quick: bool, tiny: bool = False) -> list[tuple[str, str, str]]:
    """Rows of (what, figure, verdict); ``tiny`` sizes check the path on a simulated device."""
    rows = []
    n = (1 << 12) if tiny else (1 << 20) if quick else (16 << 20)
    repeats = 1 if tiny else 5 if quick else 20
    copy_bw = _copy_bandwidth(n, repeats)
    rows.append(("copy (dtod)", f"{copy_bw / 1e9:.1f} GB/s", "reference"))
    x = tracegrad.randn(n, device="cuda")
    gelu = tracegrad.compile(_gelu)
    seconds = _time(lambda: gelu(x), repeats)
    bw = 2 * x.numel() * 4 / seconds
    ratio = bw / copy_bw
    rows.append((f"fused gelu {n} f32", f"{seconds * 1e3:.3f} ms, {bw / 1e9:.1f} GB/s",
                 f"{'ok' if ratio >= 0.7 else 'below target'}: {ratio:.0%} of copy (>= 70%)"))
    rows_n = 4 if tiny else 512 if quick else 4096
    a = tracegrad.randn(rows_n, 1024, device="cuda")
    for name, fn in (("softmax", lambda t: t.softmax(-1)),
                     ("layer_norm", lambda t: F.layer_norm(t, (1024,)))):
        compiled = tracegrad.compile(fn)
        seconds = _time(lambda: compiled(a), repeats)
        count = _kernels(fn, a)
        rows.append((f"{name} {rows_n}x1024", f"{seconds * 1e3:.3f} ms, {count} kernel(s)",
                     "ok" if count == 1 else "below target: one kernel"))
    rows.append(_seed_mlp(steps=2 if tiny else 3 if quick else 10))
    return rows


def _seed_mlp(steps: int) -> tuple[str, str, str]:
    losses = {}
    for device in ("cpu", "cuda"):
        x, y, w1, w2 = (tracegrad.tensor(a, device=device) for a in _data())
        w1.requires_grad_()
        w2.requires_grad_()
        step_loss = tracegrad.compile(loss_fn)
        for _ in range(steps):
            loss = step_loss(x, y, w1, w2)
            loss.backward()
            with tracegrad.no_grad():
                w1 -= LR * w1.grad
                w2 -= LR * w2.grad
                w1.grad.zero_()
                w2.grad.zero_()
        losses[device] = loss.item()
    rel = abs(losses["cuda"] - losses["cpu"]) / max(abs(losses["cpu"]), 1e-30)
    return (f"seed_mlp {steps} steps", f"loss cuda {losses['cuda']:.6g} cpu {losses['cpu']:.6g}",
            "same" if rel < 1e-4 else f"differs by {rel:.2e}")


def main(quick: bool, tiny: bool = False) -> int:
    dev = tracegrad.cuda.get_device_name()
    print(f"device: {dev}")
    failed = False
    for what, figure, verdict in run(quick, tiny):
        print(f"{what:28s} {figure:40s} {verdict}")
        failed |= verdict.startswith(("below target", "differs"))
    return 1 if failed else 0
