"""After a benchmark run: compile two small showcase functions with dumping on and say
where their dump folder is, so a first run ends with generated code to open."""
from __future__ import annotations

import os
from pathlib import Path


def write_showcase_dump(folder: str) -> Path:
    import tracegrad as torch
    import tracegrad.nn.functional as F
    from tracegrad.compiler.dump import write_index

    out = Path(folder).resolve()
    previous = os.environ.get("TRACEGRAD_DUMP")
    os.environ["TRACEGRAD_DUMP"] = str(out)
    try:
        @torch.compile
        def softmax_gelu(x):
            return F.gelu(torch.softmax(x, -1), approximate="tanh")

        w1 = torch.randn(100, 50, requires_grad=True)
        w2 = torch.randn(50, 10, requires_grad=True)

        @torch.compile
        def seed_mlp_loss(x, y):
            return (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()

        softmax_gelu(torch.randn(64, 128))
        seed_mlp_loss(torch.randn(64, 100), torch.randn(64, 10)).backward()
    finally:
        if previous is None:
            os.environ.pop("TRACEGRAD_DUMP", None)
        else:
            os.environ["TRACEGRAD_DUMP"] = previous
    write_index(out)
    return out / "index.md"
